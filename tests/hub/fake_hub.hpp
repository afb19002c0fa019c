// A stand-in for the Hugging Face hub on a loopback TestHttpServer, speaking the protocol ctformer
// (and huggingface_hub) rely on:
//   HEAD/GET /{repo}/resolve/{revision}/{file}
//     small (git) files: 200, ETag "<git blob sha1>", X-Repo-Commit
//     LFS files: 302 to {server}/cdn/{sha256}, X-Linked-Etag "<sha256>", X-Linked-Size,
//     X-Repo-Commit an old short name (gpt2): 307 to the relative /{repo}/resolve/..., as for a
//     renamed repo unknown repository: 401 (RepoNotFound); unknown file or revision: 404
//   GET /cdn/{sha256}: the LFS file's bytes, with Range support (206, 416)
// and troubles to inject per file: drop or stall at a byte offset, corrupt bytes, ignore Range,
// or answer with an HTTP status, each for the next N requests.
#pragma once

#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "../../tools/ctformer/hub/digest.hpp"
#include "test_http_server.hpp"

namespace ctformer::test {

struct FakeHubFile {
  std::string content;
  bool lfs = false;
  std::string sha256() const { return cli::sha256_hex(content); }
  std::string git_sha1() const { return cli::git_blob_sha1_hex(content); }
};

struct Trouble {
  enum What { drop, stall, corrupt, ignore_range, status } what;
  std::size_t at = 0;  // drop/stall: the file offset where the bytes stop
  int status_code = 0;
  int times = 1;  // how many requests it affects
};

inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

class FakeHub {
 public:
  std::string repo_id = "openai-community/gpt2";
  std::string alias = "gpt2";  // redirected (307, relative) to repo_id
  std::string commit = "607a30d783dfa663caf39e06633721c8d4cfcd7e";
  std::string required_token;  // non-empty: requests need "Authorization: Bearer <token>"
  std::map<std::string, FakeHubFile> files;

  FakeHub() : server_([this](const HttpRequest& r) { return handle(r); }) {}

  // A GPT-2-like repository: git files and a 256 KiB LFS model.safetensors (random bytes).
  void add_default_files() {
    files["config.json"] = {R"({"model_type": "gpt2", "n_embd": 768})", false};
    files["vocab.json"] = {R"({"!": 0, "\"": 1})", false};
    files["merges.txt"] = {"#version: 0.2\nĠ t\n", false};
    files["generation_config.json"] = {R"({"bos_token_id": 50256, "eos_token_id": 50256})", false};
    files["model.safetensors"] = {random_bytes(256 * 1024, 1), true};
  }

  void add_trouble(const std::string& filename, Trouble t) {
    std::lock_guard lock(mutex_);
    troubles_[filename].push_back(t);
  }

  std::string endpoint() const { return server_.url(); }
  std::vector<HttpRequest> requests() const { return server_.requests(); }
  void clear_requests() { server_.clear_requests(); }

  std::vector<HttpRequest> gets() const {
    std::vector<HttpRequest> out;
    for (auto& r : requests())
      if (r.method == "GET") out.push_back(r);
    return out;
  }

 private:
  // Takes the first trouble of `filename` that `accept` accepts, counting one use.
  template <class Accept>
  std::optional<Trouble> take(const std::string& filename, Accept accept) {
    std::lock_guard lock(mutex_);
    auto& list = troubles_[filename];
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (!accept(*it)) continue;
      Trouble t = *it;
      if (--it->times <= 0) list.erase(it);
      return t;
    }
    return std::nullopt;
  }

  static HttpReply error(int status, const std::string& code, const std::string& message) {
    HttpReply r;
    r.status = status;
    r.headers = {{"X-Error-Code", code}, {"X-Error-Message", message}};
    r.body = message;
    return r;
  }

  HttpReply serve_bytes(const std::string& filename, const FakeHubFile& file,
                        const HttpRequest& req) {
    std::string content = file.content;
    if (take(filename, [](const Trouble& t) { return t.what == Trouble::corrupt; }))
      content[content.size() / 2] ^= 0x5a;
    std::size_t offset = 0;
    const std::string range = req.header("range");
    const bool ignore_range = !range.empty() && take(filename, [](const Trouble& t) {
      return t.what == Trouble::ignore_range;
    });
    HttpReply r;
    if (!range.empty() && !ignore_range) {
      offset = std::stoull(range.substr(range.find('=') + 1));
      if (offset >= content.size()) {
        r.status = 416;
        r.headers = {{"Content-Range", "bytes */" + std::to_string(content.size())}};
        return r;
      }
      r.status = 206;
      r.headers = {{"Content-Range", "bytes " + std::to_string(offset) + "-" +
                                         std::to_string(content.size() - 1) + "/" +
                                         std::to_string(content.size())}};
    }
    r.body = content.substr(offset);
    r.headers.emplace_back("ETag", "\"" + (file.lfs ? file.sha256() : file.git_sha1()) + "\"");
    r.headers.emplace_back("Accept-Ranges", "bytes");
    if (auto t = take(filename, [&](const Trouble& t) {
          return (t.what == Trouble::drop || t.what == Trouble::stall) && t.at > offset;
        })) {
      (t->what == Trouble::drop ? r.drop_after : r.stall_after) = t->at - offset;
    }
    return r;
  }

  HttpReply handle(const HttpRequest& req) {
    if (req.path.starts_with("/cdn/")) {
      const std::string sha = req.path.substr(5);
      for (const auto& [name, file] : files)
        if (file.lfs && file.sha256() == sha) return serve_bytes(name, file, req);
      return error(404, "EntryNotFound", "no such object");
    }
    const auto resolve = req.path.find("/resolve/");
    if (resolve == std::string::npos) return error(404, "NotFound", "not a resolve URL");
    const std::string repo = req.path.substr(1, resolve - 1);
    const std::string rest = req.path.substr(resolve + 9);  // {revision}/{filename}
    if (repo == alias) {
      HttpReply r;
      r.status = 307;
      r.headers = {{"Location", "/" + repo_id + "/resolve/" + rest}};
      return r;
    }
    if (!required_token.empty() && req.header("authorization") != "Bearer " + required_token)
      return error(401, "GatedRepo", "Access to model " + repo_id + " is restricted");
    if (repo != repo_id) return error(401, "RepoNotFound", "Repository Not Found");
    const std::string revision = rest.substr(0, rest.find('/'));
    const std::string filename = rest.substr(rest.find('/') + 1);
    if (revision != "main" && revision != commit)
      return error(404, "RevisionNotFound", "Invalid rev id: " + revision);
    if (auto t = take(filename, [](const Trouble& t) { return t.what == Trouble::status; }))
      return error(t->status_code, "Injected", "injected status");
    const auto it = files.find(filename);
    if (it == files.end()) return error(404, "EntryNotFound", filename + " does not exist");
    const FakeHubFile& file = it->second;
    HttpReply r;
    r.headers = {{"X-Repo-Commit", commit}};
    if (file.lfs) {
      r.status = 302;
      r.headers.emplace_back("Location", server_.url() + "/cdn/" + file.sha256());
      r.headers.emplace_back("X-Linked-Etag", "\"" + file.sha256() + "\"");
      r.headers.emplace_back("X-Linked-Size", std::to_string(file.content.size()));
      r.headers.emplace_back("ETag", "\"pointer-" + file.git_sha1() + "\"");
      r.headers.emplace_back("Content-Length", "0");
      return r;
    }
    if (req.method == "HEAD") {
      r.headers.emplace_back("ETag", "\"" + file.git_sha1() + "\"");
      r.headers.emplace_back("Content-Length", std::to_string(file.content.size()));
      return r;
    }
    HttpReply body = serve_bytes(filename, file, req);
    body.headers.emplace_back("X-Repo-Commit", commit);
    return body;
  }

  std::mutex mutex_;
  std::map<std::string, std::vector<Trouble>> troubles_;
  TestHttpServer server_;  // last: it calls handle() from its threads
};

}  // namespace ctformer::test
