#pragma once
// JSON is the model's native form (nlohmann_json); YAML is a rendering of it and an input
// format for manifests. Conversions keep types: a YAML string "4.15" stays a string.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace lca {

using Json = nlohmann::ordered_json;

// Parses JSON; on failure throws lca::Error kInvalid "<what>: <parser message>".
Json ParseJson(std::string_view text, std::string_view what);

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
