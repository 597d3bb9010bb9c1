// RedactText by hand. It was four std::regex replacements, and std::regex recurses once per
// character of a match: a long value after a secret key ("token": "<100k characters>" in an
// annotation or a log line) crashed lcactl must-gather. Each pass below keeps the regex's
// leftmost, non-overlapping semantics; the patterns it replaced are quoted with each pass.
#include <array>
#include <cctype>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "agent/cli/must_gather.hpp"

namespace lca::cli {
namespace {

constexpr std::size_t npos = std::string_view::npos;

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Case-insensitive `word` at t[p]; the position after it, or npos.
std::size_t Word(std::string_view t, std::size_t p, std::string_view word) {
  if (p > t.size() || t.size() - p < word.size()) return npos;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(t[p + k])) != word[k]) return npos;
  }
  return p + word.size();
}

std::size_t SkipBlanks(std::string_view t, std::size_t p) {
  while (p < t.size() && IsBlank(t[p])) ++p;
  return p;
}

// [ \t]*[:=][ \t]*
std::size_t Separator(std::string_view t, std::size_t p) {
  p = SkipBlanks(t, p);
  if (p >= t.size() || (t[p] != ':' && t[p] != '=')) return npos;
  return SkipBlanks(t, p + 1);
}

// "?(?:auth|password|token|identitytoken|registrytoken)"?[ \t]*[:=][ \t]*
std::size_t KeyBody(std::string_view t, std::size_t p) {
  static constexpr std::array<std::string_view, 5> kWords = {"auth", "password", "token",
                                                             "identitytoken", "registrytoken"};
  if (p < t.size() && t[p] == '"') ++p;
  for (std::string_view w : kWords) {
    std::size_t q = Word(t, p, w);
    if (q == npos) continue;
    if (q < t.size() && t[q] == '"') {
      if (std::size_t end = Separator(t, q + 1); end != npos) return end;
    }
    if (std::size_t end = Separator(t, q); end != npos) return end;
  }
  return npos;
}

// ((?:^|[^A-Za-z0-9_])<KeyBody>) starting at i: the end of the key, or npos.
std::size_t Key(std::string_view t, std::size_t i) {
  if (i == 0) {
    if (std::size_t end = KeyBody(t, 0); end != npos) return end;
  }
  if (i < t.size() && !IsWordChar(t[i])) return KeyBody(t, i + 1);
  return npos;
}

// "(?:[^"\\\n]|\\.)*"  ('.' matches anything but a line terminator)
std::size_t QuotedValue(std::string_view t, std::size_t p) {
  if (p >= t.size() || t[p] != '"') return npos;
  for (std::size_t j = p + 1; j < t.size(); ++j) {
    if (t[j] == '"') return j + 1;
    if (t[j] == '\n') return npos;
    if (t[j] == '\\') {
      if (j + 1 >= t.size() || t[j + 1] == '\n' || t[j + 1] == '\r') return npos;
      ++j;
    }
  }
  return npos;
}

// [^"\s,}][^\s,}]*
std::size_t BareValue(std::string_view t, std::size_t p) {
  const auto stops = [](char c) { return IsSpace(c) || c == ',' || c == '}'; };
  if (p >= t.size() || t[p] == '"' || stops(t[p])) return npos;
  while (p < t.size() && !stops(t[p])) ++p;
  return p;
}

struct Match {
  std::size_t prefix_end;  // kept
  std::size_t end;         // [prefix_end, end) is replaced
};

// One regex_replace: the leftmost match at each position, scanning on after it.
std::string ReplaceAll(std::string_view t, std::string_view replacement,
                       const std::function<std::optional<Match>(std::size_t)>& match_at) {
  std::string out;
  out.reserve(t.size());
  for (std::size_t i = 0; i < t.size();) {
    if (const auto m = match_at(i)) {
      out.append(t.substr(i, m->prefix_end - i));
      out.append(replacement);
      i = m->end;
    } else {
      out += t[i++];
    }
  }
  return out;
}

std::optional<Match> KeyThen(std::string_view t, std::size_t i,
                             std::size_t (*value)(std::string_view, std::size_t)) {
  const std::size_t key_end = Key(t, i);
  if (key_end == npos) return std::nullopt;
  const std::size_t end = value(t, key_end);
  if (end == npos) return std::nullopt;
  return Match{key_end, end};
}

// (authorization[ \t]*[:=][ \t]*)[^\n"]+ — the value may have to take back the last blank.
std::optional<Match> Authorization(std::string_view t, std::size_t i) {
  const std::size_t w = Word(t, i, "authorization");
  if (w == npos) return std::nullopt;
  const std::size_t colon = SkipBlanks(t, w);
  const std::size_t p = Separator(t, w);
  if (p == npos) return std::nullopt;
  std::size_t end = p;
  while (end < t.size() && t[end] != '\n' && t[end] != '"') ++end;
  if (end > p) return Match{p, end};
  // Nothing after the blanks: the regex backtracks and the last blank becomes the value.
  if (p > colon + 1) return Match{p - 1, p};
  return std::nullopt;
}

// (bearer[ \t]+)[A-Za-z0-9._~+/=-]+
std::optional<Match> Bearer(std::string_view t, std::size_t i) {
  const std::size_t w = Word(t, i, "bearer");
  if (w == npos || w >= t.size() || !IsBlank(t[w])) return std::nullopt;
  const std::size_t p = SkipBlanks(t, w);
  std::size_t end = p;
  while (end < t.size() && (std::isalnum(static_cast<unsigned char>(t[end])) ||
                            std::string_view("._~+/=-").find(t[end]) != npos)) {
    ++end;
  }
  if (end == p) return std::nullopt;
  return Match{p, end};
}

}  // namespace

std::string RedactText(std::string text) {
  // <key>: "value" / <key>=value / "key": "value", the key standing alone (not "tokenizer").
  text = ReplaceAll(text, "\"REDACTED\"",
                    [&](std::size_t i) { return KeyThen(text, i, QuotedValue); });
  text = ReplaceAll(text, "REDACTED", [&](std::size_t i) { return KeyThen(text, i, BareValue); });
  text = ReplaceAll(text, "REDACTED", [&](std::size_t i) { return Authorization(text, i); });
  text = ReplaceAll(text, "REDACTED", [&](std::size_t i) { return Bearer(text, i); });
  return text;
}

}  // namespace lca::cli
