// `ctformer perplexity`: the perplexity of a text under a model, over a sliding window
// (ctformer/evaluation/perplexity.hpp), as text or one JSON object.
#pragma once

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "ctformer/ctformer.hpp"
#include "ctformer/evaluation/perplexity.hpp"
#include "hub/hub.hpp"
#include "progress_bar.hpp"

namespace ctformer::cli {

inline constexpr const char* kPerplexityUsage =
    "usage: ctformer perplexity --model DIR|NAME [--file F] [--context N] [--stride N]\n"
    "                           [--batch-size N] [--dtype fp32|fp16|bf16] [--device cpu|cuda]\n"
    "                           [--json]\n"
    "\n"
    "The perplexity of a text (--file F, or standard input; UTF-8, read whole) under the model,\n"
    "as transformers' perplexity guide computes it for a text longer than the context: windows\n"
    "of --context tokens start every --stride tokens, and each scores the tokens the window\n"
    "before it did not reach, so that every token after the first is scored once, with up to\n"
    "context - stride tokens before it (docs/cli.md; windows that do not overlap leave each\n"
    "one's first token unscored, as transformers does). DIR and NAME as for `ctformer generate`.\n"
    "  --context N          tokens in a window (default: the model's n_positions)\n"
    "  --stride N           tokens between the starts of two windows (default: half the context;\n"
    "                       the context itself scores each window's tokens with no overlap)\n"
    "  --batch-size N       windows run together in one forward pass (default 1)\n"
    "  --dtype D            weights in fp32 (default), fp16 or bf16 (see docs/precision.md)\n"
    "  --device D           cpu (default), or cuda (a CUDA build of ctformer and a GPU)\n"
    "  --json               print one JSON object instead of the text summary\n"
    "A progress bar is drawn on stderr when it is a terminal.";

inline int perplexity_main(int argc, char** argv) {
  Arguments args(argc, argv, kPerplexityUsage);
  if (args.printed_help()) return 0;
  const auto model_dir = args.value("--model");
  const auto file = args.value("--file");
  const auto context = args.number<std::int64_t>("--context");
  const auto stride = args.number<std::int64_t>("--stride");
  PerplexityOptions options;
  options.context = context.value_or(0);  // 0: the model's
  options.stride = stride.value_or(0);    // 0: half the context
  options.batch = args.number<std::int64_t>("--batch-size").value_or(1);
  const std::string dtype_name = args.value("--dtype").value_or("fp32");
  const std::string device_name = args.value("--device").value_or("cpu");
  const bool json = args.flag("--json");
  args.finish();
  if (!model_dir) args.fail("--model DIR|NAME is required");
  if (context && *context <= 0) args.fail("--context must be positive");
  if (stride && *stride <= 0) args.fail("--stride must be positive");
  if (options.batch <= 0) args.fail("--batch-size must be positive");
  const DType dtype = parse_weight_dtype(dtype_name);
  const Device device = parse_device(device_name);

  std::string text;
  const std::string source = file ? "'" + *file + "'" : "standard input";
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw FileError("cannot open text file '" + *file + "'");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  const std::filesystem::path model_path = resolve_model(*model_dir);
  check_model_directory(model_path, NeedTokenizer::yes);
  const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(model_path);
  std::vector<std::int32_t> ids;
  try {
    ids = tokenizer.encode(text);
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }

  return with_gpt2(device, dtype, model_path, [&](auto& model) {
    if (options.context == 0) options.context = model.config().n_positions;
    if (options.stride == 0) options.stride = std::max<std::int64_t>(options.context / 2, 1);
    const auto start = std::chrono::steady_clock::now();
    Perplexity p;
    {
      CountProgress progress("perplexity", "windows");
      try {
        p = perplexity(model, ids, options, [&](std::int64_t done, std::int64_t total) {
          progress.update(std::size_t(done), std::size_t(total));
        });
      } catch (const InputError& e) {
        throw InputError(source + ": " + e.what());
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (json) {
      const nlohmann::json out = {{"model", model_path.string()},
                                  {"text", file ? nlohmann::json(*file) : nlohmann::json(nullptr)},
                                  {"device", device_name},
                                  {"dtype", dtype_name},
                                  {"context", options.context},
                                  {"stride", options.stride},
                                  {"batch_size", options.batch},
                                  {"text_tokens", ids.size()},
                                  {"scored_tokens", p.tokens},
                                  {"windows", p.windows},
                                  {"nll_sum", p.nll_sum},
                                  {"mean_nll", p.mean_nll()},
                                  {"perplexity", p.perplexity()},
                                  {"seconds", seconds}};
      std::cout << out.dump(2) << '\n';
      return 0;
    }
    std::printf("perplexity  %.4f  (mean negative log-likelihood %.5f nats/token)\n",
                p.perplexity(), p.mean_nll());
    std::printf("text        %s: %zu tokens, %lld scored\n", source.c_str(), ids.size(),
                static_cast<long long>(p.tokens));
    std::printf("windows     %lld of %lld tokens every %lld, %lld at a time; %s %s weights\n",
                static_cast<long long>(p.windows), static_cast<long long>(options.context),
                static_cast<long long>(options.stride), static_cast<long long>(options.batch),
                device_name.c_str(), dtype_name.c_str());
    std::printf("time        %.2f s (%.0f scored tokens/s)\n", seconds,
                seconds > 0 ? double(p.tokens) / seconds : 0.0);
    return 0;
  });
}

}  // namespace ctformer::cli
