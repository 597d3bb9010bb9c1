#include "common/json_yaml.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <initializer_list>

#include "common/error.hpp"
#include "common/text_excerpt.hpp"

namespace lca {
namespace {

// YAML 1.2 core schema scalars (what Kubernetes' YAML reader uses for plain scalars), matched by
// hand: std::regex recurses once per character and a long scalar would overflow the stack.
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Advances `i` over digits; returns how many.
std::size_t Digits(std::string_view s, std::size_t& i) {
  const std::size_t start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  return i - start;
}

std::size_t SkipSign(std::string_view s) { return !s.empty() && (s[0] == '-' || s[0] == '+'); }

// [-+]?[0-9]+
bool IsYamlInt(std::string_view s) {
  std::size_t i = SkipSign(s);
  return Digits(s, i) > 0 && i == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsYamlFloat(std::string_view s) {
  std::size_t i = SkipSign(s);
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (Digits(s, i) == 0) return false;
  } else {
    if (Digits(s, i) == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      Digits(s, i);
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (Digits(s, i) == 0) return false;
  }
  return i == s.size();
}

bool OneOf(std::string_view s, std::initializer_list<std::string_view> words) {
  for (std::string_view w : words) {
    if (s == w) return true;
  }
  return false;
}

bool IsYamlNull(std::string_view s) { return OneOf(s, {"~", "null", "Null", "NULL"}); }
bool IsYamlTrue(std::string_view s) { return OneOf(s, {"true", "True", "TRUE"}); }
bool IsYamlFalse(std::string_view s) { return OneOf(s, {"false", "False", "FALSE"}); }

Json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  // yaml-cpp tags quoted scalars "!" and plain ones "?": only plain scalars get typed.
  if (node.Tag() == "!") return s;
  if (IsYamlNull(s)) return nullptr;
  if (IsYamlTrue(s)) return true;
  if (IsYamlFalse(s)) return false;
  if (IsYamlInt(s)) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  if (IsYamlFloat(s)) {
    const double d = std::strtod(s.c_str(), nullptr);
    // JSON has no infinity: an overflowing float is a mistake in the file, not a value.
    if (!std::isfinite(d)) throw Error(Errc::kInvalid, "number out of range: " + Excerpt(s));
    return d;
  }
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
  if (IsYamlNull(s) || IsYamlTrue(s) || IsYamlFalse(s) || IsYamlInt(s) || IsYamlFloat(s)) {
    return true;
  }
  // YAML 1.1 readers also take these as booleans.
  if (OneOf(s, {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off",
                "Off", "OFF"})) {
    return true;
  }
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

void CheckJsonDepth(std::string_view text, std::string_view what) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw Error(Errc::kInvalid, std::string(what) + ": invalid JSON: nested deeper than " +
                                        std::to_string(kMaxJsonDepth) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

Json ParseJson(std::string_view text, std::string_view what) {
  CheckJsonDepth(text, what);
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error while
    // parsing value - ...": the position and the cause, without the library's tag, and as a
    // short printable excerpt (the cause may quote the bad bytes).
    std::string detail = e.what();
    if (const auto at = detail.find(" at line "); at != std::string::npos) {
      detail = detail.substr(at + 1);
    } else if (const auto pe = detail.find("parse error"); pe != std::string::npos) {
      detail = "at byte " + std::to_string(e.byte) + detail.substr(pe + 11);
    }
    throw Error(Errc::kInvalid, std::string(what) + ": invalid JSON " + Excerpt(detail, 300));
  } catch (const Json::exception& e) {
    // out_of_range for a number like 1e99999.
    throw Error(Errc::kInvalid,
                std::string(what) + ": invalid JSON: " + JsonErrorMessage(e.what()));
  }
}

std::string JsonErrorMessage(std::string_view library_message) {
  std::string_view m = library_message;
  // "[json.exception.parse_error.101] parse error at ...": the bracket is the library's, not ours.
  if (m.rfind("[json.exception.", 0) == 0) {
    if (const auto end = m.find("] "); end != std::string_view::npos) m.remove_prefix(end + 2);
  }
  return Excerpt(m, 300);
}

Json ParseYaml(std::string_view text, std::string_view what) {
  try {
    return NodeToJson(YAML::Load(std::string(text)));
  } catch (const Error& e) {
    throw Error(Errc::kInvalid, std::string(what) + ": invalid YAML: " + e.what());
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
  } catch (const Error& e) {
    throw Error(Errc::kInvalid, std::string(what) + ": invalid YAML: " + e.what());
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
