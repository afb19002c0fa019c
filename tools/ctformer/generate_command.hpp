// `ctformer generate`: greedy text generation from a model directory.
#pragma once

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "ctformer/ctformer.hpp"
#include "ctformer/io/model_directory.hpp"
#include "ctformer/models/dispatch.hpp"
#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/streaming_decoder.hpp"

namespace ctformer::cli {

inline constexpr const char* kGenerateUsage =
    "usage: ctformer generate --model DIR [--prompt TEXT | --file F] [--max-new-tokens N]\n"
    "                         [--max-length N] [--batch-size N] [--dtype fp32|fp16|bf16]\n"
    "                         [--device cpu] [--json]\n"
    "\n"
    "Greedy generation. DIR is a Hugging Face GPT-2 folder (config.json, model.safetensors,\n"
    "vocab.json, merges.txt). Prompts come from --prompt, or one per line from --file or stdin.\n"
    "One prompt streams its text as it is generated; several are batched and printed in order.\n"
    "  --max-new-tokens N  tokens to generate per prompt (default 32)\n"
    "  --max-length N      limit on prompt + generated tokens, as transformers' max_length\n"
    "  --batch-size N      prompts decoded together (default 64)\n"
    "  --dtype D           weight storage: fp32 (default), fp16 or bf16; compute is fp32 on cpu\n"
    "  --json              print a JSON array, one object per prompt (see docs/cli.md)";

inline std::vector<std::string> read_prompt_lines(std::istream& in, const std::string& source) {
  std::vector<std::string> prompts;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty())
      throw InputError(source + " line " + std::to_string(n) +
                       " is empty; give one non-empty prompt per line");
    prompts.push_back(line);
  }
  if (prompts.empty()) throw InputError(source + " holds no prompts");
  return prompts;
}

inline int generate_main(int argc, char** argv) {
  Arguments args(argc, argv, kGenerateUsage);
  if (args.wants_help()) {
    std::puts(kGenerateUsage);
    return 0;
  }
  const auto model_dir = args.value("--model");
  const auto prompt = args.value("--prompt");
  const auto file = args.value("--file");
  GreedyOptions options;
  options.max_new_tokens = args.number<std::int64_t>("--max-new-tokens").value_or(32);
  options.max_length = args.number<std::int64_t>("--max-length");
  options.max_batch = args.number<std::int64_t>("--batch-size").value_or(64);
  const std::string dtype_name = args.value("--dtype").value_or("fp32");
  const std::string device_name = args.value("--device").value_or("cpu");
  const bool json = args.flag("--json");
  args.finish();
  if (!model_dir) args.fail("--model DIR is required");
  if (prompt && file) args.fail("give --prompt or --file, not both");
  if (options.max_new_tokens < 0) args.fail("--max-new-tokens must be >= 0");
  if (options.max_batch <= 0) args.fail("--batch-size must be positive");
  const DType dtype = parse_weight_dtype(dtype_name);
  const Device device = parse_device(device_name);

  check_model_directory(*model_dir, NeedTokenizer::yes);
  std::vector<std::string> prompts;
  if (prompt) {
    prompts.push_back(*prompt);
  } else if (file) {
    std::ifstream in(*file);
    if (!in) throw FileError("cannot open prompt file '" + *file + "'");
    prompts = read_prompt_lines(in, "prompt file '" + *file + "'");
  } else {
    prompts = read_prompt_lines(std::cin, "standard input");
  }

  const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(*model_dir);
  std::vector<std::vector<std::int32_t>> ids;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    try {
      ids.push_back(tokenizer.encode(prompts[p]));
    } catch (const InputError& e) {
      throw InputError("prompt " + std::to_string(p + 1) + ": " + e.what());
    }
    if (ids.back().empty()) throw InputError("prompt " + std::to_string(p + 1) + " has no tokens");
  }

  return with_gpt2(device, dtype, *model_dir, [&](auto& model) {
    options.eos_token_id = model.config().eos_token_id;
    const bool stream = prompts.size() == 1 && !json;
    Utf8StreamDecoder decoder(tokenizer);
    if (stream) {
      std::cout << prompts[0] << std::flush;
      options.on_token = [&](std::size_t, std::int32_t id) {
        if (id != *options.eos_token_id) std::cout << decoder.push(id) << std::flush;
      };
    }
    const auto outputs = generate_greedy(model, ids, options);
    if (stream) {
      std::cout << decoder.finish() << '\n';
      return 0;
    }
    nlohmann::json results = nlohmann::json::array();
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      std::vector<std::int32_t> text_ids = outputs[p];
      if (finish_reason(outputs[p], options) == FinishReason::stop) text_ids.pop_back();
      const std::string text = to_valid_utf8(tokenizer.decode(text_ids));
      if (json) {
        results.push_back(
            {{"prompt", prompts[p]},
             {"text", text},
             {"tokens", outputs[p]},
             {"finish_reason",
              finish_reason(outputs[p], options) == FinishReason::stop ? "stop" : "length"},
             {"prompt_tokens", ids[p].size()},
             {"generated_tokens", outputs[p].size()}});
      } else {
        std::cout << "=== " << (p + 1) << " ===\n" << prompts[p] << text << "\n";
      }
    }
    if (json) std::cout << results.dump(2) << '\n';
    return 0;
  });
}

}  // namespace ctformer::cli
