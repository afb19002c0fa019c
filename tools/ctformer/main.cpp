// The ctformer command-line tool: `ctformer <command> [options]`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "bench_command.hpp"
#include "download_command.hpp"
#include "generate_command.hpp"
#include "info_command.hpp"
#include "perplexity_command.hpp"
#include "serve_command.hpp"
#include "tokenize_command.hpp"
#include "usage_error.hpp"

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command's name
};

// Each subcommand lives in its own <name>_command.hpp beside this file.
constexpr Command kCommands[] = {
    {"generate", "generate text from prompts with a model folder or hub name",
     ctformer::cli::generate_main},
    {"download", "download a GPT-2 model from the Hugging Face hub (gpt2, gpt2-medium, ...)",
     ctformer::cli::download_main},
    {"info", "a model's config, parameters, memory, and the backends that can run it",
     ctformer::cli::info_main},
    {"tokenize", "GPT-2 token ids of text on stdin, or text of ids (--decode)",
     ctformer::cli::tokenize_main},
    {"bench", "time the seed workload (or a prompt file): tokens/s, latency, peak memory",
     ctformer::cli::bench_main},
    {"serve", "an HTTP server with OpenAI's completions API, batching every client's requests",
     ctformer::cli::serve_main},
    {"perplexity", "the perplexity of a text under a model, over a sliding window",
     ctformer::cli::perplexity_main},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: ctformer <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands)
    std::fprintf(out, "  %-10.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  std::fprintf(out, "\n`ctformer <command> --help` describes a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (c.name != name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const ctformer::cli::UsageError& e) {
      std::fprintf(stderr, "ctformer %s: %s\n%s\n", argv[1], e.what(), e.usage.c_str());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ctformer %s: error: %s\n", argv[1], e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "ctformer: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
