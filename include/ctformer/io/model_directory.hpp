// A Hugging Face model directory: config.json, model.safetensors, and for text, vocab.json and
// merges.txt.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"

namespace ctformer {

enum class NeedTokenizer { no, yes };

// Throws FileError listing every missing file at once, so that one message says what to fetch.
inline void check_model_directory(const std::filesystem::path& dir, NeedTokenizer tokenizer) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir))
    throw FileError("model directory '" + dir.string() +
                    "' does not exist or is not a directory (expected a Hugging Face GPT-2 "
                    "folder: config.json, model.safetensors, vocab.json, merges.txt)");
  std::vector<std::string> files = {"config.json", "model.safetensors"};
  if (tokenizer == NeedTokenizer::yes) files.insert(files.end(), {"vocab.json", "merges.txt"});
  std::string missing;
  for (const std::string& f : files)
    if (!fs::is_regular_file(dir / f)) missing += (missing.empty() ? "" : ", ") + f;
  if (!missing.empty())
    throw FileError("model directory '" + dir.string() + "' is incomplete: " + missing +
                    " missing (a GPT-2 folder from the Hugging Face hub has config.json, "
                    "model.safetensors, vocab.json and merges.txt; pytorch_model.bin alone is not "
                    "supported: convert it to safetensors)");
}

}  // namespace ctformer
