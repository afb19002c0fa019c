// A command-line mistake: main() prints the message and the command's usage, and exits with 2.
#pragma once

#include <stdexcept>
#include <string>

namespace ctformer::cli {

struct UsageError : std::runtime_error {
  UsageError(const std::string& message, std::string usage_text)
      : std::runtime_error(message), usage(std::move(usage_text)) {}
  std::string usage;
};

}  // namespace ctformer::cli
