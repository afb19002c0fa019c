// Loading a GPT-2 model directory, and every way it can be wrong.
#define BOOST_TEST_MODULE gpt2_loading
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"
#include "support/safetensors_writer.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
namespace fs = std::filesystem;

namespace {

const fs::path kH16 = test::data_dir() / "models" / "gpt2-h16";

template <class E>
void expect_load_error(const fs::path& dir, std::initializer_list<std::string> parts) {
  try {
    GPT2<cpu, float>::from_directory(dir);
    BOOST_FAIL("loaded a bad model directory");
  } catch (const E& e) {
    for (const std::string& part : parts)
      BOOST_TEST(std::string(e.what()).find(part) != std::string::npos,
                 "'" << e.what() << "' lacks '" << part << "'");
  }
}

// A copy of gpt2-h16 whose tensors have passed through `edit`.
template <class Edit>
void write_edited_copy(const fs::path& dir, Edit edit) {
  fs::copy_file(kH16 / "config.json", dir / "config.json");
  auto tensors = test::read_all(SafetensorsFile(kH16 / "model.safetensors"));
  edit(tensors);
  test::write_safetensors(dir / "model.safetensors", tensors);
}

}  // namespace

BOOST_AUTO_TEST_CASE(loads_both_weight_name_layouts) {
  // gpt2-h16 is save_pretrained's "transformer." layout, gpt2-h32 the hub's unprefixed one with
  // attn.bias buffers.
  using Model = GPT2<cpu, float>;
  BOOST_TEST(Model::from_directory(kH16).config().n_layer == 2);
  BOOST_TEST(Model::from_directory(test::data_dir() / "models/gpt2-h32").config().n_embd == 64);
}

BOOST_AUTO_TEST_CASE(missing_directory_and_files) {
  expect_load_error<FileError>("/nonexistent/model", {"/nonexistent/model", "does not exist"});
  test::TempDir dir("load-missing");
  expect_load_error<FileError>(dir.path, {"config.json"});
  fs::copy_file(kH16 / "config.json", dir.path / "config.json");
  expect_load_error<FileError>(dir.path, {"model.safetensors", "No such file"});
}

BOOST_AUTO_TEST_CASE(missing_tensor_is_named) {
  test::TempDir dir("load-tensor");
  write_edited_copy(dir.path, [](auto& tensors) {
    std::erase_if(tensors, [](const auto& t) { return t.name == "transformer.h.1.mlp.c_fc.bias"; });
  });
  expect_load_error<FormatError>(dir.path, {"'transformer.h.1.mlp.c_fc.bias'", "missing"});
}

BOOST_AUTO_TEST_CASE(tensor_of_the_wrong_shape_for_the_config) {
  test::TempDir dir("load-shape");
  fs::copy_file(kH16 / "model.safetensors", dir.path / "model.safetensors");
  auto config = nlohmann::json::parse(std::ifstream(kH16 / "config.json"));
  config["n_positions"] = 64;
  std::ofstream(dir.path / "config.json") << config.dump();
  expect_load_error<FormatError>(dir.path,
                                 {"'transformer.wpe.weight'", "[128, 32]", "expected [64, 32]"});
}

BOOST_AUTO_TEST_CASE(a_file_without_gpt2_weights) {
  test::TempDir dir("load-notgpt2");
  write_edited_copy(dir.path, [](auto& tensors) {
    std::erase_if(tensors, [](const auto& t) { return t.name == "transformer.wte.weight"; });
  });
  expect_load_error<FormatError>(dir.path, {"wte.weight", "not hold GPT-2 weights"});
}

BOOST_AUTO_TEST_CASE(weights_stored_as_fp16_are_converted_on_load) {
  // The same model with every tensor rewritten as F16: loads, and gives the fp32 model's logits
  // to fp16 precision.
  test::TempDir dir("load-f16");
  write_edited_copy(dir.path, [](auto& tensors) {
    for (auto& t : tensors) {
      std::vector<std::byte> half_bytes(t.bytes.size() / 2);
      for (std::size_t i = 0; i < half_bytes.size() / 2; ++i) {
        float f;
        std::memcpy(&f, t.bytes.data() + 4 * i, 4);
        const auto h = Eigen::numext::bit_cast<std::uint16_t>(Eigen::half(f));
        std::memcpy(half_bytes.data() + 2 * i, &h, 2);
      }
      t.dtype = "F16";
      t.bytes = std::move(half_bytes);
    }
  });
  auto f16 = GPT2<cpu, float>::from_directory(dir.path);
  auto f32 = GPT2<cpu, float>::from_directory(kH16);
  const std::vector<std::int32_t> tokens = {1, 20, 300, 4};
  auto run = [&](GPT2<cpu, float>& model) {
    auto cache = model.make_cache(16);
    const SequenceStep step{cache.add_sequence(), tokens};
    const auto logits = model.forward({&step, 1}, cache);
    return std::vector<float>(logits.data, logits.data + logits.size());
  };
  const auto a = run(f16), b = run(f32);
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(a[i] - b[i])));
    max_ref = std::max(max_ref, double(std::abs(b[i])));
  }
  BOOST_TEST(max_diff > 0.0);  // the weights really were rounded
  BOOST_TEST(max_diff <= 2e-3 * max_ref);
}
