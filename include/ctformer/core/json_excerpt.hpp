// A JSON value as text for an error message: at most `limit` characters, and safe on a value nested
// arbitrarily deep. nlohmann's dump() recurses once per level, so dumping a hostile file's
// [[[[...]]]] a million levels deep would overflow the stack; parsing and destroying it do not.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ctformer::detail {

inline std::string json_excerpt(const nlohmann::json& j, std::size_t limit = 120) {
  constexpr std::size_t kMaxDepth = 32;
  // The nesting depth, found without recursion, stopping at kMaxDepth.
  std::vector<std::pair<const nlohmann::json*, std::size_t>> stack = {{&j, 1}};
  bool too_deep = false;
  while (!stack.empty() && !too_deep) {
    const auto [value, depth] = stack.back();
    stack.pop_back();
    if (!value->is_structured()) continue;
    if (depth > kMaxDepth) too_deep = true;
    for (const auto& child : *value) stack.emplace_back(&child, depth + 1);
  }
  if (too_deep)
    return j.is_array() ? "an array nested more than 32 levels deep"
                        : "an object nested more than 32 levels deep";
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

}  // namespace ctformer::detail
