// `ctformer download NAME [--dir D]`: a GPT-2 model from the Hugging Face hub, into its cache or a
// folder. See docs/download.md.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arguments.hpp"
#include "hub/hub.hpp"

namespace ctformer::cli {

inline constexpr const char* kDownloadUsage =
    "usage: ctformer download NAME [--dir D] [--revision R] [--stall-timeout S] [--retries N]\n"
    "                              [--retry-wait S] [--quiet]\n"
    "\n"
    "Downloads a GPT-2 model from the Hugging Face hub: config.json, model.safetensors,\n"
    "vocab.json, merges.txt and (when the repository has it) generation_config.json. NAME is\n"
    "gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, or a repository such as\n"
    "openai-community/gpt2. Without --dir the files go into the Hugging Face cache (shared with\n"
    "Python's huggingface_hub), where files already present are not fetched again. Prints the\n"
    "model folder on stdout; progress and notes go to stderr.\n"
    "  --dir D            put the files in folder D instead of the cache\n"
    "  --revision R       branch, tag or commit (default main)\n"
    "  --stall-timeout S  seconds without data before a transfer fails (default 30)\n"
    "  --retries N        further attempts after a dropped or stalled transfer (default 5)\n"
    "  --retry-wait S     seconds before the first retry, doubled for each next one (default 1)\n"
    "  --quiet            no progress bar\n"
    "Environment: HF_ENDPOINT (a mirror), HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN\n"
    "(see docs/download.md).";

// Takes out the positional arguments (those that are neither an option nor an option's value).
inline std::vector<std::string> take_positionals(int& argc, char** argv,
                                                 std::initializer_list<std::string_view> valued) {
  std::vector<std::string> positionals;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("-")) {
      argv[out++] = argv[i];
      if (std::ranges::find(valued, a) != valued.end() && i + 1 < argc) argv[out++] = argv[++i];
    } else {
      positionals.emplace_back(a);
    }
  }
  argc = out;
  return positionals;
}

inline int download_main(int argc, char** argv) {
  const std::vector<std::string> names = take_positionals(
      argc, argv, {"--dir", "--revision", "--stall-timeout", "--retries", "--retry-wait"});
  Arguments args(argc, argv, kDownloadUsage);
  if (args.printed_help()) return 0;
  DownloadOptions options;
  const auto dir = args.value("--dir");
  options.revision = args.value("--revision").value_or("main");
  const double stall = args.number<double>("--stall-timeout").value_or(30.0);
  options.retries = args.number<int>("--retries").value_or(5);
  const double wait = args.number<double>("--retry-wait").value_or(1.0);
  options.progress = !args.flag("--quiet");
  if (!(stall > 0)) args.fail("--stall-timeout must be a positive number of seconds");
  if (options.retries < 0) args.fail("--retries must be >= 0");
  if (!(wait >= 0)) args.fail("--retry-wait must be >= 0");
  if (options.revision.empty()) args.fail("--revision must not be empty");
  options.stall_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(stall * 1000));
  options.backoff = std::chrono::milliseconds(static_cast<std::int64_t>(wait * 1000));

  args.finish();
  if (names.size() > 1)
    args.fail("give one model name, got '" + names[0] + "' and '" + names[1] + "'");
  const std::optional<std::string> name =
      names.empty() ? std::nullopt : std::optional<std::string>(names[0]);
  if (!name) args.fail("NAME is required (" + known_model_names() + ", or owner/name)");
  const auto repo_id = repo_id_for(*name);
  if (!repo_id)
    args.fail("'" + *name + "' is not a model name: use " + known_model_names() +
              ", or a hub repository as owner/name");

  HubClient hub(HubEnvironment::from_environment(), options);
  const fs::path where =
      dir ? hub.download_to_dir(*repo_id, *dir) : hub.download_to_cache(*repo_id);
  std::printf("%s\n", where.string().c_str());
  return 0;
}

}  // namespace ctformer::cli
