// Shared by the test programs: where test data lives, and how a test program reports SKIPPED.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace ctformer::test {

// CTest's SKIP_RETURN_CODE for every test program (see tests/CMakeLists.txt).
inline constexpr int kSkipExitCode = 77;

// Ends the test program with CTest's skip code. Call it before any test case runs (from a global
// fixture), so that a test that cannot run is reported as skipped, never as passed.
[[noreturn]] inline void skip_program(std::string_view reason) {
  std::cout << "SKIPPED: " << reason << std::endl;
  std::exit(kSkipExitCode);
}

// CTFORMER_REQUIRE_GPU=1 (tools/gpu-check.sh sets it): a test that would be skipped for want of a
// usable GPU fails instead, so that a GPU machine where the kernels cannot run never reports a
// pass.
inline bool gpu_required() {
  const char* v = std::getenv("CTFORMER_REQUIRE_GPU");
  return v && std::string_view(v) == "1";
}

// Committed fixtures (tests/data), made by tools/make_reference.py; $CTFORMER_TEST_DATA_DIR when
// the test programs run away from their source tree (tools/gpu-check.sh --bundle).
inline std::filesystem::path data_dir() {
  if (const char* env = std::getenv("CTFORMER_TEST_DATA_DIR"); env && *env) return env;
  return CTFORMER_TEST_DATA_DIR;
}

// The real GPT-2 vocab.json + merges.txt: $CTFORMER_GPT2_DIR, else ../shared/gpt2 beside the source
// tree. Neither is committed to this repository.
inline std::optional<std::filesystem::path> gpt2_vocab_dir() {
  namespace fs = std::filesystem;
  auto has_vocab = [](const fs::path& dir) {
    return fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt");
  };
  if (const char* env = std::getenv("CTFORMER_GPT2_DIR"); env && *env) {
    if (has_vocab(env)) return fs::path(env);
    return std::nullopt;
  }
  const fs::path shared = fs::path(CTFORMER_SOURCE_DIR) / ".." / "shared" / "gpt2";
  if (has_vocab(shared)) return fs::weakly_canonical(shared);
  return std::nullopt;
}

// The whole of a file's bytes (empty if it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// A global fixture for test programs that need the GPT-2 vocabulary:
//   BOOST_TEST_GLOBAL_FIXTURE(ctformer::test::RequireGpt2Vocab);
struct RequireGpt2Vocab {
  RequireGpt2Vocab() {
    if (!gpt2_vocab_dir())
      skip_program(
          "the GPT-2 vocabulary (vocab.json, merges.txt) was not found: set CTFORMER_GPT2_DIR to a "
          "folder that holds them, or place them in ../shared/gpt2 beside the source tree");
  }
};

}  // namespace ctformer::test
