// Command-line options of a subcommand: `--name value`, `--name=value` and `--flag`. Each option
// is taken out as the command asks for it; finish() refuses whatever is left.
#pragma once

#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "usage_error.hpp"

namespace ctformer::cli {

class Arguments {
 public:
  // argv[0] is the subcommand's name.
  Arguments(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
  }

  // With -h or --help anywhere, prints the usage to stdout and returns true: the command has
  // nothing more to do.
  bool printed_help() const {
    for (const auto& a : args_)
      if (a == "--help" || a == "-h") {
        std::puts(usage_.c_str());
        return true;
      }
    return false;
  }

  bool flag(std::string_view name) {
    for (auto it = args_.begin(); it != args_.end(); ++it)
      if (*it == name) {
        args_.erase(it);
        return true;
      }
    return false;
  }

  std::optional<std::string> value(std::string_view name) {
    for (auto it = args_.begin(); it != args_.end(); ++it) {
      if (*it == name) {
        if (it + 1 == args_.end()) fail(std::string(name) + " needs a value");
        std::string v = *(it + 1);
        args_.erase(it, it + 2);
        return v;
      }
      if (it->size() > name.size() && it->starts_with(name) && (*it)[name.size()] == '=') {
        std::string v = it->substr(name.size() + 1);
        args_.erase(it);
        return v;
      }
    }
    return std::nullopt;
  }

  template <class Number>
  std::optional<Number> number(std::string_view name) {
    const auto text = value(name);
    if (!text) return std::nullopt;
    Number n{};
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec != std::errc() || end != text->data() + text->size())
      fail(std::string(name) + " expects a number, got '" + *text + "'");
    return n;
  }

  // Throws UsageError if an argument was not recognised.
  void finish() const {
    if (!args_.empty()) fail("unexpected argument '" + args_.front() + "'");
  }

  [[noreturn]] void fail(const std::string& message) const { throw UsageError(message, usage_); }

 private:
  std::vector<std::string> args_;
  std::string usage_;
};

}  // namespace ctformer::cli
