#pragma once
// spaceRequired for the pre-cache (reference-talm-spoke §1.2): TALM's size syntax and its
// rounding to whole GiB.
#include <cstdint>
#include <string_view>

namespace lca::precache {

inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// TALM's unit rules (hub `parseSpaceRequired`): "<number>[ ][unit]" with the number a
// non-negative decimal (fractions allowed) and the unit, case-insensitive, one of
//   none or B                     -> bytes
//   K M G T P, with or without B  -> base 10 (KB = 1000 bytes)
//   Ki Mi Gi Ti Pi, with or without B -> base 2 (KiB = 1024 bytes)
// i.e. a value containing 'i' is base 2 and anything else base 10, and a bare number is bytes.
// Fractions of a byte are truncated. Leading and trailing whitespace is ignored.
// Throws kInvalid "spaceRequired '<text>': ..." for an empty, negative, malformed or
// out-of-range (over 2^64-1 bytes) value.
uint64_t ParseSpaceRequired(std::string_view text);

// Bytes as whole GiB, rounded up (TALM writes this count into the ConfigMap).
uint64_t BytesToGiBRoundedUp(uint64_t bytes);

// ParseSpaceRequired, then rounded up to whole GiB: the test vectors of §1.2 are in this form.
uint64_t SpaceRequiredGiB(std::string_view text);

// The value of the `spaceRequired` key of TALM's `pre-cache-spec` ConfigMap, in bytes. The hub
// has already converted the user's size into a bare decimal count of GiB ("35"), so a bare
// integer here means GiB, not bytes; a value with a unit ("35 GiB", "40 GB") is read with the
// unit rules above, for ConfigMaps written by hand or by older hubs.
uint64_t ParseConfigMapSpaceRequired(std::string_view text);

}  // namespace lca::precache
