// Writes safetensors files for tests, including deliberately malformed ones.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ctformer/io/safetensors.hpp"

namespace ctformer::test {

struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;
};

// Writes `header` verbatim after its 8-byte length, then `data`.
inline void write_raw_safetensors(const std::filesystem::path& path, const std::string& header,
                                  const std::vector<std::byte>& data,
                                  std::uint64_t claimed_header_len = UINT64_MAX) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = claimed_header_len == UINT64_MAX ? header.size() : claimed_header_len;
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// A well-formed file holding `tensors`, packed in order.
inline void write_safetensors(const std::filesystem::path& path,
                              const std::vector<RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<std::byte> data;
  for (const RawTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  write_raw_safetensors(path, header.dump(), data);
}

// Every tensor of an existing file, for tests that rewrite a model with one thing changed.
inline std::vector<RawTensor> read_all(const SafetensorsFile& file) {
  std::vector<RawTensor> out;
  for (const SafetensorsTensor& t : file.tensors())
    out.push_back({t.name, t.dtype_name, t.shape, {t.bytes.begin(), t.bytes.end()}});
  return out;
}

// A fresh empty directory under the system temp folder, removed when the object goes.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("ctformer-test-" + tag + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace ctformer::test
