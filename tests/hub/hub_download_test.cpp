// The hub downloader against a fake hub on loopback: the cache layout, reuse of cached files,
// resume with Range requests, stalls, dropped connections, wrong checksums, HTTP errors, a full
// disk, offline mode. Nothing here touches the real network.
#define BOOST_TEST_MODULE hub_download
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../../tools/ctformer/hub/hub.hpp"
#include "fake_hub.hpp"
#include "support/safetensors_writer.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using namespace ctformer;
using namespace ctformer::cli;
using test::FakeHub;
using test::Trouble;

using ctformer::test::contains;
using ctformer::test::read_file;

namespace {

// A fake hub with the default files, a temp cache, and quick timeouts.
struct Fixture {
  test::TempDir tmp{"hub-download"};
  FakeHub hub;
  DownloadOptions options;
  Fixture() {
    hub.add_default_files();
    options.stall_timeout = std::chrono::milliseconds(1000);
    options.retries = 3;
    options.backoff = std::chrono::milliseconds(10);
    options.progress = false;
    options.log = nullptr;
  }
  HubEnvironment env() const {
    HubEnvironment e;
    e.endpoint = hub.endpoint();
    e.hf_home = tmp.path / "hf";
    e.cache_dir = tmp.path / "hf" / "hub";
    e.progress = false;
    return e;
  }
  HubClient client() const { return HubClient(env(), options); }
  fs::path repo_dir() const { return env().cache_dir / "models--openai-community--gpt2"; }
  fs::path blob(const std::string& file) const {
    const auto& f = hub.files.at(file);
    return repo_dir() / "blobs" / (f.lfs ? f.sha256() : f.git_sha1());
  }
  void check_model(const fs::path& dir) const {
    for (const auto& [name, file] : hub.files)
      BOOST_TEST(read_file(dir / name) == file.content, name << " differs");
  }
  // No file in the cache or in `dir` is left half-written under a final name.
  static void check_no_incomplete(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
      BOOST_TEST(!e.path().string().ends_with(".incomplete"), e.path() << " left behind");
  }
};

template <class F>
DownloadError expect_download_error(F&& f) {
  try {
    f();
  } catch (const DownloadError& e) {
    return e;
  }
  BOOST_FAIL("expected a DownloadError");
  throw;  // unreachable
}

}  // namespace

BOOST_AUTO_TEST_SUITE(digests)

BOOST_AUTO_TEST_CASE(sha256_and_git_blob_ids_match_known_vectors) {
  BOOST_TEST(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(sha256_hex("abc") ==
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // FIPS 180-2's long vector: one million 'a', fed in pieces.
  Digest d(DigestAlgorithm::sha256);
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) d.update(chunk);
  BOOST_TEST(d.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // `printf 'hello\n' | git hash-object --stdin`, and the empty blob.
  BOOST_TEST(git_blob_sha1_hex("hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a");
  BOOST_TEST(git_blob_sha1_hex("") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

BOOST_AUTO_TEST_CASE(etags_are_classified_and_files_hashed_from_disk) {
  BOOST_TEST((etag_check(std::string(64, 'a')) == EtagCheck::sha256));
  BOOST_TEST((etag_check(std::string(40, '0')) == EtagCheck::git_blob));
  BOOST_TEST((etag_check("abc-123") == EtagCheck::none));
  BOOST_TEST((etag_check(std::string(64, 'A')) == EtagCheck::none));  // the hub sends lowercase
  BOOST_TEST(normalize_etag("W/\"abc\"") == "abc");
  BOOST_TEST(normalize_etag("\"abc\"") == "abc");
  test::TempDir tmp("hub-digest");
  std::ofstream(tmp.path / "f", std::ios::binary) << "hello\n";
  BOOST_TEST(hash_file(tmp.path / "f", EtagCheck::git_blob) ==
             "ce013625030ba8dba906f756967f9e9ca394464a");
  BOOST_TEST(hash_file(tmp.path / "f", EtagCheck::sha256) == sha256_hex("hello\n"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(names_environment_progress)

BOOST_AUTO_TEST_CASE(model_names_map_to_hub_repositories) {
  BOOST_TEST(*repo_id_for("gpt2") == "openai-community/gpt2");
  BOOST_TEST(*repo_id_for("gpt2-medium") == "openai-community/gpt2-medium");
  BOOST_TEST(*repo_id_for("gpt2-large") == "openai-community/gpt2-large");
  BOOST_TEST(*repo_id_for("gpt2-xl") == "openai-community/gpt2-xl");
  BOOST_TEST(*repo_id_for("distilgpt2") == "distilbert/distilgpt2");
  BOOST_TEST(*repo_id_for("openai-community/gpt2") == "openai-community/gpt2");
  BOOST_TEST(!repo_id_for("gpt3"));
  BOOST_TEST(!repo_id_for("./models/gpt2"));
  BOOST_TEST(!repo_id_for("a/b/c"));
  BOOST_TEST(!repo_id_for("../x"));
  BOOST_TEST(CachedRepo::folder_name("openai-community/gpt2") == "models--openai-community--gpt2");
}

BOOST_AUTO_TEST_CASE(the_environment_is_read_as_huggingface_hub_reads_it) {
  test::TempDir tmp("hub-env");
  for (const char* v : {"HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                        "XDG_CACHE_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN",
                        "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_DISABLE_PROGRESS_BARS"})
    ::unsetenv(v);
  ::setenv("HOME", tmp.path.c_str(), 1);
  HubEnvironment e = HubEnvironment::from_environment();
  BOOST_TEST(e.endpoint == "https://huggingface.co");
  BOOST_TEST(e.cache_dir == tmp.path / ".cache" / "huggingface" / "hub");
  BOOST_TEST(!e.offline);
  BOOST_TEST(e.token.empty());
  BOOST_TEST(e.resolve_url("openai-community/gpt2", "main", "config.json") ==
             "https://huggingface.co/openai-community/gpt2/resolve/main/config.json");
  BOOST_TEST(e.resolve_url("r/m", "refs/pr/1", "f") ==
             "https://huggingface.co/r/m/resolve/refs%2Fpr%2F1/f");

  ::setenv("XDG_CACHE_HOME", (tmp.path / "xdg").c_str(), 1);
  BOOST_TEST(HubEnvironment::from_environment().cache_dir ==
             tmp.path / "xdg" / "huggingface" / "hub");
  ::setenv("HF_HOME", (tmp.path / "hfhome").c_str(), 1);
  BOOST_TEST(HubEnvironment::from_environment().cache_dir == tmp.path / "hfhome" / "hub");
  std::ofstream(tmp.path / "hfhome-token") << "hf_fromfile\n";
  fs::create_directories(tmp.path / "hfhome");
  fs::copy_file(tmp.path / "hfhome-token", tmp.path / "hfhome" / "token");
  BOOST_TEST(HubEnvironment::from_environment().token == "hf_fromfile");
  ::setenv("HF_TOKEN", "hf_fromenv", 1);
  BOOST_TEST(HubEnvironment::from_environment().token == "hf_fromenv");
  ::setenv("HF_HUB_CACHE", (tmp.path / "hubcache").c_str(), 1);
  BOOST_TEST(HubEnvironment::from_environment().cache_dir == tmp.path / "hubcache");
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  BOOST_TEST(HubEnvironment::from_environment().endpoint == "http://127.0.0.1:9");
  for (const char* yes : {"1", "true", "YES", "on"}) {
    ::setenv("HF_HUB_OFFLINE", yes, 1);
    BOOST_TEST(HubEnvironment::from_environment().offline, yes);
  }
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  BOOST_TEST(!HubEnvironment::from_environment().offline);
  for (const char* v :
       {"HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "HF_HUB_OFFLINE", "HF_TOKEN"})
    ::unsetenv(v);
}

BOOST_AUTO_TEST_CASE(the_progress_line_shows_bytes_rate_and_eta) {
  BOOST_TEST(format_bytes(0) == "0 B");
  BOOST_TEST(format_bytes(1536) == "1.5 KiB");
  BOOST_TEST(format_bytes(548.1 * 1024 * 1024) == "548.1 MiB");
  BOOST_TEST(format_duration(7) == "7s");
  BOOST_TEST(format_duration(185) == "3m05s");
  BOOST_TEST(format_duration(7800) == "2h10m");
  const std::string line =
      format_progress("model.safetensors", 50 * 1024 * 1024, 100 * 1024 * 1024, 10 * 1024 * 1024);
  BOOST_TEST(line ==
             "model.safetensors  [##########..........]   50%  50.0 MiB / 100.0 MiB  "
             "10.0 MiB/s  ETA 5s");
  BOOST_TEST(format_progress("f", 2048, std::nullopt, 1024) == "f  2.0 KiB  1.0 KiB/s");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(downloads, Fixture)

BOOST_AUTO_TEST_CASE(a_model_lands_in_the_huggingface_cache_layout) {
  const fs::path snap = client().download_to_cache("openai-community/gpt2");
  BOOST_TEST(snap == repo_dir() / "snapshots" / hub.commit);
  check_model(snap);
  BOOST_TEST(read_file(repo_dir() / "refs" / "main") == hub.commit);
  for (const auto& [name, file] : hub.files) {
    BOOST_TEST(fs::is_symlink(snap / name), name);
    BOOST_TEST(fs::read_symlink(snap / name) ==
               fs::path("../../blobs") / fs::path(blob(name)).filename());
    BOOST_TEST(read_file(blob(name)) == file.content);
  }
  check_no_incomplete(tmp.path);
  // LFS bytes come from the redirect target; HEADs ask for no compression.
  bool cdn = false;
  for (const auto& r : hub.requests()) {
    if (r.method == "GET" && r.path.starts_with("/cdn/")) cdn = true;
    if (r.method == "HEAD") BOOST_TEST(r.header("accept-encoding") == "identity");
    BOOST_TEST(r.header("authorization").empty());
  }
  BOOST_TEST(cdn);
}

BOOST_AUTO_TEST_CASE(files_already_in_the_cache_are_not_downloaded_again) {
  client().download_to_cache("openai-community/gpt2");
  hub.clear_requests();
  const fs::path snap = client().download_to_cache("openai-community/gpt2");
  check_model(snap);
  BOOST_TEST(hub.gets().size() == 0u);  // only HEADs, to learn the current commit
}

BOOST_AUTO_TEST_CASE(resolve_model_finds_a_cached_model_without_the_network) {
  client().download_to_cache("openai-community/gpt2");
  hub.clear_requests();
  HubEnvironment e = env();
  e.endpoint = "http://127.0.0.1:1";  // nothing listens there
  const fs::path snap = resolve_model("gpt2", options, e);
  BOOST_TEST(snap == repo_dir() / "snapshots" / hub.commit);
  BOOST_TEST(resolve_model("openai-community/gpt2", options, e) == snap);
  BOOST_TEST(hub.requests().size() == 0u);
  // A directory is returned as it is, even one named like a model.
  fs::create_directories(tmp.path / "gpt2");
  BOOST_TEST(resolve_model((tmp.path / "gpt2").string(), options, e) == tmp.path / "gpt2");
}

BOOST_AUTO_TEST_CASE(resolve_model_downloads_what_is_not_cached) {
  const fs::path snap = resolve_model("gpt2", options, env());
  check_model(snap);
  BOOST_TEST(snap == repo_dir() / "snapshots" / hub.commit);
  // A path that is neither a folder nor a model name.
  BOOST_CHECK_THROW(resolve_model("./no/such/dir", options, env()), FileError);
}

BOOST_AUTO_TEST_CASE(an_older_cache_under_the_short_name_is_used) {
  // Python once cached openai-community/gpt2 as models--gpt2.
  const fs::path old = env().cache_dir / "models--gpt2";
  const std::string commit(40, 'b');
  fs::create_directories(old / "refs");
  std::ofstream(old / "refs" / "main") << commit;
  for (const auto& f : required_model_files()) {
    fs::create_directories(old / "snapshots" / commit);
    std::ofstream(old / "snapshots" / commit / f) << "x";
  }
  HubEnvironment e = env();
  e.endpoint = "http://127.0.0.1:1";
  BOOST_TEST(resolve_model("gpt2", options, e) == old / "snapshots" / commit);
}

BOOST_AUTO_TEST_CASE(offline_mode_uses_the_cache_and_never_the_network) {
  HubEnvironment e = env();
  e.offline = true;
  DownloadError err = expect_download_error(
      [&] { HubClient(e, options).download_to_cache("openai-community/gpt2"); });
  BOOST_TEST((err.kind() == DownloadErrorKind::offline));
  BOOST_TEST(contains(err.what(), "HF_HUB_OFFLINE"));
  err = expect_download_error([&] { resolve_model("gpt2", options, e); });
  BOOST_TEST((err.kind() == DownloadErrorKind::offline));
  BOOST_TEST(hub.requests().size() == 0u);

  client().download_to_cache("openai-community/gpt2");
  hub.clear_requests();
  BOOST_TEST(HubClient(e, options).download_to_cache("openai-community/gpt2") ==
             repo_dir() / "snapshots" / hub.commit);
  BOOST_TEST(resolve_model("gpt2", options, e) == repo_dir() / "snapshots" / hub.commit);
  // --dir while offline copies from the cache.
  const fs::path dir = tmp.path / "copy";
  HubClient(e, options).download_to_dir("openai-community/gpt2", dir);
  check_model(dir);
  BOOST_TEST(hub.requests().size() == 0u);
}

BOOST_AUTO_TEST_CASE(an_unreachable_hub_falls_back_to_the_cache) {
  client().download_to_cache("openai-community/gpt2");
  HubEnvironment e = env();
  e.endpoint = "http://127.0.0.1:1";
  options.retries = 0;
  BOOST_TEST(HubClient(e, options).download_to_cache("openai-community/gpt2") ==
             repo_dir() / "snapshots" / hub.commit);
}

BOOST_AUTO_TEST_CASE(a_dropped_connection_resumes_with_a_range_request) {
  const std::size_t cut = 100'000;
  hub.add_trouble("model.safetensors", {Trouble::drop, cut});
  const fs::path snap = client().download_to_cache("openai-community/gpt2");
  check_model(snap);
  check_no_incomplete(tmp.path);
  const auto gets = hub.gets();
  std::vector<test::HttpRequest> cdn;
  for (const auto& r : gets)
    if (r.path.starts_with("/cdn/")) cdn.push_back(r);
  BOOST_TEST_REQUIRE(cdn.size() == 2u);
  BOOST_TEST(cdn[0].header("range").empty());
  BOOST_TEST(cdn[0].body_bytes_sent == cut);
  BOOST_TEST(cdn[1].header("range") == "bytes=" + std::to_string(cut) + "-");
  BOOST_TEST(cdn[1].body_bytes_sent == hub.files["model.safetensors"].content.size() - cut);
}

BOOST_AUTO_TEST_CASE(a_partial_file_from_an_earlier_run_is_resumed) {
  const std::string& content = hub.files["model.safetensors"].content;
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(blob("model.safetensors").string() + ".incomplete", std::ios::binary)
      << content.substr(0, 50'000);
  client().download_to_cache("openai-community/gpt2");
  BOOST_TEST(read_file(blob("model.safetensors")) == content);
  for (const auto& r : hub.gets())
    if (r.path.starts_with("/cdn/")) {
      BOOST_TEST(r.header("range") == "bytes=50000-");
      BOOST_TEST(r.body_bytes_sent == content.size() - 50'000);
    }
}

BOOST_AUTO_TEST_CASE(a_server_that_ignores_range_makes_the_download_start_over) {
  const std::string& content = hub.files["model.safetensors"].content;
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(blob("model.safetensors").string() + ".incomplete", std::ios::binary)
      << content.substr(0, 1000);
  hub.add_trouble("model.safetensors", {Trouble::ignore_range});
  client().download_to_cache("openai-community/gpt2");
  BOOST_TEST(read_file(blob("model.safetensors")) == content);
}

BOOST_AUTO_TEST_CASE(a_partial_file_longer_than_the_file_is_replaced) {
  const std::string& content = hub.files["model.safetensors"].content;
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(blob("model.safetensors").string() + ".incomplete", std::ios::binary)
      << content << "extra";
  client().download_to_cache("openai-community/gpt2");
  BOOST_TEST(read_file(blob("model.safetensors")) == content);
}

BOOST_AUTO_TEST_CASE(a_stalled_server_fails_after_the_stall_timeout_and_keeps_the_partial_file) {
  hub.add_trouble("model.safetensors", {Trouble::stall, 4096, 0, 100});
  options.retries = 0;
  const auto start = std::chrono::steady_clock::now();
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("openai-community/gpt2"); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST((e.kind() == DownloadErrorKind::stalled), e.what());
  BOOST_TEST(seconds < 10.0);  // 1 s, plus up to about 1 s until libcurl next asks
  BOOST_TEST(seconds >= 0.9);
  BOOST_TEST(contains(e.what(), "/cdn/"));
  BOOST_TEST(contains(e.what(), "stall timeout"));
  BOOST_TEST(contains(e.what(), ".incomplete"));
  // Nothing looks whole: no blob, no snapshot entry; the partial file holds what arrived.
  BOOST_TEST(!fs::exists(blob("model.safetensors")));
  BOOST_TEST(!fs::exists(repo_dir() / "snapshots" / hub.commit / "model.safetensors"));
  BOOST_TEST(!fs::exists(repo_dir() / "refs" / "main"));
  BOOST_TEST(fs::file_size(blob("model.safetensors").string() + ".incomplete") == 4096u);
}

BOOST_AUTO_TEST_CASE(a_stall_is_retried_and_the_retry_resumes) {
  hub.add_trouble("model.safetensors", {Trouble::stall, 4096});
  check_model(client().download_to_cache("openai-community/gpt2"));
  std::vector<std::string> ranges;
  for (const auto& r : hub.gets())
    if (r.path.starts_with("/cdn/")) ranges.push_back(r.header("range"));
  BOOST_TEST(ranges == (std::vector<std::string>{"", "bytes=4096-"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_wrong_checksum_is_an_error_and_leaves_no_file) {
  hub.add_trouble("model.safetensors", {Trouble::corrupt});
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("openai-community/gpt2"); });
  BOOST_TEST((e.kind() == DownloadErrorKind::checksum), e.what());
  BOOST_TEST(contains(e.what(), "model.safetensors"));
  BOOST_TEST(contains(e.what(), hub.files["model.safetensors"].sha256()));
  BOOST_TEST(!fs::exists(blob("model.safetensors")));
  BOOST_TEST(!fs::exists(blob("model.safetensors").string() + ".incomplete"));
  BOOST_TEST(!fs::exists(repo_dir() / "snapshots" / hub.commit / "model.safetensors"));
  // The next run downloads a good copy.
  check_model(client().download_to_cache("openai-community/gpt2"));
}

BOOST_AUTO_TEST_CASE(a_wrong_git_blob_id_is_caught_for_small_files) {
  hub.add_trouble("config.json", {Trouble::corrupt});
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("openai-community/gpt2"); });
  BOOST_TEST((e.kind() == DownloadErrorKind::checksum), e.what());
  BOOST_TEST(contains(e.what(), "git blob sha1"));
  BOOST_TEST(!fs::exists(blob("config.json")));
}

BOOST_AUTO_TEST_CASE(a_missing_file_is_a_404_with_its_url) {
  hub.files.erase("vocab.json");
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("openai-community/gpt2"); });
  BOOST_TEST((e.kind() == DownloadErrorKind::http_status));
  BOOST_TEST(e.http_status() == 404);
  BOOST_TEST(contains(e.what(), hub.endpoint() + "/openai-community/gpt2/resolve/"));
  BOOST_TEST(contains(e.what(), "vocab.json"));
  BOOST_TEST(contains(e.what(), "404"));
}

BOOST_AUTO_TEST_CASE(a_missing_optional_file_is_skipped_and_remembered) {
  hub.files.erase("generation_config.json");
  const fs::path snap = client().download_to_cache("openai-community/gpt2");
  BOOST_TEST(fs::is_regular_file(snap / "model.safetensors"));
  BOOST_TEST(!fs::exists(snap / "generation_config.json"));
  BOOST_TEST(fs::exists(repo_dir() / ".no_exist" / hub.commit / "generation_config.json"));
}

BOOST_AUTO_TEST_CASE(an_unknown_repository_is_a_401_that_says_what_to_check) {
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("nobody/nothing"); });
  BOOST_TEST(e.http_status() == 401);
  BOOST_TEST(contains(e.what(), "/nobody/nothing/resolve/main/config.json"));
  BOOST_TEST(contains(e.what(), "HF_TOKEN"));
  BOOST_TEST(contains(e.what(), "Repository Not Found"));
}

BOOST_AUTO_TEST_CASE(the_token_is_sent_as_a_bearer_token) {
  hub.required_token = "hf_secret";
  BOOST_TEST(expect_download_error([&] {
               client().download_to_cache("openai-community/gpt2");
             }).http_status() == 401);
  hub.clear_requests();
  HubEnvironment e = env();
  e.token = "hf_secret";
  check_model(HubClient(e, options).download_to_cache("openai-community/gpt2"));
  for (const auto& r : hub.requests())
    if (r.path.find("/resolve/") != std::string::npos)
      BOOST_TEST(r.header("authorization") == "Bearer hf_secret");
}

BOOST_AUTO_TEST_CASE(server_errors_are_retried_with_backoff) {
  hub.add_trouble("config.json", {Trouble::status, 0, 503, 2});
  check_model(client().download_to_cache("openai-community/gpt2"));
  options.retries = 1;
  hub.add_trouble("merges.txt", {Trouble::status, 0, 500, 5});
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("openai-community/gpt2"); });
  BOOST_TEST(e.http_status() == 500);
  BOOST_TEST(contains(e.what(), "gave up after 2 attempts"));
}

BOOST_AUTO_TEST_CASE(a_renamed_repository_redirect_is_followed) {
  check_model(client().download_to_cache("gpt2"));  // 307 to /openai-community/gpt2/...
  BOOST_TEST(fs::exists(env().cache_dir / "models--gpt2" / "refs" / "main"));
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_a_connect_error) {
  HubEnvironment e = env();
  e.endpoint = "http://127.0.0.1:1";
  options.retries = 0;
  const DownloadError err = expect_download_error(
      [&] { HubClient(e, options).download_to_cache("openai-community/gpt2"); });
  BOOST_TEST((err.kind() == DownloadErrorKind::connect), err.what());
  BOOST_TEST(contains(err.what(), "127.0.0.1:1"));
}

BOOST_AUTO_TEST_CASE(a_full_disk_is_reported_as_such) {
  // The partial file is a link to /dev/full, where every write fails with ENOSPC.
  fs::create_directories(repo_dir() / "blobs");
  fs::create_symlink("/dev/full", blob("model.safetensors").string() + ".incomplete");
  const DownloadError e =
      expect_download_error([&] { client().download_to_cache("openai-community/gpt2"); });
  BOOST_TEST((e.kind() == DownloadErrorKind::disk_full), e.what());
  BOOST_TEST(contains(e.what(), "disk is full"));
  BOOST_TEST(!fs::exists(blob("model.safetensors")));
}

BOOST_AUTO_TEST_CASE(two_downloads_of_one_file_do_not_mix) {
  PartialFile held(blob("model.safetensors"));  // as another process writing it would
  BOOST_CHECK_EXCEPTION(
      client().download_to_cache("openai-community/gpt2"), FileError,
      [](const FileError& e) { return contains(e.what(), "another process is downloading"); });
}

BOOST_AUTO_TEST_CASE(download_to_a_folder_writes_whole_files_only_and_skips_good_ones) {
  const fs::path dir = tmp.path / "model";
  hub.add_trouble("model.safetensors", {Trouble::drop, 10'000});
  client().download_to_dir("openai-community/gpt2", dir);
  check_model(dir);
  check_no_incomplete(dir);
  hub.clear_requests();
  client().download_to_dir("openai-community/gpt2", dir);  // all there, hashes match
  BOOST_TEST(hub.gets().size() == 0u);
  std::ofstream(dir / "vocab.json") << "damaged";
  client().download_to_dir("openai-community/gpt2", dir);
  check_model(dir);
  BOOST_TEST(hub.gets().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
