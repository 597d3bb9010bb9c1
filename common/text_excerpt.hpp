#pragma once
// Text from input (a request body, a seed file, a parser's "last read") quoted in an error
// message, a log line or an API Status: it must be valid UTF-8 (the JSON writer refuses
// anything else) and short (a 1 MiB field must not become a 1 MiB log line).
#include <cstddef>
#include <string>
#include <string_view>

namespace lca {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `s` with every byte that is not part of well-formed UTF-8, and every control character, written
// as \xNN, cut after `max_bytes` of output with "..." appended. Never splits a character.
std::string Excerpt(std::string_view s, std::size_t max_bytes = 200);

}  // namespace lca
