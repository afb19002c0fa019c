// `ctformer generate/bench --device cuda` end to end. What can be checked depends on the build and
// the machine, so each case runs only where it applies (the others are reported as skipped):
//   - a CLI built without CUDA refuses with "compiled without CUDA";
//   - a CUDA build on a machine without a usable GPU exits 1 with one sentence saying why;
//   - a CUDA build with a GPU generates, greedily, the same tokens as the CPU.
// `ctformer info --json` says which case this is, so that a CUDA build that silently lost its CUDA
// backend fails here instead of passing as a CPU-only build.
#define BOOST_TEST_MODULE cli_cuda
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/byte_vocab.hpp"
#include "support/run_cli.hpp"
#include "support/safetensors_writer.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;
using test::contains;
using test::run_cli;

namespace {

// tests/data's gpt2-h16 (head size 16, which the CUDA kernels support) with a byte-level tokenizer
// written beside it, so that the test needs neither GPT-2's vocabulary nor a big model. Ids 0-255
// are the bytes; 256-318 are two-letter tokens that no merge produces, present only so that every
// id the model can emit decodes; 319 is <|endoftext|>, the model's eos.
struct TinyModel {
  test::TempDir dir{"cli-cuda"};
  TinyModel() {
    for (const char* f : {"config.json", "model.safetensors"})
      fs::copy_file(test::data_dir() / "models" / "gpt2-h16" / f, dir.path / f);
    nlohmann::json vocab = test::byte_level_vocab();
    for (int i = 0; i < 63; ++i)
      vocab[std::string{char('a' + i / 26), char('a' + i % 26)}] = 256 + i;
    vocab["<|endoftext|>"] = 319;
    std::ofstream(dir.path / "vocab.json") << vocab.dump();
    std::ofstream(dir.path / "merges.txt") << "#version: 0.2\n";
  }
  std::string arg() const { return "--model '" + dir.path.string() + "'"; }

  static const TinyModel& shared() {
    static const TinyModel model;
    return model;
  }
};

// What `ctformer info --json` says about this build's CUDA backend and this machine's GPU.
struct CudaAvailability {
  bool built = false;
  bool gpu_usable = false;
  std::string gpu_detail;

  static const CudaAvailability& get() {
    static const CudaAvailability a = [] {
      const auto r = run_cli("info " + TinyModel::shared().arg() + " --json");
      if (r.status != 0) throw std::runtime_error("ctformer info failed: " + r.out);
      const auto j = nlohmann::json::parse(r.out);
      return CudaAvailability{j["backends"]["cuda"]["built"].get<bool>(),
                              j["gpu"]["usable"].get<bool>(),
                              j["gpu"]["detail"].get<std::string>()};
    }();
    return a;
  }
};

boost::test_tools::assertion_result cli_without_cuda(utf::test_unit_id) {
  return !CudaAvailability::get().built;
}
boost::test_tools::assertion_result cuda_cli_without_gpu(utf::test_unit_id) {
  const auto& a = CudaAvailability::get();
  boost::test_tools::assertion_result r(a.built && !a.gpu_usable);
  r.message() << "GPU: " << a.gpu_detail;
  return r;
}
boost::test_tools::assertion_result cuda_cli_with_gpu(utf::test_unit_id) {
  const auto& a = CudaAvailability::get();
  boost::test_tools::assertion_result r(a.built && a.gpu_usable);
  r.message() << "GPU: " << a.gpu_detail;
  return r;
}

// The same `--device cuda` failure through both commands that take --device.
std::vector<std::string> device_cuda_commands() {
  return {"generate " + TinyModel::shared().arg() + " --prompt hi --device cuda",
          "bench " + TinyModel::shared().arg() + " --device cuda"};
}

// stdout of a command that must succeed (parsed as JSON by the callers, so stderr is kept out of
// it); on failure, the message holds stderr as well.
std::string run_ok(const std::string& args, const std::string& input = "") {
  const auto r = run_cli(args, input);
  BOOST_REQUIRE_MESSAGE(
      r.status == 0, args << " exited with " << r.status << ": " << run_cli(args, input, true).out);
  return r.out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_gpu_is_usable_where_one_is_required) {
  if (!test::gpu_required()) return;  // CTFORMER_REQUIRE_GPU=1: a GPU machine (gpu-check.sh)
  const auto& a = CudaAvailability::get();
  BOOST_TEST(a.built, "CTFORMER_REQUIRE_GPU=1 but the CLI was built without CUDA");
  BOOST_TEST(a.gpu_usable,
             "CTFORMER_REQUIRE_GPU=1 but the CLI found no usable GPU: " << a.gpu_detail);
}

BOOST_AUTO_TEST_CASE(info_reports_the_cuda_backend_as_cmake_built_the_cli) {
  // CTFORMER_CLI_HAS_CUDA is CMake's CTFORMER_CUDA: with it ON the CLI must be an nvcc build.
  BOOST_TEST(CudaAvailability::get().built == bool(CTFORMER_CLI_HAS_CUDA));
  const auto r = run_cli("info " + TinyModel::shared().arg());
  BOOST_REQUIRE_EQUAL(r.status, 0);
  if (CTFORMER_CLI_HAS_CUDA)
    BOOST_TEST(contains(r.out, "cuda backend  built (attention kernels for head sizes"), r.out);
  else
    BOOST_TEST(contains(r.out, "cuda backend  not built into this binary"), r.out);
}

BOOST_AUTO_TEST_CASE(without_cuda_device_cuda_says_the_cli_was_compiled_without_it,
                     *utf::precondition(cli_without_cuda)) {
  for (const auto& args : device_cuda_commands()) {
    const auto r = run_cli(args, "", true);
    BOOST_TEST(r.status == 1, args << ": " << r.out);
    BOOST_TEST(contains(r.out, "compiled without CUDA"), args << ": " << r.out);
    BOOST_TEST(contains(r.out, "--device cpu"), args << ": " << r.out);
  }
}

BOOST_AUTO_TEST_CASE(without_a_gpu_device_cuda_exits_1_with_one_sentence_saying_why,
                     *utf::precondition(cuda_cli_without_gpu)) {
  for (const auto& args : device_cuda_commands()) {
    const auto out = run_cli(args);  // stdout only
    BOOST_TEST(out.status == 1, args);
    BOOST_TEST(out.out.empty(), args << ": stdout: " << out.out);
    const std::string err = run_cli(args, "", true).out;  // stdout is empty: this is stderr
    BOOST_TEST_MESSAGE(err);
    const std::string command = args.substr(0, args.find(' '));
    BOOST_TEST(err.starts_with("ctformer " + command + ": error: no usable CUDA GPU: "), err);
    BOOST_TEST(std::count(err.begin(), err.end(), '\n') == 1, err);
    BOOST_TEST(err.ends_with("\n"), err);
    BOOST_TEST(contains(err, "--device cpu"), err);
    // The GPU is probed before the weights are loaded, so no allocation is named as the culprit.
    BOOST_TEST(!contains(err, "cudaMalloc"), err);
  }
}

BOOST_AUTO_TEST_CASE(with_a_gpu_greedy_generation_on_cuda_matches_the_cpu,
                     *utf::precondition(cuda_cli_with_gpu)) {
  BOOST_TEST_MESSAGE("GPU: " << CudaAvailability::get().gpu_detail);
  const std::string input = "hi\nMy example 0\nHello, world\n";
  const std::string args =
      "generate " + TinyModel::shared().arg() + " --json --max-new-tokens 24 --batch-size 2";
  const auto c = nlohmann::json::parse(run_ok(args, input));
  const auto g = nlohmann::json::parse(run_ok(args + " --device cuda", input));
  BOOST_REQUIRE_EQUAL(c.size(), 3u);
  BOOST_REQUIRE_EQUAL(g.size(), c.size());
  std::size_t equal = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    // fp32 on both (cuBLASLt without TF32): the greedy choices must agree token for token.
    const auto tokens = c[i]["tokens"].get<std::vector<std::int32_t>>();
    BOOST_TEST(g[i]["tokens"].get<std::vector<std::int32_t>>() == tokens,
               boost::test_tools::per_element());
    BOOST_TEST(g[i]["text"] == c[i]["text"]);
    BOOST_TEST(g[i]["finish_reason"] == c[i]["finish_reason"]);
    equal += g[i]["tokens"] == c[i]["tokens"];
    BOOST_TEST(!tokens.empty());
  }
  BOOST_TEST_MESSAGE("cuda CLI: fp32 greedy tokens equal the CPU's for " << equal << " of "
                                                                         << c.size() << " prompts");

  // One prompt streams; the streamed text is the same on both devices.
  const std::string stream = "generate " + TinyModel::shared().arg() + " --prompt hi";
  BOOST_TEST(run_ok(stream + " --max-new-tokens 16 --device cuda") ==
             run_ok(stream + " --max-new-tokens 16"));

  // The reduced precisions load and generate too (their tokens may differ from fp32's).
  for (const char* dtype : {"fp16", "bf16"}) {
    const auto r = nlohmann::json::parse(run_ok(args + " --device cuda --dtype " + dtype, input));
    BOOST_TEST(r.size() == 3u, dtype);
  }
  const auto b = nlohmann::json::parse(
      run_ok("bench " + TinyModel::shared().arg() + " --device cuda --json --max-length 24"));
  BOOST_TEST(b["requests"].get<int>() == 1000);
  BOOST_TEST(b["device"].get<std::string>() == "cuda");
}
