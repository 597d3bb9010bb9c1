#pragma once
// Standard base64 (RFC 4648, with padding): the `auth` field of a dockerconfigjson and HTTP Basic
// credentials.
#include <string>

namespace lca {

std::string Base64Encode(const std::string& in);

// Accepts padded or unpadded input and ignores CR/LF (auth files written by hand wrap lines).
// Throws lca::Error(kInvalid, "not base64: …") on any other character outside the alphabet.
std::string Base64Decode(const std::string& in);

}  // namespace lca
