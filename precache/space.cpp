#include "precache/space.hpp"

#include <cctype>
#include <limits>
#include <string>

#include "common/error.hpp"

namespace lca::precache {
namespace {

// __extension__: 128-bit intermediates keep the overflow checks simple; g++ and clang have it.
__extension__ typedef unsigned __int128 u128;

Error Invalid(std::string_view text, const std::string& why) {
  return Error(Errc::kInvalid, "spaceRequired '" + std::string(text) + "': " + why +
                                   "; use a size like \"35 GiB\", \"40 GB\" or \"1073741824\"");
}

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

struct Parsed {
  std::string_view integer;   // digits before the '.'
  std::string_view fraction;  // digits after the '.', may be empty
  std::string_view unit;      // what follows the number and optional spaces
};

Parsed Split(std::string_view original, std::string_view s) {
  if (s.empty()) throw Invalid(original, "empty value");
  if (s.front() == '-') throw Invalid(original, "negative sizes are not allowed");
  Parsed p;
  size_t i = 0;
  while (i < s.size() && IsDigit(s[i])) ++i;
  p.integer = s.substr(0, i);
  if (i < s.size() && s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    p.fraction = s.substr(start, i - start);
    // "5." and ".5" are not numbers in TALM's syntax either.
    if (p.fraction.empty()) throw Invalid(original, "a '.' must be followed by digits");
  }
  if (p.integer.empty()) throw Invalid(original, "must start with a number");
  while (i < s.size() && s[i] == ' ') ++i;
  p.unit = s.substr(i);
  return p;
}

// The multiplier for a unit, or 0 if the unit is not one of TALM's.
uint64_t Multiplier(std::string_view unit) {
  std::string u;
  for (char c : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.empty() || u == "b") return 1;
  if (u.back() == 'b') u.pop_back();  // "KB" == "K", "KiB" == "Ki"
  static constexpr std::string_view kPrefixes = "kmgtp";
  if (u.size() < 1 || u.size() > 2) return 0;
  const size_t pos = kPrefixes.find(u[0]);
  if (pos == std::string_view::npos) return 0;
  const bool binary = u.size() == 2;
  if (binary && u[1] != 'i') return 0;
  uint64_t m = 1;
  for (size_t k = 0; k <= pos; ++k) m *= binary ? 1024 : 1000;
  return m;
}

}  // namespace

uint64_t ParseSpaceRequired(std::string_view text) {
  const std::string_view s = Trim(text);
  const Parsed p = Split(text, s);
  const uint64_t mult = Multiplier(p.unit);
  if (mult == 0) {
    throw Invalid(text, "unknown unit '" + std::string(p.unit) +
                            "' (use B, KB/MB/GB/TB/PB for powers of 1000 or "
                            "KiB/MiB/GiB/TiB/PiB for powers of 1024)");
  }
  constexpr u128 kMax = std::numeric_limits<uint64_t>::max();
  // Integer arithmetic so "38.5 GB" is exactly 38500000000 bytes, with no float rounding.
  u128 whole = 0;
  for (char c : p.integer) {
    whole = whole * 10 + static_cast<unsigned>(c - '0');
    if (whole > kMax) throw Invalid(text, "too large");
  }
  u128 bytes = whole * mult;
  if (bytes > kMax) throw Invalid(text, "too large");
  // Fraction: digits / 10^n of the unit, truncated to bytes. Digits past the 20th are ignored
  // (worth under 1/10000 of a byte even for PiB), which keeps num * mult inside 128 bits.
  u128 num = 0, den = 1;
  for (size_t k = 0; k < p.fraction.size() && k < 20; ++k) {
    num = num * 10 + static_cast<unsigned>(p.fraction[k] - '0');
    den *= 10;
  }
  bytes += num * mult / den;
  if (bytes > kMax) throw Invalid(text, "too large");
  return static_cast<uint64_t>(bytes);
}

uint64_t BytesToGiBRoundedUp(uint64_t bytes) { return bytes / kGiB + (bytes % kGiB != 0); }

uint64_t SpaceRequiredGiB(std::string_view text) {
  return BytesToGiBRoundedUp(ParseSpaceRequired(text));
}

uint64_t ParseConfigMapSpaceRequired(std::string_view text) {
  const std::string_view s = Trim(text);
  const bool bare_integer =
      !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  if (!bare_integer) return ParseSpaceRequired(text);
  const uint64_t gib = ParseSpaceRequired(s);
  if (gib > std::numeric_limits<uint64_t>::max() / kGiB) {
    throw Invalid(text, "too large (the ConfigMap value is a count of GiB)");
  }
  return gib * kGiB;
}

}  // namespace lca::precache
