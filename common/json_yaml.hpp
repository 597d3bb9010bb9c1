#pragma once
// JSON is the model's native form (nlohmann_json); YAML is a rendering of it and an input
// format for manifests. Conversions keep types: a YAML string "4.15" stays a string.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lca {

using Json = nlohmann::ordered_json;

// How deeply arrays and objects may nest in JSON we parse. The object is 5 levels deep and the
// seed's and registries' documents about 10; nlohmann_json copies, compares, merges and prints
// recursively, so a body nested 100,000 deep would overflow the stack long after parsing.
inline constexpr std::size_t kMaxJsonDepth = 100;

// Refuses (lca::Error kInvalid "<what>: invalid JSON: nested deeper than 100 levels") text
// nesting deeper than kMaxJsonDepth, in one linear pass that skips strings.
void CheckJsonDepth(std::string_view text, std::string_view what);

// Parses JSON (after CheckJsonDepth); on any failure, syntax, encoding (invalid UTF-8) or a
// number out of range (1e99999), throws lca::Error kInvalid "<what>: invalid JSON: <message>".
// The message is printable UTF-8, at most a few hundred bytes, without the library's
// "[json.exception...]" tag.
Json ParseJson(std::string_view text, std::string_view what);

// A nlohmann_json exception's what() as a message for people: JsonErrorMessage above.
std::string JsonErrorMessage(std::string_view library_message);

// YAML text (one document) -> JSON. Plain scalars are typed the YAML 1.2 core-schema way
// (null, true/false, integers, floats); quoted scalars are always strings.
Json ParseYaml(std::string_view text, std::string_view what);

// All documents of a multi-document YAML stream.
std::vector<Json> ParseYamlDocuments(std::string_view text, std::string_view what);

// JSON -> block-style YAML. Strings that a YAML reader would type differently (numbers, booleans,
// "null", empty, leading/trailing space, special characters) are quoted.
std::string ToYaml(const Json& value);

// Pretty JSON with 2-space indent and a trailing newline, the form stored on disk.
std::string ToPrettyJson(const Json& value);

}  // namespace lca
