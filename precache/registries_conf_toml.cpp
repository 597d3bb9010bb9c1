#include "precache/registries_conf_toml.hpp"

#include <toml++/toml.h>

#include <cstdio>
#include <optional>
#include <regex>
#include <string_view>

#include "common/error.hpp"

namespace lca::precache::detail {
namespace {

// TOML allows no control character but tab in strings and comments.
bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

std::string Describe(char c) {
  if (c == '\r') return "carriage return without a line feed";
  if (IsControl(c)) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "character 0x%02x", static_cast<unsigned char>(c));
    return buf;
  }
  return std::string("'") + c + "'";
}

// The text by lines, to show what toml++ points at: it counts lines from 1 and columns in code
// points from 1.
class SourceText {
 public:
  explicit SourceText(std::string_view text) {
    size_t start = 0;
    for (;;) {
      const size_t nl = text.find('\n', start);
      lines_.push_back(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }

  std::string_view Line(size_t line) const {
    return line >= 1 && line <= lines_.size() ? lines_[line - 1] : std::string_view();
  }

  // The bytes from `p` to the end of its line.
  std::string_view From(const toml::source_position& p) const {
    const std::string_view line = Line(p.line);
    size_t byte = 0;
    // Skip column - 1 code points (UTF-8 continuation bytes do not start one).
    for (size_t cp = 1; cp < p.column && byte < line.size();) {
      ++byte;
      if (byte >= line.size() || (static_cast<unsigned char>(line[byte]) & 0xC0) != 0x80) ++cp;
    }
    return line.substr(std::min(byte, line.size()));
  }

  // The character at `p`; '\n' at the end of a line.
  char At(const toml::source_position& p) const {
    const std::string_view rest = From(p);
    return rest.empty() ? '\n' : rest.front();
  }

  // What a node spans on its first line (a multi-line value: up to the end of that line).
  std::string_view Slice(const toml::source_region& r) const {
    const std::string_view rest = From(r.begin);
    if (r.end.line != r.begin.line || r.end.column <= r.begin.column) return rest;
    size_t bytes = 0;
    for (size_t cp = 0; cp < r.end.column - r.begin.column && bytes < rest.size();) {
      ++bytes;
      if (bytes >= rest.size() || (static_cast<unsigned char>(rest[bytes]) & 0xC0) != 0x80) ++cp;
    }
    return rest.substr(0, bytes);
  }

  // The table header a node was made by ("[[registry.mirror]]"), or nullopt when it was made by
  // a dotted key or is a value.
  std::optional<std::string> HeaderOf(const toml::node& n) const {
    const toml::source_region& r = n.source();
    const std::string_view line = Line(r.begin.line);
    const std::string_view rest = From(r.begin);
    const std::string_view before = line.substr(0, line.size() - rest.size());
    if (rest.empty() || rest.front() != '[' ||
        before.find_first_not_of(" \t") != std::string_view::npos) {
      return std::nullopt;
    }
    return std::string(Slice(r));
  }

 private:
  std::vector<std::string_view> lines_;
};

const char kUnsupportedValue[] =
    "unsupported value: only true/false, strings, arrays of strings and plain decimal integers "
    "are supported";
const char kOnlyTables[] =
    " is not supported (only [[registry]], [[registry.mirror]] and [aliases])";

// The key a key/value line starts with, as written (quotes removed).
std::string KeyOfLine(std::string_view line) {
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos) return "";
  line.remove_prefix(start);
  if (line.front() == '"' || line.front() == '\'') {
    const size_t close = line.find(line.front(), 1);
    return std::string(line.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  return std::string(line.substr(0, line.find_first_of(" \t=")));
}

// Where the array that toml++ stopped in was opened: the nearest `key = [` line at or above.
size_t ArrayOpenLine(const SourceText& src, size_t line) {
  static const std::regex kOpen(R"(^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=\s*\[)");
  for (size_t l = line; l >= 1; --l) {
    const std::string_view text = src.Line(l);
    if (std::regex_search(text.begin(), text.end(), kOpen)) return l;
  }
  return line;
}

struct Reworded {
  size_t line;
  std::string what;
};

// toml++'s message for a syntax error, in the words of this reader's other refusals.
Reworded Reword(const SourceText& src, const toml::parse_error& e) {
  const std::string_view d = e.description();
  const auto& at = e.source().begin;
  const std::string_view line = src.Line(at.line);
  const bool header = line.find_first_not_of(" \t") != std::string_view::npos &&
                      line[line.find_first_not_of(" \t")] == '[';
  const std::string after = header ? "the table header" : "the value of '" + KeyOfLine(line) + "'";
  const auto has = [&](std::string_view s) { return d.find(s) != std::string_view::npos; };
  if (has("parsing array") && has("end-of-file")) {
    return {ArrayOpenLine(src, at.line), "unterminated array: no ']' before the end of the file"};
  }
  if (has("expected comma or closing ']'")) {
    return {at.line, "expected ',' or ']' in the array opened on line " +
                         std::to_string(ArrayOpenLine(src, at.line)) + ", found " +
                         Describe(src.At(at))};
  }
  if (has("parsing string") || has("parsing literal string")) {
    const char quote = has("literal") ? '\'' : '"';
    const char c = src.At(at);
    if (has("end-of-file") || c == '\n' || c == '\r') {
      return {at.line, quote == '"' ? "unterminated string: no closing '\"' on this line"
                                    : "unterminated string: no closing \"'\" on this line"};
    }
    return {at.line, Describe(c) + " in a string"};
  }
  if (has("cannot redefine existing table") && header) {
    return {at.line,
            std::string(line.substr(line.find('['), line.rfind(']') - line.find('[') + 1)) +
                " appears twice (TOML forbids it)"};
  }
  if (has("cannot redefine existing")) {
    return {at.line,
            "key '" + KeyOfLine(line) + "' is set twice in the same table (TOML forbids it)"};
  }
  if (has("after '\\r'")) return {at.line, "unexpected " + Describe('\r') + " after " + after};
  if (has("expected a comment or whitespace")) {
    return {at.line, "unexpected " + Describe(src.At(at)) + " after " + after};
  }
  if (has("expected value")) return {at.line, "missing value after '='"};
  return {at.line, std::string(d)};
}

// Walks the parsed document. Every refusal is kept with its position and the first in the file
// is thrown, as a reader going top to bottom would.
class Checker {
 public:
  Checker(const std::string& text, const std::string& name) : src_(text), name_(name) {}

  std::vector<RawRegistry> Run(const toml::table& root) {
    for (const auto& [key, value] : root) Top(std::string(key.str()), value);
    if (first_) FailAt(name_, static_cast<int>(first_->line), first_what_);
    return std::move(registries_);
  }

 private:
  void Problem(const toml::source_position& at, std::string what) {
    if (!first_ || at.line < first_->line ||
        (at.line == first_->line && at.column < first_->column)) {
      first_ = at;
      first_what_ = std::move(what);
    }
  }

  static bool IsTableLike(const toml::node& v) {
    const auto* t = v.as_table();
    return (t != nullptr && !t->is_inline()) || (v.is_array_of_tables() && !v.as_array()->empty() &&
                                                 !v.as_array()->front().as_table()->is_inline());
  }

  // A table (or array of tables) where none is allowed.
  void TableProblem(const toml::node& v, const std::string& key) {
    const auto header = src_.HeaderOf(v);
    if (!header) {
      Problem(v.source().begin, "dotted keys ('" + key + ".…') are not supported");
    } else if (header->starts_with("[registries") || header->starts_with("[[registries")) {
      Problem(v.source().begin,
              *header +
                  " is version 1 syntax, which is not supported: write "
                  "[[registry]] tables (containers-registries.conf(5) version 2)");
    } else if (*header == "[[registry.mirror]]") {
      Problem(v.source().begin, *header + " before any [[registry]]");
    } else {
      Problem(v.source().begin, "table " + *header + kOnlyTables);
    }
  }

  // A string as written: only what toml++ and containers/image read alike is accepted.
  bool CheckString(const toml::node& v) {
    const std::string_view raw = src_.Slice(v.source());
    if (raw.starts_with("\"\"\"") || raw.starts_with("'''")) {
      Problem(v.source().begin, "multi-line strings are not supported");
      return false;
    }
    if (!raw.starts_with("\"")) return true;
    for (size_t i = 1; i + 1 < raw.size(); ++i) {
      if (raw[i] != '\\') continue;
      const char e = raw[++i];
      if (e != '"' && e != '\\' && e != 'n' && e != 't') {
        Problem(v.source().begin,
                std::string("escape \\") + e + " is not supported (only \\\" \\\\ \\n \\t)");
        return false;
      }
    }
    return true;
  }

  // Values this reader can hold: strings, booleans, integers, arrays of strings.
  bool CheckValue(const toml::node& v) {
    if (v.is_table()) {
      Problem(v.source().begin, "inline tables ({...}) are not supported");
      return false;
    }
    if (const auto* a = v.as_array()) {
      for (const auto& item : *a) {
        if (!item.is_string()) {
          Problem(item.source().begin, "expected a string or ']' in the array opened on line " +
                                           std::to_string(v.source().begin.line) + ", found " +
                                           Describe(src_.At(item.source().begin)) +
                                           " (only arrays of strings are supported)");
          return false;
        }
        if (!CheckString(item)) return false;
      }
      return true;
    }
    if (v.is_string()) return CheckString(v);
    if (v.is_boolean() || v.is_integer()) return true;
    Problem(v.source().begin, kUnsupportedValue);
    return false;
  }

  static std::string TypeName(const toml::node& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_integer()) return "an integer";
    return "an array";
  }

  template <class T>
  std::optional<T> Want(const std::string& key, const toml::node& v) {
    const auto mismatch = [&](const std::string& want) {
      Problem(v.source().begin, "'" + key + "' must be " + want + ", not " + TypeName(v));
      return std::nullopt;
    };
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (!v.is_array()) return mismatch("an array of strings");
      T out;
      for (const auto& item : *v.as_array()) out.push_back(*item.value<std::string>());
      return out;
    } else {
      const auto* typed = v.as<T>();
      if (typed == nullptr) {
        return mismatch(std::is_same_v<T, bool> ? "a boolean" : "a string");
      }
      return typed->get();
    }
  }

  void Top(const std::string& key, const toml::node& v) {
    if (IsTableLike(v)) {
      if (key == "registry" && v.is_array() && src_.HeaderOf(v) == "[[registry]]") {
        for (const auto& element : *v.as_array()) Registry(*element.as_table());
      } else if (key == "aliases" && src_.HeaderOf(v) == "[aliases]") {
        Aliases(*v.as_table());
      } else {
        TableProblem(v, key);
      }
      return;
    }
    if (!CheckValue(v)) return;
    // Every global key containers/image v5 knows; none of them changes where a fully qualified
    // image is fetched from. An unknown key is refused rather than ignored (containers/image
    // ignores it): it may be a setting of a newer containers/image that does change
    // resolution, and refusing only costs the skopeo fallback.
    if (key == "unqualified-search-registries" || key == "credential-helpers") {
      Want<std::vector<std::string>>(key, v);
    } else if (key == "short-name-mode" || key == "additional-layer-store-auth-helper") {
      Want<std::string>(key, v);
    } else {
      Problem(v.source().begin, "unknown key '" + key +
                                    "': this reader cannot tell whether it changes how images "
                                    "are resolved");
    }
  }

  // Short-name aliases only matter for names without a registry, which are never fetched
  // in-process; they are checked for type only.
  void Aliases(const toml::table& t) {
    for (const auto& [key, v] : t) {
      if (IsTableLike(v)) {
        TableProblem(v, std::string(key.str()));
      } else if (CheckValue(v)) {
        Want<std::string>(std::string(key.str()), v);
      }
    }
  }

  void Registry(const toml::table& t) {
    RawRegistry raw;
    raw.line = static_cast<int>(t.source().begin.line);
    RegistryEntry& e = raw.entry;
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      if (key == "mirror" && v.is_array() && src_.HeaderOf(v) == "[[registry.mirror]]") {
        for (const auto& m : *v.as_array()) raw.mirrors.push_back(Mirror(*m.as_table()));
        continue;
      }
      if (IsTableLike(v)) {
        TableProblem(v, key);
      } else if (!CheckValue(v)) {
        // refused, with its line
      } else if (key == "prefix") {
        e.prefix = Want<std::string>(key, v).value_or("");
      } else if (key == "location") {
        e.location = Want<std::string>(key, v).value_or("");
      } else if (key == "insecure") {
        e.insecure = Want<bool>(key, v).value_or(false);
      } else if (key == "blocked") {
        e.blocked = Want<bool>(key, v).value_or(false);
      } else if (key == "mirror-by-digest-only") {
        e.mirror_by_digest_only = Want<bool>(key, v).value_or(false);
      } else {
        Problem(v.source().begin, "unknown key '" + key +
                                      "' in [[registry]] (known: prefix, location, insecure, "
                                      "blocked, mirror-by-digest-only)");
      }
    }
    registries_.push_back(std::move(raw));
  }

  RawMirror Mirror(const toml::table& t) {
    RawMirror m;
    m.line = static_cast<int>(t.source().begin.line);
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      if (IsTableLike(v)) {
        TableProblem(v, key);
      } else if (!CheckValue(v)) {
        // refused, with its line
      } else if (key == "location") {
        m.location = Want<std::string>(key, v).value_or("");
      } else if (key == "insecure") {
        Want<bool>(key, v);  // any mirror makes the entry non-direct anyway
      } else if (key == "pull-from-mirror") {
        m.pull_from_mirror = Want<std::string>(key, v).value_or("");
      } else {
        Problem(v.source().begin,
                "unknown key '" + key +
                    "' in [[registry.mirror]] (known: location, insecure, pull-from-mirror)");
      }
    }
    return m;
  }

  SourceText src_;
  const std::string& name_;
  std::optional<toml::source_position> first_;
  std::string first_what_;
  std::vector<RawRegistry> registries_;
};

}  // namespace

void FailAt(const std::string& name, int line, const std::string& what) {
  throw Error(Errc::kInvalid, name + ": line " + std::to_string(line) + ": " + what);
}

std::vector<RawRegistry> ReadRegistryTables(const std::string& text, const std::string& name) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(name));
  } catch (const toml::parse_error& e) {
    const Reworded r = Reword(SourceText(text), e);
    FailAt(name, static_cast<int>(r.line), r.what);
  }
  return Checker(text, name).Run(root);
}

}  // namespace lca::precache::detail
