// Downloads GPT-2 models from the Hugging Face hub (or the mirror HF_ENDPOINT names) the way
// huggingface_hub's hf_hub_download does, into its cache or into a folder:
//   HEAD {endpoint}/{repo}/resolve/{revision}/{file}  -> X-Repo-Commit, ETag / X-Linked-Etag (the
//        file's sha256 for LFS files, its git blob id otherwise), X-Linked-Size / Content-Length,
//        and for LFS files a redirect (Location) to the CDN, which is not followed;
//   GET  the Location (or the resolve URL) into <dest>.incomplete, resuming with a Range request,
//        retrying with backoff, then checking size and hash before renaming it to <dest>.
// The first file's commit fixes the revision for the others, so a model is never a mix of commits.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "digest.hpp"
#include "download_error.hpp"
#include "hf_cache.hpp"
#include "http.hpp"
#include "progress.hpp"

namespace ctformer::cli {

struct DownloadOptions {
  std::string revision = "main";
  std::chrono::milliseconds stall_timeout{30'000};
  int retries = 5;                           // further attempts after the first
  std::chrono::milliseconds backoff{1'000};  // the first wait; doubled each time
  std::chrono::milliseconds max_backoff{16'000};
  bool progress = true;     // a progress bar on stderr (also off when HF_HUB_DISABLE_PROGRESS_BARS)
  std::FILE* log = stderr;  // notes: cache hits, retries; nullptr for none
};

// What a HEAD of the resolve URL says about a file.
struct HubFileInfo {
  std::string filename;
  std::string url;           // the resolve URL
  std::string download_url;  // where the bytes are: the redirect's Location, or the resolve URL
  std::string commit;        // X-Repo-Commit
  std::string etag;          // normalised: no quotes, no W/
  std::optional<std::uint64_t> size;
};

inline std::string normalize_etag(std::string etag) {
  if (etag.starts_with("W/")) etag.erase(0, 2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

// Writes a download into `<dest>.incomplete`, held open (and locked) for all attempts.
class PartialFile {
 public:
  explicit PartialFile(fs::path dest)
      : dest_(std::move(dest)), path_(dest_.string() + ".incomplete") {
    fs::create_directories(dest_.parent_path());
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw FileError("cannot create '" + path_.string() + "': " + std::strerror(errno) +
                      " (check that the folder is writable)");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw FileError("another process is downloading into '" + path_.string() +
                      "'; wait for it to finish, then run the command again");
    }
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  const fs::path& path() const { return path_; }

  std::uint64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw FileError("cannot stat '" + path_.string() + "'");
    return static_cast<std::uint64_t>(st.st_size);
  }

  void truncate() {
    if (::ftruncate(fd_, 0) != 0)
      throw FileError("cannot truncate '" + path_.string() + "': " + std::strerror(errno));
  }

  // Appends; a full disk is DownloadError disk_full, any other failure FileError.
  void append(const char* data, std::size_t n, std::optional<std::uint64_t> total) {
    if (::lseek(fd_, 0, SEEK_END) < 0)
      throw FileError("cannot seek in '" + path_.string() + "': " + std::strerror(errno));
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        const int err = errno;
        if (err == ENOSPC || err == EDQUOT) {
          const std::string have = format_bytes(static_cast<double>(size()));
          throw DownloadError(
              DownloadErrorKind::disk_full,
              "the disk is full: writing '" + path_.string() + "' stopped at " + have +
                  (total ? " of " + format_bytes(static_cast<double>(*total)) : "") +
                  "; free some space and run the command again (it resumes from "
                  "the partial file)");
        }
        throw FileError("cannot write '" + path_.string() + "': " + std::strerror(err));
      }
      data += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  // Flushes to disk and renames to the destination: only now does a file of that name exist.
  void commit() {
    if (::fsync(fd_) != 0)
      throw DownloadError(DownloadErrorKind::disk_full,
                          "cannot flush '" + path_.string() + "' to disk: " + std::strerror(errno) +
                              "; free some space and run the command again");
    fs::rename(path_, dest_);
  }

  void discard() {
    std::error_code ec;
    fs::remove(path_, ec);
  }

 private:
  fs::path dest_;
  fs::path path_;
  int fd_ = -1;
};

class HubClient {
 public:
  HubClient(HubEnvironment env, DownloadOptions options)
      : env_(std::move(env)),
        options_(std::move(options)),
        http_(HttpSettings{options_.stall_timeout, env_.token, "ctformer/0.1 (libcurl)"}) {}

  const HubEnvironment& environment() const { return env_; }

  // HEAD of the resolve URL; retried like downloads. HTTP errors throw DownloadError http_status.
  HubFileInfo file_info(const std::string& repo_id, const std::string& revision,
                        const std::string& filename) {
    if (env_.offline)
      throw DownloadError(DownloadErrorKind::offline,
                          "HF_HUB_OFFLINE is set, so " + repo_id + "/" + filename +
                              " cannot be fetched from " + env_.endpoint +
                              "; unset HF_HUB_OFFLINE, or pass a local model directory");
    HubFileInfo info;
    info.filename = filename;
    info.url = env_.resolve_url(repo_id, revision, filename);
    const HttpResponse r = with_retries([&] {
      HttpResponse head = http_.head(info.url);
      if (head.status >= 400) throw status_error(info.url, head);
      return head;
    });
    const std::string* commit = r.header("x-repo-commit");
    const std::string* etag = r.header("x-linked-etag");
    if (!etag) etag = r.header("etag");
    if (!commit || !etag)
      throw DownloadError(
          DownloadErrorKind::http_status,
          info.url + " answered without " + (commit ? "an ETag" : "the X-Repo-Commit header") +
              ", so it is not a Hugging Face hub; check HF_ENDPOINT (now '" + env_.endpoint + "')",
          info.url, r.status);
    info.commit = *commit;
    info.etag = normalize_etag(*etag);
    const std::string* size = r.header("x-linked-size");
    if (!size) size = r.header("content-length");
    if (size) {
      try {
        info.size = std::stoull(*size);
      } catch (const std::exception&) {
      }
    }
    const std::string* location = r.header("location");
    info.download_url = r.status >= 300 && r.status < 400 && location ? *location : r.url;
    if (info.etag.empty() || info.etag.find('/') != std::string::npos)
      throw DownloadError(DownloadErrorKind::http_status,
                          info.url + " sent the unusable ETag '" + info.etag +
                              "'; check HF_ENDPOINT (now '" + env_.endpoint + "')",
                          info.url, r.status);
    return info;
  }

  // Fetches info.download_url into `dest`, through dest.incomplete: resumes what an earlier
  // attempt left, retries, and checks size and hash before the rename.
  void fetch(const HubFileInfo& info, const fs::path& dest) {
    PartialFile part(dest);
    const EtagCheck check = etag_check(info.etag);
    for (int attempt = 0;; ++attempt) {
      std::uint64_t offset = part.size();
      if (info.size && offset > *info.size) {
        part.truncate();
        offset = 0;
      }
      if (info.size && offset == *info.size && offset > 0) break;  // complete: verify below
      HttpResponse r;
      try {
        ProgressBar bar(info.filename, info.size, offset, options_.progress && env_.progress);
        HttpBody body;
        body.begin = [&](long status, std::int64_t) {
          if (offset > 0 && status == 200) {  // the server ignored the Range: start over
            part.truncate();
            bar.restart();
          }
        };
        body.data = [&](const char* data, std::size_t n) {
          part.append(data, n, info.size);
          bar.add(n);
        };
        r = http_.get(info.download_url, offset, body);
        if (r.status == 416 && offset > 0) {  // the partial file is not a prefix of this file
          part.truncate();
          throw DownloadError(DownloadErrorKind::interrupted,
                              info.download_url + " refused to resume at byte " +
                                  std::to_string(offset) + "; starting over",
                              info.download_url);
        }
        if (r.status >= 400) throw status_error(info.download_url, r);
        const std::uint64_t have = part.size();
        if (info.size && have < *info.size)
          throw DownloadError(DownloadErrorKind::interrupted,
                              "the connection to " + url_origin(info.download_url) +
                                  " closed after " + std::to_string(have) + " of " +
                                  std::to_string(*info.size) + " bytes of " + info.filename +
                                  "; run the command again to resume",
                              info.download_url);
        bar.finish();
      } catch (const DownloadError& e) {
        if (!e.retryable() || attempt >= options_.retries)
          throw attempts_note(e, attempt + 1, part.path());
        wait_before_retry(e, attempt);
        continue;
      }
      break;
    }

    const std::uint64_t have = part.size();
    if (info.size && have != *info.size) {
      part.discard();
      throw DownloadError(DownloadErrorKind::checksum,
                          info.filename + " from " + info.download_url + " is " +
                              std::to_string(have) + " bytes, but the hub says " +
                              std::to_string(*info.size) +
                              "; the partial file was removed, run the command again",
                          info.download_url);
    }
    if (check != EtagCheck::none) {
      const std::string actual = hash_file(part.path(), check);
      if (actual != info.etag) {
        part.discard();
        const char* algo = check == EtagCheck::sha256 ? "sha256" : "git blob sha1";
        throw DownloadError(
            DownloadErrorKind::checksum,
            info.filename + " from " + info.download_url + " has " + algo + " " + actual +
                " but the hub publishes " + info.etag +
                "; the corrupt file was removed: run the command again, and if this repeats, "
                "the server (HF_ENDPOINT '" +
                env_.endpoint + "') serves a damaged file",
            info.download_url);
      }
    } else {
      note("note: " + info.filename + " was not verified: the ETag '" + info.etag + "' from " +
           env_.endpoint + " is not a sha256 or git blob id");
    }
    part.commit();
  }

  // The model in the cache: files already there (by ETag) are not fetched again. Returns the
  // snapshot folder. When the hub cannot be reached and the cache has the model, uses the cache.
  fs::path download_to_cache(const std::string& repo_id) {
    const std::string& revision = options_.revision;
    if (env_.offline) {
      if (auto snap = find_in_cache(env_.cache_dir, repo_id, revision)) return *snap;
      throw offline_error(repo_id);
    }
    const CachedRepo repo(env_.cache_dir, repo_id);
    std::string commit;
    for (const std::string& filename : all_files()) {
      std::optional<HubFileInfo> info;
      try {
        info = file_info(repo_id, commit.empty() ? revision : commit, filename);
      } catch (const DownloadError& e) {
        if (commit.empty() && e.unreachable()) {
          if (auto snap = find_in_cache(env_.cache_dir, repo_id, revision)) {
            note("note: " + std::string(e.what()) + "; using the copy in the cache, " +
                 snap->string());
            return *snap;
          }
        }
        if (is_optional(filename) && e.kind() == DownloadErrorKind::http_status &&
            e.http_status() == 404) {
          if (!commit.empty()) repo.mark_missing(commit, filename);
          continue;
        }
        throw;
      }
      if (commit.empty()) commit = info->commit;
      const fs::path blob = repo.blob(info->etag);
      if (fs::is_regular_file(blob)) {
        note(filename + ": already in the cache");
      } else {
        fetch(*info, blob);
      }
      repo.link(commit, filename, info->etag);
    }
    repo.write_ref(revision, commit);
    return repo.snapshot(commit);
  }

  // The model's files directly in `dir` (created if needed). A file already there with the
  // published size and hash is kept.
  fs::path download_to_dir(const std::string& repo_id, const fs::path& dir) {
    if (env_.offline) {
      const auto snap = find_in_cache(env_.cache_dir, repo_id, options_.revision);
      if (!snap) throw offline_error(repo_id);
      fs::create_directories(dir);
      for (const std::string& f : all_files())
        if (fs::is_regular_file(*snap / f))
          fs::copy_file(*snap / f, dir / f, fs::copy_options::overwrite_existing);
      note("note: HF_HUB_OFFLINE is set; copied " + repo_id + " from the cache, " + snap->string());
      return dir;
    }
    std::string commit;
    for (const std::string& filename : all_files()) {
      std::optional<HubFileInfo> info;
      try {
        info = file_info(repo_id, commit.empty() ? options_.revision : commit, filename);
      } catch (const DownloadError& e) {
        if (is_optional(filename) && e.kind() == DownloadErrorKind::http_status &&
            e.http_status() == 404)
          continue;
        throw;
      }
      if (commit.empty()) commit = info->commit;
      const fs::path dest = dir / filename;
      std::error_code ec;
      if (fs::is_regular_file(dest) && info->size && fs::file_size(dest, ec) == *info->size &&
          etag_check(info->etag) != EtagCheck::none &&
          hash_file(dest, etag_check(info->etag)) == info->etag) {
        note(filename + ": up to date");
        continue;
      }
      fetch(*info, dest);
    }
    return dir;
  }

 private:
  static std::vector<std::string> all_files() {
    std::vector<std::string> files = required_model_files();
    files.insert(files.end(), optional_model_files().begin(), optional_model_files().end());
    return files;
  }
  static bool is_optional(const std::string& filename) {
    return std::ranges::find(optional_model_files(), filename) != optional_model_files().end();
  }

  void note(const std::string& text) const {
    if (options_.log) std::fprintf(options_.log, "%s\n", text.c_str());
  }

  DownloadError offline_error(const std::string& repo_id) const {
    return DownloadError(DownloadErrorKind::offline,
                         "HF_HUB_OFFLINE is set and " + repo_id + " (revision " +
                             options_.revision + ") is not in the Hugging Face cache " +
                             env_.cache_dir.string() +
                             "; unset HF_HUB_OFFLINE to download it, or pass a local model "
                             "directory");
  }

  DownloadError status_error(const std::string& url, const HttpResponse& r) const {
    std::string why;
    if (const std::string* m = r.header("x-error-message")) why = " (" + *m + ")";
    std::string advice;
    if (r.status == 401 || r.status == 403)
      advice = env_.token.empty()
                   ? "; the repository does not exist, or it is private or gated: check the "
                     "model name, and for a gated model set HF_TOKEN to an access token"
                   : "; the repository does not exist, or HF_TOKEN has no access to it: check the "
                     "model name and the token";
    else if (r.status == 404)
      advice =
          "; the repository, revision or file does not exist: check the model name and "
          "--revision";
    else if (r.status == 429 || r.status >= 500)
      advice = "; the server is busy or failing: try again later";
    else
      advice = "; check the model name and HF_ENDPOINT";
    return DownloadError(DownloadErrorKind::http_status,
                         url + " answered HTTP " + http_status_text(r.status) + why + advice, url,
                         r.status);
  }

  template <class F>
  HttpResponse with_retries(F&& f) {
    for (int attempt = 0;; ++attempt) {
      try {
        return f();
      } catch (const DownloadError& e) {
        if (!e.retryable() || attempt >= options_.retries) throw attempts_note(e, attempt + 1, {});
        wait_before_retry(e, attempt);
      }
    }
  }

  void wait_before_retry(const DownloadError& e, int attempt) const {
    auto wait = options_.backoff * (1LL << std::min(attempt, 20));
    if (wait > options_.max_backoff) wait = options_.max_backoff;
    note("retrying in " + format_duration(std::chrono::duration<double>(wait).count()) +
         " (attempt " + std::to_string(attempt + 2) + " of " +
         std::to_string(options_.retries + 1) + "): " + e.what());
    std::this_thread::sleep_for(wait);
  }

  static DownloadError attempts_note(const DownloadError& e, int attempts, const fs::path& part) {
    if (attempts <= 1 && part.empty()) return e;
    std::string msg = e.what();
    if (attempts > 1) msg += " (gave up after " + std::to_string(attempts) + " attempts)";
    if (!part.empty() && fs::exists(part) && e.kind() != DownloadErrorKind::checksum)
      msg += "; what arrived is kept in " + part.string() + " and the next run resumes from it";
    return DownloadError(e.kind(), msg, e.url(), e.http_status());
  }

  HubEnvironment env_;
  DownloadOptions options_;
  HttpClient http_;
};

// A model folder for `name_or_dir`: the folder itself if it is one; otherwise a hub model name
// (gpt2, openai-community/gpt2, ...) found in the Hugging Face cache, or downloaded into it.
inline fs::path resolve_model(const std::string& name_or_dir, DownloadOptions options = {},
                              HubEnvironment env = HubEnvironment::from_environment()) {
  std::error_code ec;
  if (fs::is_directory(name_or_dir, ec)) return name_or_dir;
  const auto repo_id = repo_id_for(name_or_dir);
  if (!repo_id)
    throw FileError("model directory '" + name_or_dir +
                    "' does not exist, and it is not a hub model name either; give a folder with "
                    "config.json, model.safetensors, vocab.json and merges.txt, or a name such "
                    "as " +
                    known_model_names() + " or owner/name");
  if (auto snap = find_in_cache(env.cache_dir, *repo_id, options.revision)) return *snap;
  if (env.offline)
    throw DownloadError(DownloadErrorKind::offline,
                        "'" + name_or_dir +
                            "' is not a directory, and HF_HUB_OFFLINE is set while " + *repo_id +
                            " is not in the Hugging Face cache " + env.cache_dir.string() +
                            "; unset HF_HUB_OFFLINE to download it, or pass a model directory");
  if (options.log)
    std::fprintf(options.log, "%s is not in the Hugging Face cache (%s); downloading it from %s\n",
                 repo_id->c_str(), env.cache_dir.string().c_str(), env.endpoint.c_str());
  HubClient hub(env, options);
  try {
    return hub.download_to_cache(*repo_id);
  } catch (const DownloadError& e) {
    if (e.kind() == DownloadErrorKind::http_status &&
        (e.http_status() == 401 || e.http_status() == 404) && *repo_id == name_or_dir)
      throw DownloadError(
          e.kind(),
          "'" + name_or_dir + "' is not a directory, so it was looked up on the hub: " + e.what(),
          e.url(), e.http_status());
    throw;
  }
}

}  // namespace ctformer::cli
