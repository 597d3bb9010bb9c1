#include "common/json_yaml.hpp"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "common/error.hpp"

namespace lca {
namespace {

// YAML 1.2 core schema scalars (what Kubernetes' YAML reader uses for plain scalars).
const std::regex kInt(R"([-+]?[0-9]+)");
const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
const std::regex kNull(R"(~|null|Null|NULL)");
const std::regex kTrue(R"(true|True|TRUE)");
const std::regex kFalse(R"(false|False|FALSE)");

Json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  // yaml-cpp tags quoted scalars "!" and plain ones "?": only plain scalars get typed.
  if (node.Tag() == "!") return s;
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kTrue)) return true;
  if (std::regex_match(s, kFalse)) return false;
  if (std::regex_match(s, kInt)) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return s;
}

Json NodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    case YAML::NodeType::Sequence: {
      Json arr = Json::array();
      for (const auto& item : node) arr.push_back(NodeToJson(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      Json obj = Json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = NodeToJson(kv.second);
      return obj;
    }
  }
  return nullptr;
}

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  if (std::regex_match(s, kNull) || std::regex_match(s, kTrue) || std::regex_match(s, kFalse) ||
      std::regex_match(s, kInt) || std::regex_match(s, kFloat)) {
    return true;
  }
  // YAML 1.1 readers also take these as booleans.
  static const std::regex kYaml11Bool(R"(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)");
  if (std::regex_match(s, kYaml11Bool)) return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  static const std::string kLeadIndicators = "-?:,[]{}#&*!|>'\"%@`";
  if (kLeadIndicators.find(s.front()) != std::string::npos) return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  if (s.back() == ':') return true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

void Emit(YAML::Emitter& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [k, item] : v.items()) {
        out << YAML::Key << k << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case Json::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : v) Emit(out, item);
      out << YAML::EndSeq;
      return;
    case Json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      return;
    }
    case Json::value_t::boolean:
      out << (v.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::null:
      out << YAML::Null;
      return;
    default:
      out << v.dump();  // numbers: JSON and YAML spell them the same
      return;
  }
}

}  // namespace

Json ParseJson(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error while
    // parsing value - ...": the position and the cause, without the library's tag.
    std::string detail = e.what();
    if (const auto at = detail.find(" at line "); at != std::string::npos) {
      detail = detail.substr(at + 1);
    } else if (const auto pe = detail.find("parse error"); pe != std::string::npos) {
      detail = "at byte " + std::to_string(e.byte) + detail.substr(pe + 11);
    }
    throw Error(Errc::kInvalid, std::string(what) + ": invalid JSON " + detail);
  }
}

Json ParseYaml(std::string_view text, std::string_view what) {
  try {
    return NodeToJson(YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    throw Error(Errc::kInvalid, std::string(what) + ": invalid YAML: " + e.what());
  }
}

std::vector<Json> ParseYamlDocuments(std::string_view text, std::string_view what) {
  try {
    std::vector<Json> docs;
    for (const auto& node : YAML::LoadAll(std::string(text))) {
      if (node.IsNull()) continue;  // "---" separators around nothing
      docs.push_back(NodeToJson(node));
    }
    return docs;
  } catch (const YAML::Exception& e) {
    throw Error(Errc::kInvalid, std::string(what) + ": invalid YAML: " + e.what());
  }
}

std::string ToYaml(const Json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  Emit(out, value);
  std::string s = out.c_str();
  if (s.empty() || s.back() != '\n') s += '\n';
  return s;
}

std::string ToPrettyJson(const Json& value) { return value.dump(2) + "\n"; }

}  // namespace lca
