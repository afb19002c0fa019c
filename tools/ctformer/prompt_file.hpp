// Reading prompts one per line (`ctformer generate --file F`, or standard input). Kept apart from
// generate_command.hpp so that the fuzz target (tests/fuzz) can test it without the CLI's
// dependencies.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"

namespace ctformer::cli {

// One prompt per line; a trailing '\r' (Windows line ends) is dropped. Throws InputError for an
// empty line (naming it) or an input with no prompts; `source` names the input in the message.
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

}  // namespace ctformer::cli
