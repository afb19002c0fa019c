#define BOOST_TEST_MODULE safetensors
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "ctformer/io/safetensors.hpp"
#include "support/safetensors_writer.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
using test::RawTensor;

namespace {

// Runs `f`, which must throw E with a message containing each of `parts`.
template <class E, class F>
void check_throws(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      BOOST_TEST(message.find(part) != std::string::npos,
                 "'" << message << "' lacks '" << part << "'");
    return;
  }
  BOOST_FAIL("no exception of the expected type was thrown");
}

std::vector<std::byte> zeros(std::size_t n) {
  return std::vector<std::byte>(n);
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_f32_f16_bf16_as_torch_converts_them) {
  const SafetensorsFile file(test::data_dir() / "dtypes.safetensors");
  const std::int64_t n = file.find("f32")->shape[0];
  const std::int64_t shape[] = {n};
  for (const auto& [stored, expected] :
       {std::pair{"f32", "f32"}, {"f16", "f16_as_f32"}, {"bf16", "bf16_as_f32"}}) {
    const auto got = file.load_float(stored, shape);
    const auto want = file.load_float(expected, shape);
    for (std::int64_t i = 0; i < n; ++i) {
      std::uint32_t a, b;  // bitwise: -0, subnormals and infinities included
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want[i], 4);
      BOOST_TEST(a == b, stored << "[" << i << "] = " << got[i] << ", torch gives " << want[i]);
    }
  }
}

BOOST_AUTO_TEST_CASE(refuses_a_dtype_it_cannot_load_naming_it) {
  const SafetensorsFile file(test::data_dir() / "dtypes.safetensors");
  const std::int64_t shape[] = {4};
  check_throws<FormatError>([&] { file.load_float("i64", shape); },
                            {"'i64'", "I64", "F32, F16 and BF16"});
}

BOOST_AUTO_TEST_CASE(missing_tensor_and_wrong_shape_name_the_tensor) {
  const SafetensorsFile file(test::data_dir() / "dtypes.safetensors");
  const std::int64_t shape[] = {3, 5};
  check_throws<FormatError>([&] { file.load_float("nope", shape); }, {"'nope'", "missing"});
  check_throws<FormatError>([&] { file.load_float("f32", shape); }, {"'f32'", "[15]", "[3, 5]"});
}

BOOST_AUTO_TEST_CASE(missing_file) {
  check_throws<FileError>([] { SafetensorsFile("/nonexistent/model.safetensors"); },
                          {"/nonexistent/model.safetensors", "No such file"});
}

BOOST_AUTO_TEST_CASE(empty_and_tiny_files) {
  test::TempDir dir("st-empty");
  const auto path = dir.path / "empty.safetensors";
  std::ofstream(path).close();
  check_throws<FormatError>([&] { SafetensorsFile{path}; },
                            {path.string(), "0 bytes", "8-byte header length"});
  std::ofstream(path) << "abc";
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"3 bytes"});
}

BOOST_AUTO_TEST_CASE(header_length_beyond_the_file) {
  test::TempDir dir("st-hdr");
  const auto path = dir.path / "h.safetensors";
  test::write_raw_safetensors(path, "{}", {}, 1000);
  check_throws<FormatError>([&] { SafetensorsFile{path}; },
                            {"header length is 1000", "only 2 bytes"});
}

BOOST_AUTO_TEST_CASE(header_that_is_not_json) {
  test::TempDir dir("st-json");
  const auto path = dir.path / "j.safetensors";
  test::write_raw_safetensors(path, "{\"a\": [", {});
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"not valid JSON"});
  test::write_raw_safetensors(path, "[1, 2]", {});
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"not a JSON object"});
}

BOOST_AUTO_TEST_CASE(truncated_model_file) {
  // The first half of a real model file: a valid header whose offsets run past the end.
  test::TempDir dir("st-trunc");
  const auto source = test::data_dir() / "models" / "gpt2-h16" / "model.safetensors";
  const auto path = dir.path / "model.safetensors";
  std::filesystem::copy_file(source, path);
  std::filesystem::resize_file(path, std::filesystem::file_size(source) / 2);
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"lie outside", "truncated"});
}

BOOST_AUTO_TEST_CASE(out_of_range_and_overlapping_offsets) {
  test::TempDir dir("st-offsets");
  const auto path = dir.path / "o.safetensors";
  test::write_raw_safetensors(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                              zeros(12));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "'b'", "overlap"});
  test::write_raw_safetensors(
      path, R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", zeros(12));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "[0, 16]", "12 data bytes"});
  test::write_raw_safetensors(
      path, R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [8, 4]}})", zeros(12));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "[8, 4]"});
}

BOOST_AUTO_TEST_CASE(byte_count_that_does_not_match_shape) {
  test::TempDir dir("st-size");
  const auto path = dir.path / "s.safetensors";
  test::write_raw_safetensors(
      path, R"({"a": {"dtype": "F16", "shape": [3, 2], "data_offsets": [0, 8]}})", zeros(8));
  check_throws<FormatError>([&] { SafetensorsFile{path}; },
                            {"'a'", "8 bytes", "[3, 2]", "need 12"});
}

BOOST_AUTO_TEST_CASE(unknown_dtype_and_malformed_entries) {
  test::TempDir dir("st-dtype");
  const auto path = dir.path / "d.safetensors";
  test::write_raw_safetensors(
      path, R"({"a": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}})", zeros(8));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "unknown dtype 'F17'", "BF16"});
  test::write_raw_safetensors(
      path, R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", zeros(8));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "negative"});
  test::write_raw_safetensors(path, R"({"a": {"dtype": "F32", "shape": [2]}})", zeros(8));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "data_offsets"});
  test::write_raw_safetensors(path, R"({"a": 5})", zeros(8));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "not a JSON object"});
  test::write_raw_safetensors(
      path, R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
      zeros(8));
  check_throws<FormatError>([&] { SafetensorsFile{path}; }, {"'a'", "impossibly large"});
}

BOOST_AUTO_TEST_CASE(metadata_is_skipped_and_round_trip_works) {
  test::TempDir dir("st-ok");
  const auto path = dir.path / "ok.safetensors";
  const float values[] = {1.5f, -2.0f};
  std::vector<std::byte> bytes(8);
  std::memcpy(bytes.data(), values, 8);
  test::write_raw_safetensors(
      path,
      R"({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
      bytes);
  const SafetensorsFile file(path);
  BOOST_TEST(file.tensors().size() == 1u);
  const std::int64_t shape[] = {2};
  const auto w = file.load_float("w", shape);
  BOOST_TEST(w[0] == 1.5f);
  BOOST_TEST(w[1] == -2.0f);
}
