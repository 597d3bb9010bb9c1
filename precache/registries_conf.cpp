#include "precache/registries_conf.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>
#include <system_error>
#include <variant>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::precache {
namespace fs = std::filesystem;

namespace {

using StringList = std::vector<std::string>;
using Value = std::variant<std::string, bool, long long, StringList>;

bool IsBareKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

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

// The text, a position in it and the line of that position, for messages that name the line.
class Cursor {
 public:
  Cursor(const std::string& text, const std::string& name) : text_(text), name_(name) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool LookingAt(std::string_view s) const { return text_.compare(pos_, s.size(), s) == 0; }
  void Advance(size_t n = 1) { pos_ = std::min(pos_ + n, text_.size()); }
  int line() const { return line_; }

  [[noreturn]] void Fail(const std::string& what) const { FailAt(line_, what); }
  [[noreturn]] void FailAt(int line, const std::string& what) const {
    throw Error(Errc::kInvalid, name_ + ": line " + std::to_string(line) + ": " + what);
  }

  void SkipSpaces() {
    while (Peek() == ' ' || Peek() == '\t') Advance();
  }
  // At "\n", "\r\n" (files edited on Windows) or the end of the text.
  bool AtLineEnd() const {
    return AtEnd() || Peek() == '\n' || (Peek() == '\r' && Peek(1) == '\n');
  }
  void NextLine() {
    if (Peek() == '\r') Advance();
    if (Peek() == '\n') {
      Advance();
      ++line_;
    }
  }
  void SkipComment() {
    Advance();  // '#'
    while (!AtLineEnd()) {
      if (IsControl(Peek())) Fail(Describe(Peek()) + " in a comment");
      Advance();
    }
  }
  // Spaces, an optional comment, then the end of the line (consumed).
  void EndLine(const std::string& after) {
    SkipSpaces();
    if (Peek() == '#') SkipComment();
    if (!AtLineEnd()) Fail("unexpected " + Describe(Peek()) + " after " + after);
    NextLine();
  }

 private:
  const std::string& text_;
  const std::string& name_;
  size_t pos_ = 0;
  int line_ = 1;
};

// ---- values ----

std::string ParseBasicString(Cursor& c) {
  c.Advance();  // '"'
  std::string out;
  for (;;) {
    if (c.AtLineEnd()) c.Fail("unterminated string: no closing '\"' on this line");
    const char ch = c.Peek();
    c.Advance();
    if (ch == '"') return out;
    if (IsControl(ch)) c.Fail(Describe(ch) + " in a string");
    if (ch != '\\') {
      out += ch;
      continue;
    }
    if (c.AtLineEnd()) c.Fail("unterminated string: no closing '\"' on this line");
    const char e = c.Peek();
    c.Advance();
    switch (e) {
      case '"':
      case '\\':
        out += e;
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      default:
        // \u, \b, \f, \r, \e... are valid TOML but never needed in a registries.conf; only
        // what is read exactly is accepted.
        c.Fail(std::string("escape \\") + e + " is not supported (only \\\" \\\\ \\n \\t)");
    }
  }
}

std::string ParseLiteralString(Cursor& c) {
  c.Advance();  // '\''
  std::string out;
  for (;;) {
    if (c.AtLineEnd()) c.Fail("unterminated string: no closing \"'\" on this line");
    const char ch = c.Peek();
    c.Advance();
    if (ch == '\'') return out;
    if (IsControl(ch)) c.Fail(Describe(ch) + " in a string");
    out += ch;
  }
}

std::string ParseString(Cursor& c) {
  if (c.LookingAt("\"\"\"") || c.LookingAt("'''")) {
    c.Fail("multi-line strings are not supported");
  }
  return c.Peek() == '"' ? ParseBasicString(c) : ParseLiteralString(c);
}

// Whitespace, line ends and comments between array elements.
void SkipArrayFiller(Cursor& c) {
  for (;;) {
    c.SkipSpaces();
    if (c.Peek() == '#') c.SkipComment();
    if (c.AtEnd() || !c.AtLineEnd()) return;
    c.NextLine();
  }
}

StringList ParseArray(Cursor& c) {
  const int open = c.line();
  const auto unterminated = [&] {
    c.FailAt(open, "unterminated array: no ']' before the end of the file");
  };
  c.Advance();  // '['
  StringList out;
  for (;;) {
    SkipArrayFiller(c);
    if (c.AtEnd()) unterminated();
    if (c.Peek() == ']') break;
    if (c.Peek() != '"' && c.Peek() != '\'') {
      c.Fail("expected a string or ']' in the array opened on line " + std::to_string(open) +
             ", found " + Describe(c.Peek()) + " (only arrays of strings are supported)");
    }
    out.push_back(ParseString(c));
    SkipArrayFiller(c);
    if (c.AtEnd()) unterminated();
    if (c.Peek() == ']') break;
    if (c.Peek() != ',') {
      c.Fail("expected ',' or ']' in the array opened on line " + std::to_string(open) +
             ", found " + Describe(c.Peek()));
    }
    c.Advance();
  }
  c.Advance();  // ']'
  return out;
}

// Decimal only: TOML's hex/octal/binary, '_' separators, floats and dates are not needed here.
long long ParseInteger(Cursor& c) {
  std::string sign;
  if (c.Peek() == '+' || c.Peek() == '-') {
    sign = c.Peek();
    c.Advance();
  }
  std::string digits;
  while (c.Peek() >= '0' && c.Peek() <= '9') {
    digits += c.Peek();
    c.Advance();
  }
  // A float, date, hex number or "1_000" continues with one of these; a leading 0 is not TOML.
  const char next = c.Peek();
  if (digits.empty() || IsBareKeyChar(next) || next == '.' || next == ':' || next == '+' ||
      (digits.size() > 1 && digits[0] == '0')) {
    c.Fail(
        "unsupported value: only true/false, strings, arrays of strings and plain decimal "
        "integers are supported");
  }
  const std::string text = (sign == "-" ? sign : "") + digits;
  long long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) c.Fail("integer out of range");
  return v;
}

bool LookingAtWord(const Cursor& c, std::string_view word) {
  return c.LookingAt(word) && !IsBareKeyChar(c.Peek(word.size()));
}

Value ParseValue(Cursor& c) {
  const char ch = c.Peek();
  if (ch == '"' || ch == '\'') return ParseString(c);
  if (ch == '[') return ParseArray(c);
  if (ch == '{') c.Fail("inline tables ({...}) are not supported");
  if (LookingAtWord(c, "true")) {
    c.Advance(4);
    return true;
  }
  if (LookingAtWord(c, "false")) {
    c.Advance(5);
    return false;
  }
  if ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-') return ParseInteger(c);
  if (c.AtLineEnd() || ch == '#') c.Fail("missing value after '='");
  c.Fail("unsupported value starting with " + Describe(ch));
}

// A bare key or a quoted one (whose dots are part of the key, as in Debian's aliases).
std::string ParseKey(Cursor& c) {
  if (c.Peek() == '"' || c.Peek() == '\'') return ParseString(c);
  std::string key;
  while (IsBareKeyChar(c.Peek())) {
    key += c.Peek();
    c.Advance();
  }
  if (key.empty()) c.Fail("expected a key, found " + Describe(c.Peek()));
  return key;
}

// ---- the document ----

struct RawMirror {
  int line = 0;
  std::string location;
  std::string pull_from_mirror;
  std::set<std::string> keys;
};

struct RawRegistry {
  int line = 0;
  RegistryEntry entry;  // prefix, location and mirrors are filled in by Normalize
  std::vector<RawMirror> mirrors;
  std::set<std::string> keys;
};

std::string TypeName(const Value& v) {
  switch (v.index()) {
    case 0:
      return "a string";
    case 1:
      return "a boolean";
    case 2:
      return "an integer";
    default:
      return "an array";
  }
}

// What one file says, section by section, checked as it is read.
class Document {
 public:
  Document(const std::string& text, const std::string& name) : c_(text, name) {}

  std::vector<RawRegistry> Parse() {
    while (!c_.AtEnd()) {
      c_.SkipSpaces();
      if (c_.Peek() == '#' || c_.AtLineEnd()) {
        c_.EndLine("a comment");
      } else if (c_.Peek() == '[') {
        ParseHeader();
      } else {
        ParseKeyValue();
      }
    }
    return std::move(registries_);
  }

  [[noreturn]] void FailAt(int line, const std::string& what) const { c_.FailAt(line, what); }

 private:
  enum class Section { kTop, kAliases, kRegistry, kMirror };

  void ParseHeader() {
    const int line = c_.line();
    const bool array = c_.LookingAt("[[");
    c_.Advance(array ? 2 : 1);
    std::vector<std::string> path;
    for (;;) {
      c_.SkipSpaces();
      path.push_back(ParseKey(c_));
      c_.SkipSpaces();
      if (c_.Peek() != '.') break;
      c_.Advance();
    }
    if (!c_.LookingAt(array ? "]]" : "]")) {
      c_.Fail(std::string("expected '") + (array ? "]]" : "]") + "' to close the table header");
    }
    c_.Advance(array ? 2 : 1);
    c_.EndLine("the table header");
    OpenTable(array, path, line);
  }

  void OpenTable(bool array, const std::vector<std::string>& path, int line) {
    std::string shown;
    for (const auto& p : path) shown += (shown.empty() ? "" : ".") + p;
    shown = array ? "[[" + shown + "]]" : "[" + shown + "]";
    if (array && path == std::vector<std::string>{"registry"}) {
      registries_.push_back(RawRegistry{line, {}, {}, {}});
      section_ = Section::kRegistry;
    } else if (array && path == std::vector<std::string>{"registry", "mirror"}) {
      // TOML: it belongs to the most recent [[registry]], whatever tables came in between.
      if (registries_.empty()) FailAt(line, shown + " before any [[registry]]");
      registries_.back().mirrors.push_back(RawMirror{line, {}, {}, {}});
      section_ = Section::kMirror;
    } else if (!array && path == std::vector<std::string>{"aliases"}) {
      if (seen_aliases_) FailAt(line, "[aliases] appears twice (TOML forbids it)");
      seen_aliases_ = true;
      section_ = Section::kAliases;
    } else if (path[0] == "registries") {
      FailAt(line, shown +
                       " is version 1 syntax, which is not supported: write [[registry]] tables "
                       "(containers-registries.conf(5) version 2)");
    } else {
      FailAt(line, "table " + shown +
                       " is not supported (only [[registry]], [[registry.mirror]] and [aliases])");
    }
  }

  void ParseKeyValue() {
    const int line = c_.line();
    const std::string key = ParseKey(c_);
    c_.SkipSpaces();
    if (c_.Peek() == '.') c_.Fail("dotted keys ('" + key + ".…') are not supported");
    if (c_.Peek() != '=') c_.Fail("expected '=' after the key '" + key + "'");
    c_.Advance();
    c_.SkipSpaces();
    const Value value = ParseValue(c_);
    c_.EndLine("the value of '" + key + "'");
    Assign(key, value, line);
  }

  void Assign(const std::string& key, const Value& v, int line) {
    if (!CurrentKeys().insert(key).second) {
      FailAt(line, "key '" + key + "' is set twice in the same table (TOML forbids it)");
    }
    switch (section_) {
      case Section::kTop:
        return AssignTop(key, v, line);
      case Section::kAliases:
        // Short-name aliases only matter for names without a registry, which are never fetched
        // in-process; they are checked for type only.
        Want<std::string>(key, v, line);
        return;
      case Section::kRegistry:
        return AssignRegistry(key, v, line);
      case Section::kMirror:
        return AssignMirror(key, v, line);
    }
  }

  // Every global key containers/image v5 knows; none of them changes where a fully qualified
  // image is fetched from. An unknown key is refused rather than ignored (containers/image
  // ignores it): it may be a setting of a newer containers/image that does change resolution,
  // and refusing only costs the skopeo fallback.
  void AssignTop(const std::string& key, const Value& v, int line) {
    if (key == "unqualified-search-registries" || key == "credential-helpers") {
      Want<StringList>(key, v, line);
    } else if (key == "short-name-mode" || key == "additional-layer-store-auth-helper") {
      Want<std::string>(key, v, line);
    } else {
      FailAt(line, "unknown key '" + key +
                       "': this reader cannot tell whether it changes how images are resolved");
    }
  }

  void AssignRegistry(const std::string& key, const Value& v, int line) {
    RegistryEntry& e = registries_.back().entry;
    if (key == "prefix") {
      e.prefix = Want<std::string>(key, v, line);
    } else if (key == "location") {
      e.location = Want<std::string>(key, v, line);
    } else if (key == "insecure") {
      e.insecure = Want<bool>(key, v, line);
    } else if (key == "blocked") {
      e.blocked = Want<bool>(key, v, line);
    } else if (key == "mirror-by-digest-only") {
      e.mirror_by_digest_only = Want<bool>(key, v, line);
    } else {
      FailAt(line, "unknown key '" + key + "' in [[registry]] (known: prefix, location, " +
                       "insecure, blocked, mirror-by-digest-only)");
    }
  }

  void AssignMirror(const std::string& key, const Value& v, int line) {
    RawMirror& m = registries_.back().mirrors.back();
    if (key == "location") {
      m.location = Want<std::string>(key, v, line);
    } else if (key == "insecure") {
      Want<bool>(key, v, line);  // any mirror makes the entry non-direct anyway
    } else if (key == "pull-from-mirror") {
      m.pull_from_mirror = Want<std::string>(key, v, line);
    } else {
      FailAt(line, "unknown key '" + key +
                       "' in [[registry.mirror]] (known: location, insecure, pull-from-mirror)");
    }
  }

  template <class T>
  T Want(const std::string& key, const Value& v, int line) const {
    if (!std::holds_alternative<T>(v)) {
      const std::string want = TypeName(Value(T{}));
      FailAt(line, "'" + key + "' must be " + (want == "an array" ? "an array of strings" : want) +
                       ", not " + TypeName(v));
    }
    return std::get<T>(v);
  }

  std::set<std::string>& CurrentKeys() {
    switch (section_) {
      case Section::kRegistry:
        return registries_.back().keys;
      case Section::kMirror:
        return registries_.back().mirrors.back().keys;
      case Section::kAliases:
        return alias_keys_;
      case Section::kTop:
        break;
    }
    return top_keys_;
  }

  Cursor c_;
  Section section_ = Section::kTop;
  bool seen_aliases_ = false;
  std::set<std::string> top_keys_;
  std::set<std::string> alias_keys_;
  std::vector<RawRegistry> registries_;
};

// containers/image's parseLocation: trailing '/' dropped, URL schemes refused.
std::string CleanLocation(const Document& doc, int line, const std::string& field,
                          const std::string& value) {
  std::string out = value;
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out.starts_with("http://") || out.starts_with("https://")) {
    doc.FailAt(line, field + " '" + value + "' must not have a URL scheme (host[:port][/path])");
  }
  return out;
}

void NormalizeMirrors(const Document& doc, RawRegistry& raw) {
  RegistryEntry& e = raw.entry;
  for (const RawMirror& m : raw.mirrors) {
    const std::string loc = CleanLocation(doc, m.line, "mirror location", m.location);
    if (loc.empty()) doc.FailAt(m.line, "[[registry.mirror]] without a location");
    const std::string& p = m.pull_from_mirror;
    if (!p.empty() && p != "all" && p != "digest-only" && p != "tag-only") {
      doc.FailAt(m.line, "pull-from-mirror '" + p + "' is not all, digest-only or tag-only");
    }
    if (!p.empty() && e.mirror_by_digest_only) {
      doc.FailAt(m.line,
                 "pull-from-mirror cannot be set when the [[registry]] has "
                 "mirror-by-digest-only = true");
    }
    e.mirrors.push_back(loc);
  }
}

// What containers/image's postProcessRegistries and loadConfigFile check and default.
void Normalize(const Document& doc, RawRegistry& raw) {
  RegistryEntry& e = raw.entry;
  e.location = CleanLocation(doc, raw.line, "location", e.location);
  if (e.prefix.empty()) {
    if (e.location.empty()) doc.FailAt(raw.line, "[[registry]] with neither prefix nor location");
    e.prefix = e.location;
  } else {
    e.prefix = CleanLocation(doc, raw.line, "prefix", e.prefix);
    const bool wildcard = e.prefix.starts_with("*.");
    if (!wildcard && e.location.empty()) {
      doc.FailAt(raw.line, "[[registry]] without a location needs a prefix like *.example.com");
    }
    if (wildcard && e.prefix.find_first_of("/@:") != std::string::npos) {
      doc.FailAt(raw.line, "wildcard prefix '" + e.prefix +
                               "' must be just *.domain (no port, path, tag or digest)");
    }
  }
  NormalizeMirrors(doc, raw);
}

// containers/image refuses a file naming one registry (location, or the wildcard prefix) more
// than once with different insecure or blocked settings.
void CheckConflicts(const Document& doc, const std::vector<RawRegistry>& raws) {
  std::map<std::string, const RawRegistry*> first;
  for (const RawRegistry& r : raws) {
    const RegistryEntry& e = r.entry;
    const std::string key = e.location.empty() ? e.prefix : e.location;
    const auto [it, inserted] = first.emplace(key, &r);
    if (inserted) continue;
    const RegistryEntry& f = it->second->entry;
    if (f.insecure != e.insecure || f.blocked != e.blocked) {
      doc.FailAt(r.line, "registry '" + key + "' is also defined on line " +
                             std::to_string(it->second->line) +
                             " with a different insecure or blocked setting");
    }
  }
}

bool MatchesWildcard(const std::string& repo, const std::string& prefix) {
  // containers/image's refMatchingSubdomainPrefix: the first ".example.com" in repo, before any
  // '/', ending the host (or followed by the port).
  const std::string_view domain = std::string_view(prefix).substr(1);
  const size_t at = repo.find(domain);
  if (at == std::string::npos || repo.substr(0, at).find('/') != std::string::npos) return false;
  const size_t end = at + domain.size();
  return end == repo.size() || repo[end] == ':' || repo[end] == '/' || repo[end] == '@';
}

bool PrefixMatches(const std::string& repo, const std::string& prefix) {
  if (prefix.starts_with("*.")) return MatchesWildcard(repo, prefix);
  if (!repo.starts_with(prefix)) return false;
  if (repo.size() == prefix.size()) return true;
  const char next = repo[prefix.size()];
  return next == '/' || next == ':' || next == '@';
}

bool IsNotFound(const fs::file_status& st) { return st.type() == fs::file_type::not_found; }

[[noreturn]] void ThrowIo(const fs::path& p, const std::error_code& ec) {
  throw Error(Errc::kIo, "reading " + p.string() + ": " + ec.message());
}

// The *.conf files of one drop-in directory, in byte order of name, as containers/image walks
// it.
std::vector<fs::path> DropInFiles(const fs::path& dir) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dir, ec);
  if (IsNotFound(st)) return {};
  if (ec) ThrowIo(dir, ec);
  // containers/image's filepath.WalkDir does not follow a symlink at the root of the walk: a
  // symlinked registries.conf.d (or a file in its place) contributes nothing there, nor here.
  if (!fs::is_directory(st)) return {};
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) ThrowIo(dir, ec);
  std::sort(names.begin(), names.end());
  std::vector<fs::path> out;
  for (const auto& name : names) {
    if (!name.ends_with(".conf")) continue;
    const fs::path p = dir / name;
    const fs::file_status link = fs::symlink_status(p, ec);
    if (IsNotFound(link)) continue;  // removed since the listing
    if (ec) ThrowIo(p, ec);
    if (fs::is_directory(link)) continue;  // subdirectories are not walked
    const fs::file_status target = fs::status(p, ec);
    if (IsNotFound(target)) continue;  // dangling symlink: containers/image skips it too
    if (ec) ThrowIo(p, ec);
    if (!fs::is_regular_file(target)) {
      // containers/image would try to read it (and fail, or block on a FIFO).
      throw Error(Errc::kInvalid, p.string() +
                                      ": not a regular file; remove it or rename it so that it "
                                      "does not end in .conf");
    }
    out.push_back(p);
  }
  return out;
}

// containers/image tests existence with faccessat(F_OK), which follows symlinks.
bool Exists(const fs::path& p) {
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (IsNotFound(st)) return false;
  if (ec) ThrowIo(p, ec);
  return true;
}

struct Sources {
  fs::path main;
  bool main_explicit = false;
  std::vector<fs::path> dropin_dirs;
};

// containers/image's newConfigWrapperWithHomeDir, for a SystemContext that at most sets
// SystemRegistriesConfPath.
Sources ChooseSources(const std::optional<fs::path>& main, const fs::path& etc_dir,
                      const std::optional<fs::path>& home) {
  Sources s;
  const fs::path etc_dirs = etc_dir / "registries.conf.d";
  if (main) {
    s.main = *main;
    s.main_explicit = true;
  } else if (home && Exists(*home / ".config/containers/registries.conf")) {
    // The per-user file replaces the system file and its drop-in directory.
    s.main = *home / ".config/containers/registries.conf";
    s.dropin_dirs = {*home / ".config/containers/registries.conf.d"};
    return s;
  } else {
    s.main = etc_dir / "registries.conf";
  }
  s.dropin_dirs.push_back(etc_dirs);
  if (home) s.dropin_dirs.push_back(*home / ".config/containers/registries.conf.d");
  return s;
}

// A later file's entry replaces an earlier one with the same prefix, in its place.
void Merge(RegistriesConf& into, RegistriesConf&& from) {
  for (auto& e : from.registries) {
    auto it = std::find_if(into.registries.begin(), into.registries.end(),
                           [&](const RegistryEntry& x) { return x.prefix == e.prefix; });
    if (it != into.registries.end()) {
      *it = std::move(e);
    } else {
      into.registries.push_back(std::move(e));
    }
  }
}

}  // namespace

bool RegistryEntry::Direct() const {
  return mirrors.empty() && !blocked && (location.empty() || location == prefix);
}

RegistriesConf ParseRegistriesConf(const std::string& text, const std::string& name) {
  Document doc(text, name);
  std::vector<RawRegistry> raws = doc.Parse();
  for (auto& r : raws) Normalize(doc, r);
  CheckConflicts(doc, raws);
  RegistriesConf conf;
  std::set<std::string> prefixes;
  for (auto& r : raws) {
    // containers/image keeps the first entry for a prefix and drops the rest silently.
    if (prefixes.insert(r.entry.prefix).second) conf.registries.push_back(std::move(r.entry));
  }
  return conf;
}

std::optional<fs::path> DefaultHomeDir() {
  const char* env = std::getenv("HOME");
  if (env != nullptr && *env != '\0') return fs::path(env);
  // As containers/storage's unshare.HomeDir: without $HOME, the user's passwd entry.
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_dir != nullptr && *found->pw_dir != '\0') {
    return fs::path(found->pw_dir);
  }
  return std::nullopt;
}

RegistriesConf LoadRegistriesConf(const std::optional<fs::path>& main, const fs::path& etc_dir,
                                  const std::optional<fs::path>& home) {
  const Sources s = ChooseSources(main, etc_dir, home);
  RegistriesConf conf;
  if (auto text = ReadFileIfExists(s.main)) {
    conf = ParseRegistriesConf(*text, s.main.string());
  } else if (s.main_explicit) {
    throw Error(Errc::kNotFound,
                s.main.string() + ": no such file (skopeo --registries-conf would fail too)");
  }
  for (const auto& dir : s.dropin_dirs) {
    for (const auto& file : DropInFiles(dir)) {
      auto text = ReadFileIfExists(file);
      if (!text) continue;  // removed since the listing; containers/image skips it too
      Merge(conf, ParseRegistriesConf(*text, file.string()));
    }
  }
  return conf;
}

const RegistryEntry* FindRegistry(const RegistriesConf& conf, const std::string& repo) {
  const RegistryEntry* best = nullptr;
  for (const auto& e : conf.registries) {
    if (e.prefix.empty() || !PrefixMatches(repo, e.prefix)) continue;
    // Ties in length go to the smaller prefix in byte order, the one containers/image's
    // sorted list holds first ('*' sorts before any host character).
    if (best == nullptr || e.prefix.size() > best->prefix.size() ||
        (e.prefix.size() == best->prefix.size() && e.prefix < best->prefix)) {
      best = &e;
    }
  }
  return best;
}

}  // namespace lca::precache
