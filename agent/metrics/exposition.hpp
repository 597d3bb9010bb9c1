#pragma once
// Prometheus text exposition format 0.0.4 (what Prometheus scrapes): a writer that emits each
// family's HELP and TYPE once, before its samples, with label values and help text escaped as
// the format requires, and a reader for the samples (lcactl reads the daemon's /metrics).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lca::metrics {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::vector<std::pair<std::string, std::string>>;

class ExpositionWriter {
 public:
  // type: gauge | counter | untyped. Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (kInternal
  // otherwise: names are ours, not input). A family with no samples prints nothing.
  void Family(std::string name, std::string type, std::string help);
  // A sample of the family declared last.
  void Sample(const Labels& labels, double value);
  std::string Text() const;

 private:
  struct Fam {
    std::string name, type, help;
    std::vector<std::string> samples;
  };
  std::vector<Fam> families_;
};

// Label value escaping: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view v);
// HELP escaping: backslash and newline.
std::string EscapeHelp(std::string_view v);
// Values as the format spells them: integers without a fraction, NaN, +Inf, -Inf.
std::string FormatValue(double v);

struct ParsedSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
// The samples of an exposition (comments and blank lines skipped). A malformed line is
// lca::Error kInvalid naming the line number.
std::vector<ParsedSample> ParseExposition(std::string_view text);
// The value of the first sample named `name` whose labels include `match`.
std::optional<double> FindSample(const std::vector<ParsedSample>& samples, std::string_view name,
                                 const std::map<std::string, std::string>& match = {});

}  // namespace lca::metrics
