#pragma once
// kubectl's JSONPath templates (`lcactl get ibu -o jsonpath='{.status.conditions[?(@.type==
// "PrepCompleted")].status}'`), the subset kubectl documents: text outside braces printed as is;
// inside braces `$`, `.field`, `['field']`, `.*` / `[*]`, `[n]` (negative from the end),
// `[start:end]`, `..field` (recursive descent), filters `[?(@.path OP literal)]` with ==, !=, <,
// <=, >, >= (or `[?(@.path)]`: present and not false/null), quoted text `{"\n"}`, and
// `{range <path>}...{end}`. No JSONPath library is packaged for C++ in Debian.
//
// Output as kubectl prints it: the values of one {...} joined by a space, strings bare and
// anything else as compact JSON; a path that matches nothing prints nothing (kubectl's
// --allow-missing-template-keys=true default).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_yaml.hpp"

namespace lca::cli::jsonpath {

struct Node;

class Template {
 public:
  // A syntax error is lca::Error kInvalid naming the byte offset in `text`.
  static Template Parse(std::string_view text);
  std::string Execute(const Json& root) const;

  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

 private:
  Template();
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace lca::cli::jsonpath
