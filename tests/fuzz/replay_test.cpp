// Replays every committed fuzz input through its target (fuzz_targets.hpp): the seed corpora
// (tests/fuzz/corpus/<target>/) and the inputs that once crashed or broke an invariant
// (tests/fuzz/regressions/<target>/). So the ordinary test suite, with any compiler and without
// libFuzzer, keeps every fixed finding fixed.
#define BOOST_TEST_MODULE fuzz_replay
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && entry.path().filename() != "README.md")
        files.push_back(entry.path());
  std::ranges::sort(files);
  return files;
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs every file of corpus/<target> and regressions/<target>; returns how many ran.
std::size_t replay(const ctformer::fuzz::Target& target) {
  const fs::path root = CTFORMER_FUZZ_DIR;
  const std::vector<fs::path> seeds = files_in(root / "corpus" / target.name);
  BOOST_TEST(!seeds.empty(), "tests/fuzz/corpus/" << target.name << " holds no seeds");
  std::size_t count = 0;
  for (const fs::path& dir : {root / "corpus" / target.name, root / "regressions" / target.name})
    for (const fs::path& file : files_in(dir)) {
      const std::vector<std::uint8_t> bytes = read_bytes(file);
      try {
        target.run(bytes);
      } catch (const std::exception& e) {
        BOOST_ERROR(file.string() << ": " << e.what());
      } catch (...) {
        BOOST_ERROR(file.string() << ": a non-standard exception");
      }
      ++count;
    }
  BOOST_TEST_MESSAGE(target.name << ": replayed " << count << " inputs");
  return count;
}

const ctformer::fuzz::Target& target(std::string_view name) {
  for (const auto& t : ctformer::fuzz::kTargets)
    if (t.name == name) return t;
  throw std::logic_error("no fuzz target " + std::string(name));
}

}  // namespace

BOOST_AUTO_TEST_CASE(safetensors) {
  replay(target("safetensors"));
}
BOOST_AUTO_TEST_CASE(config) {
  replay(target("config"));
}
BOOST_AUTO_TEST_CASE(tokenizer_load) {
  replay(target("tokenizer_load"));
}
BOOST_AUTO_TEST_CASE(tokenizer_encode) {
  replay(target("tokenizer_encode"));
}
BOOST_AUTO_TEST_CASE(prompt_file) {
  replay(target("prompt_file"));
}
BOOST_AUTO_TEST_CASE(completion_request) {
  replay(target("completion_request"));
}

// Every target has a test case above and a corpus folder.
BOOST_AUTO_TEST_CASE(every_target_has_a_corpus) {
  for (const auto& t : ctformer::fuzz::kTargets)
    BOOST_TEST(fs::is_directory(fs::path(CTFORMER_FUZZ_DIR) / "corpus" / t.name), t.name);
}

// A value nested a million levels deep where a parser quotes the bad value in its error message:
// nlohmann's dump() recurses once per level and would overflow the stack (fixed by
// detail::json_excerpt). Too large to commit as files, so made here.
BOOST_AUTO_TEST_CASE(deeply_nested_values_in_error_messages) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  auto run = [](std::string_view name, const std::string& input) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(input.data());
    BOOST_CHECK_NO_THROW(target(name).run(std::span<const std::uint8_t>(p, input.size())));
  };
  std::string header = R"({"a":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,0]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  run("safetensors", file + header);
  run("config", R"({"vocab_size":)" + deep + "}");
  run("tokenizer_load", R"({"a":)" + deep + "}" + std::string(1, '\0'));
  run("completion_request", R"({"prompt":)" + deep + "}");
  run("completion_request", R"({"prompt":"x","stop":)" + deep + "}");
}
