// `ctformer generate`: text generation from a model directory, streamed or as JSON.
#pragma once

#include <charconv>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "completions_api.hpp"  // json_finish_reason, token_name
#include "ctformer/ctformer.hpp"
#include "hub/hub.hpp"
#include "prompt_file.hpp"

namespace ctformer::cli {

inline constexpr const char* kGenerateUsage =
    "usage: ctformer generate --model DIR|NAME [--prompt TEXT | --file F] [--max-new-tokens N]\n"
    "                         [--max-length N] [--min-new-tokens N] [--temperature T]\n"
    "                         [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R]\n"
    "                         [--presence-penalty X] [--frequency-penalty X]\n"
    "                         [--no-repeat-ngram-size N] [--logit-bias ID=BIAS]...\n"
    "                         [--seed S] [--stop TEXT]... [--logprobs N]\n"
    "                         [--batch-size N] [--dtype fp32|fp16|bf16] [--device cpu|cuda]\n"
    "                         [--json]\n"
    "\n"
    "DIR is a Hugging Face GPT-2 folder (config.json, model.safetensors, vocab.json, merges.txt);\n"
    "NAME is a hub model (gpt2, distilgpt2, openai-community/gpt2, ...), taken from the Hugging\n"
    "Face cache or downloaded into it (docs/download.md).\n"
    "Prompts come from --prompt, or one per line from --file or standard input. One prompt\n"
    "streams its text as it is generated; several are batched and printed in input order.\n"
    "Defaults come from the model's generation_config.json, as in transformers (greedy, and\n"
    "max_length 20, for gpt2).\n"
    "  --max-new-tokens N   tokens to generate per prompt\n"
    "  --max-length N       prompt + generated tokens, as transformers' max_length\n"
    "  --min-new-tokens N   no end-of-text before N tokens are generated\n"
    "  --temperature T      sample with temperature T (0: greedy)\n"
    "  --top-k K, --top-p P keep the K most likely tokens / the most likely mass P when sampling\n"
    "  --min-p P            keep the tokens at least P times as likely as the most likely\n"
    "  --repetition-penalty R   transformers' repetition penalty (1: none)\n"
    "  --presence-penalty X, --frequency-penalty X   OpenAI's penalties on generated tokens\n"
    "  --no-repeat-ngram-size N   never repeat an N-gram of the text, as transformers\n"
    "  --logit-bias ID=BIAS add BIAS to token ID's logit (-inf bans it; repeatable)\n"
    "  --seed S             the random seed of every prompt (reproducible samples)\n"
    "  --stop TEXT          stop when the text contains TEXT (repeatable; kept in the text)\n"
    "  --batch-size N       sequences decoded together (default 64)\n"
    "  --dtype D            weights in fp32 (default), fp16 or bf16 (see docs/precision.md)\n"
    "  --device D           cpu (default), or cuda (a CUDA build of ctformer and a GPU)\n"
    "  --json               print a JSON array, one object per prompt (docs/cli.md)\n"
    "  --logprobs N         with --json: each generated token's log-probability and the N most\n"
    "                       likely tokens at its place (0: none of them)";

inline int generate_main(int argc, char** argv) {
  Arguments args(argc, argv, kGenerateUsage);
  if (args.printed_help()) return 0;
  const auto model_dir = args.value("--model");
  const auto prompt = args.value("--prompt");
  const auto file = args.value("--file");
  const auto max_new_tokens = args.number<std::int64_t>("--max-new-tokens");
  const auto max_length = args.number<std::int64_t>("--max-length");
  const auto temperature = args.number<float>("--temperature");
  const auto top_k = args.number<std::int32_t>("--top-k");
  const auto top_p = args.number<float>("--top-p");
  const auto repetition_penalty = args.number<float>("--repetition-penalty");
  const auto min_new_tokens = args.number<std::int64_t>("--min-new-tokens");
  const auto min_p = args.number<float>("--min-p");
  const auto presence_penalty = args.number<float>("--presence-penalty");
  const auto frequency_penalty = args.number<float>("--frequency-penalty");
  const auto no_repeat_ngram_size = args.number<std::int32_t>("--no-repeat-ngram-size");
  std::map<std::int32_t, float> logit_bias;
  while (auto bias = args.value("--logit-bias")) {
    // ID=BIAS; from_chars reads "-inf" as -infinity.
    const char* first = bias->data();
    const char* last = first + bias->size();
    std::int32_t id = -1;
    float value = 0;
    const auto [equals, id_error] = std::from_chars(first, last, id);
    const auto [end, value_error] =
        equals < last && *equals == '='
            ? std::from_chars(equals + 1, last, value)
            : std::from_chars_result{equals, std::errc::invalid_argument};
    if (id_error != std::errc() || value_error != std::errc() || end != last)
      args.fail("--logit-bias takes ID=BIAS (a token id and a number, -inf to ban), got '" + *bias +
                "'");
    logit_bias[id] = value;
  }
  const auto seed = args.number<std::uint64_t>("--seed");
  std::vector<std::string> stops;
  while (auto stop = args.value("--stop")) stops.push_back(*stop);
  GeneratorOptions options;
  options.max_batch = args.number<std::int64_t>("--batch-size").value_or(64);
  const std::string dtype_name = args.value("--dtype").value_or("fp32");
  const std::string device_name = args.value("--device").value_or("cpu");
  const bool json = args.flag("--json");
  const auto logprobs = args.number<std::int32_t>("--logprobs");
  args.finish();
  if (logprobs && !json) args.fail("--logprobs needs --json (they are printed with the tokens)");
  if (!model_dir) args.fail("--model DIR|NAME is required");
  if (prompt && file) args.fail("give --prompt or --file, not both");
  if (options.max_batch <= 0) args.fail("--batch-size must be positive");
  const DType dtype = parse_weight_dtype(dtype_name);
  const Device device = parse_device(device_name);

  // A folder as is; a hub name (gpt2, openai-community/gpt2, ...) from the cache or downloaded.
  const std::filesystem::path model_path = resolve_model(*model_dir);
  check_model_directory(model_path, NeedTokenizer::yes);
  GenerationParams params =
      GenerationParams::from_generation_config(model_path / "generation_config.json");
  if (max_new_tokens) params.max_new_tokens = max_new_tokens;
  if (max_length) params.max_length = *max_length;
  if (max_new_tokens && !max_length) params.max_length = std::int64_t(1) << 40;  // as transformers
  if (temperature) {
    params.temperature = *temperature;
    params.do_sample = *temperature > 0;
  }
  if (top_k) params.top_k = *top_k;
  if (top_p) params.top_p = *top_p;
  if (repetition_penalty) params.repetition_penalty = *repetition_penalty;
  if (min_new_tokens) params.min_new_tokens = *min_new_tokens;
  if (min_p) params.min_p = *min_p;
  if (presence_penalty) params.presence_penalty = *presence_penalty;
  if (frequency_penalty) params.frequency_penalty = *frequency_penalty;
  if (no_repeat_ngram_size) params.no_repeat_ngram_size = *no_repeat_ngram_size;
  params.logit_bias.insert(logit_bias.begin(), logit_bias.end());
  params.seed = seed;
  params.stop_strings = stops;
  params.logprobs = logprobs;
  params.validate();

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
  const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(model_path);

  return with_gpt2(device, dtype, model_path, [&](auto& model) {
    Generator generator(model, options, &tokenizer);
    const bool stream = prompts.size() == 1 && !json;
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      Request request;
      request.text = prompts[p];
      request.params = params;
      if (stream) request.on_event = [](const TokenEvent& e) { std::cout << e.text << std::flush; };
      try {
        generator.submit(std::move(request));
      } catch (const InputError& e) {
        throw InputError("prompt " + std::to_string(p + 1) + ": " + e.what());
      }
    }
    if (stream) std::cout << prompts[0] << std::flush;
    const std::vector<Result> results = generator.run();  // in submission order
    if (stream) {
      std::cout << '\n';
      return 0;
    }
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t p = 0; p < results.size(); ++p) {
      const Result& r = results[p];
      if (json) {
        out.push_back({{"prompt", prompts[p]},
                       {"text", r.text},
                       {"tokens", r.tokens},
                       {"finish_reason", json_finish_reason(r.finish_reason)},
                       {"prompt_tokens", r.prompt.size()},
                       {"generated_tokens", r.tokens.size()},
                       {"ttft_ms", r.ttft_ms},
                       {"seed", r.seed}});
        if (logprobs) {
          nlohmann::json& places = out.back()["logprobs"] = nlohmann::json::array();
          for (const TokenLogprobs& t : r.logprobs) {
            nlohmann::json top = nlohmann::json::array();
            for (const LikelyToken& l : t.top) top.push_back({l.token, l.logprob});
            places.push_back({{"token", t.token},
                              {"text", token_name(tokenizer, t.token)},
                              {"logprob", t.logprob},
                              {"top", std::move(top)}});
          }
        }
      } else {
        std::cout << "=== " << (p + 1) << " ===\n" << prompts[p] << r.text << "\n";
      }
    }
    if (json) std::cout << out.dump(2) << '\n';
    return 0;
  });
}

}  // namespace ctformer::cli
