// Single-threaded GPT-2 encode throughput on a text corpus (see compare_tiktoken.py and
// docs/performance.md).
//
//   tokenizer_bench --model DIR --corpus FILE [--repeat N] [--ids-out FILE] [--no-special]
//
// Reads FILE, encodes the whole of it as one text `--repeat` times (default 5) and prints the best
// and the median time as MB/s (10^6 bytes) and tokens/s, plus the model load time. --ids-out writes
// the ids of the last run as little-endian int32 so that another implementation can be compared.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ctformer/tokenizer/tokenizer.hpp"

int main(int argc, char** argv) {
  std::string model, corpus_path, ids_out;
  int repeat = 5;
  auto special = ctformer::SpecialTokens::allowed;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--model") {
      model = value();
    } else if (arg == "--corpus") {
      corpus_path = value();
    } else if (arg == "--repeat") {
      repeat = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--ids-out") {
      ids_out = value();
    } else if (arg == "--no-special") {
      special = ctformer::SpecialTokens::as_text;
    } else {
      std::cerr << "usage: tokenizer_bench --model DIR --corpus FILE [--repeat N] [--ids-out FILE] "
                   "[--no-special]\n";
      return 2;
    }
  }
  if (model.empty() || corpus_path.empty()) {
    std::cerr << "tokenizer_bench: --model and --corpus are required\n";
    return 2;
  }
  try {
    using Clock = std::chrono::steady_clock;
    std::ifstream in(corpus_path, std::ios::binary);
    if (!in) throw ctformer::FileError("cannot open corpus " + corpus_path);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = std::move(ss).str();

    const auto t_load = Clock::now();
    const auto tok = ctformer::Gpt2Tokenizer::from_directory(model);
    const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();

    std::vector<double> times;
    std::vector<std::int32_t> ids;
    for (int r = 0; r < repeat; ++r) {
      ids.clear();
      const auto t0 = Clock::now();
      tok.encode_into(text, ids, special);
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double best = times.front(), median = times[times.size() / 2];
    const double mb = static_cast<double>(text.size()) / 1e6;
    std::printf("corpus: %s, %zu bytes, %zu tokens\n", corpus_path.c_str(), text.size(),
                ids.size());
    std::printf("load: %.1f ms\n", load_s * 1e3);
    std::printf(
        "ctformer encode: best %.3f s = %.2f MB/s, %.0f tokens/s; median %.3f s = %.2f MB/s, "
        "%.0f tokens/s (%d runs)\n",
        best, mb / best, ids.size() / best, median, mb / median, ids.size() / median, repeat);
    if (!ids_out.empty()) {
      std::ofstream out(ids_out, std::ios::binary);
      out.write(reinterpret_cast<const char*>(ids.data()),
                static_cast<std::streamsize>(ids.size() * sizeof(std::int32_t)));
      if (!out) throw ctformer::FileError("cannot write " + ids_out);
    }
  } catch (const std::exception& e) {
    std::cerr << "tokenizer_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
