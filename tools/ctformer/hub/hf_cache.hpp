// Where huggingface_hub keeps things, read from the same environment variables it reads, and the
// layout of its cache, so that ctformer and Python share one cache:
//   <cache>/models--openai-community--gpt2/
//     blobs/<etag>                       the files, named by their ETag (sha256 or git blob id)
//     snapshots/<commit>/<filename>      relative symlinks to ../../blobs/<etag>
//     refs/main                          the commit that `main` pointed to when last downloaded
//     .no_exist/<commit>/<filename>      empty: the file does not exist at that commit
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctformer::cli {

namespace fs = std::filesystem;

// The files of a GPT-2 model on the hub: those ctformer needs, and those it takes when present.
inline const std::vector<std::string>& required_model_files() {
  static const std::vector<std::string> files = {"config.json", "model.safetensors", "vocab.json",
                                                 "merges.txt"};
  return files;
}
inline const std::vector<std::string>& optional_model_files() {
  static const std::vector<std::string> files = {"generation_config.json"};
  return files;
}

struct ModelAlias {
  std::string_view name;
  std::string_view repo_id;
};
// The short names of the GPT-2 checkpoints (the hub redirects them to these repositories).
inline constexpr ModelAlias kModelAliases[] = {
    {"gpt2", "openai-community/gpt2"},
    {"gpt2-medium", "openai-community/gpt2-medium"},
    {"gpt2-large", "openai-community/gpt2-large"},
    {"gpt2-xl", "openai-community/gpt2-xl"},
    {"distilgpt2", "distilbert/distilgpt2"},
};

inline std::string known_model_names() {
  std::string s;
  for (const auto& a : kModelAliases) s += std::string(s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

// The hub repository a model name means: a short name from kModelAliases, or "owner/name" itself.
// Empty when `name` is neither.
inline std::optional<std::string> repo_id_for(std::string_view name) {
  for (const auto& a : kModelAliases)
    if (a.name == name) return std::string(a.repo_id);
  auto valid_part = [](std::string_view part) {
    if (part.empty() || part.size() > 96 || part == "." || part == "..") return false;
    if (part.front() == '-' || part.front() == '.') return false;
    return std::ranges::all_of(
        part, [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
  };
  const auto slash = name.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  if (valid_part(name.substr(0, slash)) && valid_part(name.substr(slash + 1)))
    return std::string(name);
  return std::nullopt;
}

// The repository ids a model may be cached under: openai-community/gpt2 was once plain "gpt2",
// and older caches hold it as models--gpt2.
inline std::vector<std::string> cache_names_for(const std::string& repo_id) {
  std::vector<std::string> names = {repo_id};
  for (const auto& a : kModelAliases)
    if (a.repo_id == repo_id) names.emplace_back(a.name);
  return names;
}

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// huggingface_hub's _is_true: 1, ON, YES, TRUE in any case.
inline bool env_true(const char* name) {
  std::string v = env_or(name, "");
  std::ranges::transform(v, v.begin(), [](unsigned char c) { return std::toupper(c); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

inline fs::path expand_user(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) return env_or("HOME", "/") + path.substr(1);
  return path;
}

// The environment, as huggingface_hub's constants.py reads it.
struct HubEnvironment {
  std::string endpoint;  // HF_ENDPOINT, default https://huggingface.co; no trailing '/'
  fs::path hf_home;      // HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface
  fs::path cache_dir;    // HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub
  bool offline = false;  // HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is true
  bool progress = true;  // HF_HUB_DISABLE_PROGRESS_BARS is not true
  std::string
      token;  // HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the file HF_TOKEN_PATH / $HF_HOME/token

  static HubEnvironment from_environment() {
    HubEnvironment e;
    e.endpoint = env_or("HF_ENDPOINT", "https://huggingface.co");
    while (e.endpoint.size() > 1 && e.endpoint.back() == '/') e.endpoint.pop_back();
    const std::string xdg = env_or("XDG_CACHE_HOME", (expand_user("~") / ".cache").string());
    e.hf_home = expand_user(env_or("HF_HOME", (fs::path(xdg) / "huggingface").string()));
    e.cache_dir = expand_user(
        env_or("HF_HUB_CACHE", env_or("HUGGINGFACE_HUB_CACHE", (e.hf_home / "hub").string())));
    e.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
    e.progress = !env_true("HF_HUB_DISABLE_PROGRESS_BARS");
    e.token = env_or("HF_TOKEN", env_or("HUGGING_FACE_HUB_TOKEN", ""));
    if (e.token.empty()) {
      std::ifstream in(expand_user(env_or("HF_TOKEN_PATH", (e.hf_home / "token").string())));
      std::getline(in, e.token);
      while (!e.token.empty() && std::isspace(static_cast<unsigned char>(e.token.back())))
        e.token.pop_back();
    }
    return e;
  }

  // {endpoint}/{repo_id}/resolve/{revision}/{filename}, as hf_hub_url builds it.
  std::string resolve_url(const std::string& repo_id, const std::string& revision,
                          const std::string& filename) const {
    std::string rev;
    for (const unsigned char c : revision) {  // quote(revision, safe="")
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        rev += static_cast<char>(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        rev += buf;
      }
    }
    return endpoint + "/" + repo_id + "/resolve/" + rev + "/" + filename;
  }
};

inline bool is_commit_hash(std::string_view s) {
  return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// One repository's folder in the cache.
class CachedRepo {
 public:
  CachedRepo(const fs::path& cache_dir, const std::string& repo_id)
      : dir_(cache_dir / folder_name(repo_id)) {}

  static std::string folder_name(const std::string& repo_id) {
    std::string name = "models--";
    for (const char c : repo_id) name += c == '/' ? std::string("--") : std::string(1, c);
    return name;
  }

  const fs::path& dir() const { return dir_; }
  fs::path blob(const std::string& etag) const { return dir_ / "blobs" / etag; }
  fs::path snapshot(const std::string& commit) const { return dir_ / "snapshots" / commit; }
  fs::path ref(const std::string& revision) const { return dir_ / "refs" / revision; }

  // The commit a revision names: itself if it is a commit hash, else the content of refs/<rev>.
  std::optional<std::string> commit_for(const std::string& revision) const {
    if (is_commit_hash(revision)) return revision;
    std::ifstream in(ref(revision));
    std::string commit;
    if (!std::getline(in, commit) || !is_commit_hash(commit)) return std::nullopt;
    return commit;
  }

  // The snapshot folder of `revision` if it holds every required file.
  std::optional<fs::path> complete_snapshot(const std::string& revision) const {
    const auto commit = commit_for(revision);
    if (!commit) return std::nullopt;
    const fs::path snap = snapshot(*commit);
    for (const auto& f : required_model_files()) {
      std::error_code ec;
      if (!fs::is_regular_file(snap / f, ec)) return std::nullopt;  // follows the symlink
    }
    return snap;
  }

  void write_ref(const std::string& revision, const std::string& commit) const {
    if (revision == commit) return;
    const fs::path path = ref(revision);
    fs::create_directories(path.parent_path());
    const fs::path tmp = path.string() + ".tmp";
    std::ofstream(tmp) << commit;
    fs::rename(tmp, path);
  }

  // snapshots/<commit>/<filename> -> ../../blobs/<etag>, as huggingface_hub links them (a copy
  // where the file system has no symlinks).
  void link(const std::string& commit, const std::string& filename, const std::string& etag) const {
    const fs::path pointer = snapshot(commit) / filename;
    fs::create_directories(pointer.parent_path());
    std::error_code ec;
    fs::remove(pointer, ec);
    fs::create_symlink(fs::path("..") / ".." / "blobs" / etag, pointer, ec);
    if (ec) fs::copy_file(blob(etag), pointer, fs::copy_options::overwrite_existing);
  }

  void mark_missing(const std::string& commit, const std::string& filename) const {
    const fs::path path = dir_ / ".no_exist" / commit / filename;
    fs::create_directories(path.parent_path());
    std::ofstream{path};
  }

 private:
  fs::path dir_;
};

// The snapshot of a model in the cache, under its repository id or an older name for it.
inline std::optional<fs::path> find_in_cache(const fs::path& cache_dir, const std::string& repo_id,
                                             const std::string& revision) {
  for (const auto& name : cache_names_for(repo_id))
    if (auto snap = CachedRepo(cache_dir, name).complete_snapshot(revision)) return snap;
  return std::nullopt;
}

}  // namespace ctformer::cli
