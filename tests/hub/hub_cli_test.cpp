// `ctformer download` and `ctformer info`, and `generate --model NAME`, end to end against a fake
// hub on loopback (HF_ENDPOINT) with a temporary HF_HOME: exit codes, output, resumption.
#define BOOST_TEST_MODULE hub_cli
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/ops/packed_matmul.hpp"
#include "fake_hub.hpp"
#include "support/byte_vocab.hpp"
#include "support/random_gpt2.hpp"
#include "support/run_cli.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using namespace ctformer;
using test::FakeHub;
using test::run_cli;
using test::Trouble;

using ctformer::test::contains;
using ctformer::test::read_file;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// A tiny GPT-2 with a byte-level vocabulary (256 bytes + <|endoftext|>, no merges) and random
// weights: every file a hub repository has, small enough to serve in a test.
std::map<std::string, std::string> tiny_model_files() {
  std::map<std::string, std::string> files;
  nlohmann::json vocab = test::byte_level_vocab();
  vocab["<|endoftext|>"] = 256;
  files["vocab.json"] = vocab.dump();
  files["merges.txt"] = "#version: 0.2\n";
  files["generation_config.json"] = R"({"bos_token_id": 256, "eos_token_id": 256})";

  test::TempDir tmp("hub-cli-model");
  test::write_random_gpt2(tmp.path, {.vocab_size = 257, .n_positions = 32, .eos_token_id = 256}, 3);
  files["config.json"] = read_file(tmp.path / "config.json");
  files["model.safetensors"] = read_file(tmp.path / "model.safetensors");
  return files;
}

// Parameters of the tiny model: V*C + P*C + layer + final LayerNorm.
constexpr std::int64_t kTinyParams =
    257 * 16 + 32 * 16 +
    (2 * 16 + 16 * 48 + 48 + 16 * 16 + 16 + 2 * 16 + 16 * 64 + 64 + 64 * 16 + 16) + 2 * 16;

struct Fixture {
  test::TempDir tmp{"hub-cli"};
  FakeHub hub;
  Fixture() {
    for (auto& [name, content] : tiny_model_files())
      hub.files[name] = {content, name == "model.safetensors"};
    for (const char* v :
         {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
          "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "XDG_CACHE_HOME"})
      ::unsetenv(v);
    ::setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
    ::setenv("HF_HOME", (tmp.path / "hf").c_str(), 1);
  }
  ~Fixture() {
    ::unsetenv("HF_ENDPOINT");
    ::unsetenv("HF_HOME");
    ::unsetenv("HF_HUB_OFFLINE");
  }
  fs::path snapshot() const {
    return tmp.path / "hf" / "hub" / "models--openai-community--gpt2" / "snapshots" / hub.commit;
  }
  void check_files(const fs::path& dir) const {
    for (const auto& [name, file] : hub.files)
      BOOST_TEST(read_file(dir / name) == file.content, name);
  }
};

// The error line: "ctformer <command>: error: <one sentence>" and nothing else.
void check_one_error_line(const test::CliResult& r, const std::string& command) {
  BOOST_TEST_MESSAGE(r.out);
  BOOST_TEST(r.status == 1, r.out);
  BOOST_TEST(r.out.starts_with("ctformer " + command + ": error: "), r.out);
  BOOST_TEST(r.out.find('\n') == r.out.size() - 1, "more than one line: " << r.out);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(hub_cli, Fixture)

BOOST_AUTO_TEST_CASE(every_subcommand_has_help) {
  for (const char* cmd : {"download", "info", "generate"}) {
    const auto r = run_cli(std::string(cmd) + " --help");
    BOOST_TEST(r.status == 0, cmd);
    BOOST_TEST(contains(r.out, std::string("usage: ctformer ") + cmd), r.out);
  }
  BOOST_TEST(contains(run_cli("--help").out, "download"));
  BOOST_TEST(contains(run_cli("--help").out, "info"));
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_with_the_usage_line) {
  for (const char* args :
       {"download", "download gpt3", "download gpt2 gpt2-xl", "download gpt2 --stall-timeout 0",
        "download gpt2 --retries x", "download gpt2 --frobnicate", "download gpt2 --dir"}) {
    const auto r = run_cli(args, "", true);
    BOOST_TEST(r.status == 2, args);
    BOOST_TEST(contains(r.out, "usage: ctformer download"), args << ": " << r.out);
  }
  for (const char* args : {"info", "info --model x --frobnicate"}) {
    const auto r = run_cli(args, "", true);
    BOOST_TEST(r.status == 2, args);
    BOOST_TEST(contains(r.out, "usage: ctformer info"), args << ": " << r.out);
  }
  BOOST_TEST(hub.requests().empty());
}

BOOST_AUTO_TEST_CASE(download_into_the_cache_then_info_and_generate_by_name) {
  const auto r = run_cli("download gpt2");
  BOOST_TEST_REQUIRE(r.status == 0);
  BOOST_TEST(trim(r.out) == snapshot().string());  // stdout: just the folder
  check_files(snapshot());

  // From now on, no network: the cache is enough.
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  hub.clear_requests();
  const auto info = run_cli("info --model gpt2 --json");
  BOOST_TEST_REQUIRE(info.status == 0, info.out);
  const auto j = nlohmann::json::parse(info.out);
  BOOST_TEST(j["model"] == snapshot().string());
  BOOST_TEST(j["parameters"]["from_config"] == kTinyParams);
  BOOST_TEST(j["parameters"]["in_safetensors"] == kTinyParams);
  BOOST_TEST(j["parameters"]["match"] == true);
  BOOST_TEST(j["weight_bytes"]["fp32"] == 4 * kTinyParams);
  BOOST_TEST(j["weight_bytes"]["fp16"] == 2 * kTinyParams);
  BOOST_TEST(j["kv_cache_bytes_per_token"]["fp32"] == 2 * 1 * 16 * 4);
  BOOST_TEST(j["config"]["head_dim"] == 8);
  BOOST_TEST(j["backends"]["cpu"]["built"] == true);
  BOOST_TEST(j["backends"]["cpu"]["projection_kernel"] ==
             ctformer::ops::packed::best_kernel_name());
  BOOST_TEST(j["gpu"]["detail"].get<std::string>().size() > 0u);

  const auto text = run_cli("info --model openai-community/gpt2");
  BOOST_TEST(text.status == 0);
  BOOST_TEST(contains(text.out, "they match"), text.out);
  BOOST_TEST(contains(text.out, "cuda backend"), text.out);
  BOOST_TEST(contains(text.out, std::string("projections by the ") +
                                    ctformer::ops::packed::best_kernel_name() + " kernel"),
             text.out);
  BOOST_TEST(contains(text.out, "gpu"), text.out);

  const auto gen = run_cli("generate --model gpt2 --prompt 'Hi' --max-new-tokens 3 --json");
  BOOST_TEST_REQUIRE(gen.status == 0, gen.out);
  BOOST_TEST_MESSAGE(text.out << gen.out);
  const auto g = nlohmann::json::parse(gen.out);
  BOOST_TEST(g[0]["prompt"] == "Hi");
  BOOST_TEST(g[0]["prompt_tokens"] == 2);
  BOOST_TEST(hub.requests().empty());
}

BOOST_AUTO_TEST_CASE(generate_downloads_a_model_it_does_not_have) {
  const auto gen =
      run_cli("generate --model distilgpt2 --prompt 'Hi' --max-new-tokens 2 --json", "", false);
  // distilbert/distilgpt2 is not on this fake hub: a 401 that names the URL.
  BOOST_TEST(gen.status == 1);
  hub.repo_id = "distilbert/distilgpt2";
  const auto ok = run_cli("generate --model distilgpt2 --prompt 'Hi' --max-new-tokens 2 --json");
  BOOST_TEST(ok.status == 0, ok.out);
  BOOST_TEST(fs::is_directory(tmp.path / "hf" / "hub" / "models--distilbert--distilgpt2"));
}

BOOST_AUTO_TEST_CASE(download_to_a_folder_resumes_a_dropped_transfer) {
  const std::size_t cut = hub.files["model.safetensors"].content.size() / 3;
  hub.add_trouble("model.safetensors", {Trouble::drop, cut});
  const fs::path dir = tmp.path / "gpt2";
  const auto r = run_cli("download gpt2 --dir '" + dir.string() + "' --retry-wait 0", "", true);
  BOOST_TEST_REQUIRE(r.status == 0, r.out);
  BOOST_TEST(contains(r.out, "retrying"), r.out);
  BOOST_TEST_MESSAGE(r.out);
  check_files(dir);
  BOOST_TEST(!fs::exists(dir / "model.safetensors.incomplete"));
  bool resumed = false;
  for (const auto& req : hub.gets())
    if (req.header("range") == "bytes=" + std::to_string(cut) + "-") resumed = true;
  BOOST_TEST(resumed);
}

BOOST_AUTO_TEST_CASE(runtime_errors_exit_1_with_one_sentence) {
  // A stalled server, with a 1-second stall timeout and no retries.
  hub.add_trouble("model.safetensors", {Trouble::stall, 100, 0, 10});
  auto r = run_cli("download gpt2 --quiet --stall-timeout 1 --retries 0", "", true);
  check_one_error_line(r, "download");
  BOOST_TEST(contains(r.out, "no data arrived"), r.out);

  // A repository the hub does not have.
  r = run_cli("download nobody/nothing --quiet", "", true);
  check_one_error_line(r, "download");
  BOOST_TEST(contains(r.out, hub.endpoint() + "/nobody/nothing/resolve/main/config.json"), r.out);

  // Nothing listening.
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
  r = run_cli("download gpt2 --quiet --retries 0", "", true);
  check_one_error_line(r, "download");
  BOOST_TEST(contains(r.out, "cannot connect"), r.out);

  // Offline, and not in the cache.
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  r = run_cli("info --model gpt2-xl", "", true);
  check_one_error_line(r, "info");
  BOOST_TEST(contains(r.out, "HF_HUB_OFFLINE"), r.out);
  r = run_cli("generate --model gpt2 --prompt x", "", true);
  check_one_error_line(r, "generate");

  // Neither a folder nor a name.
  r = run_cli("info --model ./no/such/folder", "", true);
  check_one_error_line(r, "info");
  BOOST_TEST(contains(r.out, "does not exist, and it is not a hub model name"), r.out);
}

BOOST_AUTO_TEST_CASE(progress_goes_to_stderr_and_the_folder_to_stdout) {
  const auto merged = run_cli("download gpt2", "", true);
  BOOST_TEST(merged.status == 0);
  BOOST_TEST(contains(merged.out, "downloading model.safetensors"), merged.out);
  BOOST_TEST(contains(merged.out, "downloaded model.safetensors"), merged.out);
  const auto again = run_cli("download gpt2", "", true);  // all cached: nothing fetched
  BOOST_TEST(contains(again.out, "already in the cache"), again.out);
  BOOST_TEST(!contains(again.out, "downloading"), again.out);
}

BOOST_AUTO_TEST_SUITE_END()
