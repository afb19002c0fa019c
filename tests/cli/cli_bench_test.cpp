// `ctformer bench` end to end, on a small random model with GPT-2's real vocabulary.
#define BOOST_TEST_MODULE cli_bench
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/ops/packed_matmul.hpp"
#include "support/random_gpt2.hpp"
#include "support/run_cli.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
namespace fs = std::filesystem;
using test::run_cli;

using ctformer::test::RequireGpt2Vocab;
BOOST_TEST_GLOBAL_FIXTURE(RequireGpt2Vocab);

using ctformer::test::contains;

namespace {

// A prompt file in a temporary folder that lives as long as the object.
struct PromptFile {
  test::TempDir dir{"cli-bench"};
  fs::path path;
  explicit PromptFile(const std::string& content) : path(dir.path / "prompts.txt") {
    std::ofstream(path, std::ios::binary) << content;
  }
  std::string arg() const {
    std::string quoted =
        "'";  // built step by step: GCC 12 warns falsely on "'" + string (-Wrestrict)
    quoted += path.string();
    quoted += '\'';
    return quoted;
  }
};

const std::vector<std::string> kPrompts = {"My example 0", "Hello, world",
                                           "Caf\xc3\xa9 \xf0\x9f\x98\x80", "The quick brown fox"};

std::string lines(const std::vector<std::string>& prompts) {
  std::string s;
  for (const auto& p : prompts) s += p + "\n";
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(json_counts_match_generate_on_the_same_prompts) {
  const PromptFile file(lines(kPrompts));
  const auto b = run_cli("bench " + test::TinyFullVocabModel::shared().arg() + " --prompts " +
                         file.arg() + " --json --max-length 20 --batch-size 3");
  BOOST_REQUIRE_EQUAL(b.status, 0);
  const auto j = nlohmann::json::parse(b.out);
  for (const char* key :
       {"requests", "prompt_tokens", "generated_tokens", "seconds", "tokens_per_second",
        "ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99", "peak_memory_bytes", "device",
        "dtype", "cpu_kernel", "batch_size", "max_length", "workload", "model"})
    BOOST_TEST(j.contains(key), key);

  const auto g = run_cli("generate " + test::TinyFullVocabModel::shared().arg() + " --file " +
                         file.arg() + " --json --max-length 20");
  BOOST_REQUIRE_EQUAL(g.status, 0);
  std::size_t prompt_tokens = 0, generated_tokens = 0;
  for (const auto& r : nlohmann::json::parse(g.out)) {
    prompt_tokens += r["prompt_tokens"].get<std::size_t>();
    generated_tokens += r["generated_tokens"].get<std::size_t>();
  }
  BOOST_TEST(j["requests"].get<std::size_t>() == kPrompts.size());
  BOOST_TEST(j["prompt_tokens"].get<std::size_t>() == prompt_tokens);
  BOOST_TEST(j["generated_tokens"].get<std::size_t>() == generated_tokens);
  BOOST_TEST(generated_tokens > kPrompts.size());  // the ITL figures have something to measure

  const double seconds = j["seconds"].get<double>();
  BOOST_TEST(seconds > 0);
  BOOST_TEST(j["tokens_per_second"].get<double>() == double(generated_tokens) / seconds,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(j["ttft_ms_p50"].get<double>() > 0);
  BOOST_TEST(j["ttft_ms_p50"].get<double>() <= j["ttft_ms_p99"].get<double>());
  BOOST_TEST(j["ttft_ms_p99"].get<double>() <= seconds * 1000 + 1);
  BOOST_TEST(j["itl_ms_p50"].get<double>() >= 0);
  BOOST_TEST(j["itl_ms_p50"].get<double>() <= j["itl_ms_p99"].get<double>());
  BOOST_TEST(j["peak_memory_bytes"].get<std::int64_t>() > 1 << 20);
  BOOST_TEST(j["device"].get<std::string>() == "cpu");
  BOOST_TEST(j["cpu_kernel"].get<std::string>() == ctformer::ops::packed::best_kernel_name());
  BOOST_TEST(j["dtype"].get<std::string>() == "fp32");
  BOOST_TEST(j["batch_size"].get<int>() == 3);
  BOOST_TEST(j["max_length"].get<int>() == 20);
  BOOST_TEST(j["workload"].get<std::string>() == "prompts");
}

BOOST_AUTO_TEST_CASE(text_summary_and_other_dtypes) {
  const PromptFile file(lines(kPrompts));
  const auto r = run_cli("bench " + test::TinyFullVocabModel::shared().arg() + " --prompts " +
                         file.arg() + " --max-length 12");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  for (const char* part :
       {"4 prompts", "max_length 12", "fp32 weights, cpu (", " kernel)", "time", "prompt tokens",
        "generated tokens", "tokens/s", "ttft", "inter-token", "peak memory"})
    BOOST_TEST(contains(r.out, part), part << " in: " << r.out);
  // CTFORMER_CPU_KERNEL picks the kernel, and the report names the one that ran.
  ::setenv("CTFORMER_CPU_KERNEL", "portable", 1);
  const auto portable = run_cli("bench " + test::TinyFullVocabModel::shared().arg() +
                                " --prompts " + file.arg() + " --json --max-length 12");
  ::unsetenv("CTFORMER_CPU_KERNEL");
  BOOST_REQUIRE_EQUAL(portable.status, 0);
  BOOST_TEST(nlohmann::json::parse(portable.out)["cpu_kernel"].get<std::string>() == "portable");
  for (const char* dtype : {"fp16", "bf16"}) {
    const auto b = run_cli("bench " + test::TinyFullVocabModel::shared().arg() + " --prompts " +
                           file.arg() + " --json --max-length 12 --dtype " + dtype);
    BOOST_REQUIRE_EQUAL(b.status, 0);
    const auto j = nlohmann::json::parse(b.out);
    BOOST_TEST(j["dtype"].get<std::string>() == dtype);
    BOOST_TEST(j["requests"].get<int>() == 4);
    BOOST_TEST(j["generated_tokens"].get<int>() > 0);
  }
}

BOOST_AUTO_TEST_CASE(the_seed_workload_is_the_default) {
  // 1,000 prompts "My example N"; a short max_length keeps it fast.
  const auto r =
      run_cli("bench " + test::TinyFullVocabModel::shared().arg() + " --json --max-length 6");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  const auto j = nlohmann::json::parse(r.out);
  BOOST_TEST(j["workload"].get<std::string>() == "seed");
  BOOST_TEST(j["requests"].get<int>() == 1000);
  // "My", " example", " N": 3 tokens or more each; the rest of the 6 is generated.
  BOOST_TEST(j["prompt_tokens"].get<int>() >= 3000);
  BOOST_TEST(j["generated_tokens"].get<int>() >= 1000);
  BOOST_TEST(j["prompt_tokens"].get<int>() + j["generated_tokens"].get<int>() <= 6000);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_with_the_usage_line) {
  for (const std::string args :
       {"bench", "bench --bogus", "bench --model", "bench --model x --workload other",
        "bench --model x --workload seed --prompts p.txt", "bench --model x --batch-size 0",
        "bench --model x --max-length 0", "bench --model x --max-length many"}) {
    const auto r = run_cli(args, "", true);
    BOOST_TEST(r.status == 2, args);
    BOOST_TEST(contains(r.out, "usage: ctformer bench"), args << ": " << r.out);
  }
  const auto help = run_cli("bench --help");
  BOOST_TEST(help.status == 0);
  BOOST_TEST(contains(help.out, "usage: ctformer bench"));
  BOOST_TEST(contains(run_cli("--help").out, "bench"));
}

BOOST_AUTO_TEST_CASE(runtime_errors_exit_1_with_one_clear_sentence) {
  auto expect = [](const std::string& args, std::initializer_list<std::string> parts) {
    const auto r = run_cli(args, "", true);
    BOOST_TEST(r.status == 1, args << ": " << r.out);
    BOOST_TEST(contains(r.out, "ctformer bench: error: "), args << ": " << r.out);
    for (const auto& part : parts) BOOST_TEST(contains(r.out, part), args << ": " << r.out);
  };
  expect("bench --model /nonexistent", {"/nonexistent", "does not exist"});
  expect(
      "bench " + test::TinyFullVocabModel::shared().arg() + " --prompts /nonexistent/prompts.txt",
      {"/nonexistent/prompts.txt"});
  const PromptFile gap("ok\n\nok\n");
  expect("bench " + test::TinyFullVocabModel::shared().arg() + " --prompts " + gap.arg(),
         {"line 2", "empty"});
  std::string long_prompt;
  for (int i = 0; i < 80; ++i) long_prompt += " word";
  const PromptFile too_long("hi\n" + long_prompt + "\n");
  expect("bench " + test::TinyFullVocabModel::shared().arg() + " --prompts " + too_long.arg(),
         {"prompt 2", "80 tokens", "n_positions 64"});
  expect("bench " + test::TinyFullVocabModel::shared().arg() + " --dtype fp8",
         {"fp8", "fp32, fp16, bf16"});
  expect("bench " + test::TinyFullVocabModel::shared().arg() + " --device cuda",
         {"CUDA", "--device cpu"});
}
