#include "agent/metrics/exposition.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/error.hpp"

namespace lca::metrics {
namespace {

bool ValidName(std::string_view n, bool label) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void ExpositionWriter::Family(std::string name, std::string type, std::string help) {
  if (!ValidName(name, false)) throw Error(Errc::kInternal, "metric name '" + name + "'");
  if (type != "gauge" && type != "counter" && type != "untyped")
    throw Error(Errc::kInternal, "metric type '" + type + "'");
  families_.push_back(Fam{std::move(name), std::move(type), std::move(help), {}});
}

void ExpositionWriter::Sample(const Labels& labels, double value) {
  if (families_.empty()) throw Error(Errc::kInternal, "metric sample before its family");
  Fam& f = families_.back();
  std::string line = f.name;
  if (!labels.empty()) {
    line += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!ValidName(k, true) || k.rfind("__", 0) == 0)
        throw Error(Errc::kInternal, "label name '" + k + "'");
      if (!first) line += ',';
      first = false;
      line += k + "=\"" + EscapeLabelValue(v) + "\"";
    }
    line += '}';
  }
  line += ' ' + FormatValue(value);
  f.samples.push_back(std::move(line));
}

std::string ExpositionWriter::Text() const {
  std::string out;
  for (const auto& f : families_) {
    if (f.samples.empty()) continue;
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const auto& s : f.samples) out += s + "\n";
  }
  return out;
}

std::vector<ParsedSample> ParseExposition(std::string_view text) {
  std::vector<ParsedSample> out;
  size_t lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      return Error(Errc::kInvalid, "metrics line " + std::to_string(lineno) + ": " + why + ": " +
                                       std::string(line));
    };
    ParsedSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (!ValidName(s.name, false)) throw bad("bad metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string_view::npos) throw bad("label without '='");
        std::string key(line.substr(i, eq - i));
        if (!ValidName(key, true)) throw bad("bad label name");
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') throw bad("label value not quoted");
        ++i;
        std::string value;
        for (;;) {
          if (i >= line.size()) throw bad("unterminated label value");
          const char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) throw bad("dangling escape");
            const char e = line[i++];
            if (e == 'n') {
              value += '\n';
            } else if (e == '\\' || e == '"') {
              value += e;
            } else {
              throw bad("bad escape");
            }
          } else {
            value += c;
          }
        }
        s.labels[key] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) throw bad("unterminated label set");
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') throw bad("no value");
    const std::string value(line.substr(i + 1));
    const std::string first = value.substr(0, value.find(' '));  // an optional timestamp follows
    if (first == "NaN") {
      s.value = std::nan("");
    } else if (first == "+Inf") {
      s.value = INFINITY;
    } else if (first == "-Inf") {
      s.value = -INFINITY;
    } else {
      char* endp = nullptr;
      s.value = std::strtod(first.c_str(), &endp);
      if (first.empty() || endp == nullptr || *endp != '\0') throw bad("bad value");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<double> FindSample(const std::vector<ParsedSample>& samples, std::string_view name,
                                 const std::map<std::string, std::string>& match) {
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        ok = false;
        break;
      }
    }
    if (ok) return s.value;
  }
  return std::nullopt;
}

}  // namespace lca::metrics
