#pragma once
// Progress for people (`lcactl wait`, `lcactl status --watch`): a one-line bar redrawn in place
// on a terminal (stage/phase, images, bytes, rate, ETA), plain timestamped lines otherwise,
// printed only when something a reader cares about changed. The formatting is pure (state,
// width and clock in, text out) so it is tested with exact strings.
#include <chrono>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "agent/api/ibu.hpp"
#include "agent/metrics/exposition.hpp"

namespace lca::cli {

struct ProgressState {
  std::string stage;    // spec.stage: "Prep"
  std::string phase;    // the running phase from status.history ("Stateroot", "Precache") or ""
  std::string step;     // the journaled host step running (lca_step): "prep.stateroot.import"
  std::string state;    // reason of the newest condition: "InProgress", "Completed", ...
  std::string message;  // its message
  bool active = false;  // some stage's work is in progress
  std::optional<uint64_t> images_done, images_total;
  std::optional<uint64_t> bytes_done, bytes_total;
  bool operator==(const ProgressState&) const = default;
};

// The object plus the daemon's /metrics samples (empty when unavailable: no numbers then).
ProgressState ProgressFromObject(const api::ImageBasedUpgrade& ibu,
                                 const std::vector<metrics::ParsedSample>& samples);

// Bytes per second over the last `window`, from (time, bytes done) samples. Starts over when
// the count goes down (the next phase counts its own bytes).
class RateMeter {
 public:
  explicit RateMeter(std::chrono::seconds window = std::chrono::seconds(10)) : window_(window) {}
  void Add(std::chrono::steady_clock::time_point t, uint64_t bytes);
  // nullopt until the samples span at least a second.
  std::optional<double> BytesPerSecond() const;

 private:
  std::chrono::seconds window_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> samples_;
};

// "1.5 KiB", "12.0 MiB", "512 B".
std::string HumanBytes(uint64_t n);

// The terminal line, at most width-1 columns (the last column would wrap on some terminals);
// fields are dropped from the right (ETA, rate, bytes, images) before the bar shrinks below 10.
std::string FormatProgressBar(const ProgressState& s, std::optional<double> rate, int width);
// The non-terminal line: "<RFC 3339 time> <stage>[/<phase>][ step <step>] <state>[ <pct>%]
// [ images D/T][ bytes D/T][ <rate>/s][ ETA <d>][: <message>]". The bar starts the same way.
std::string FormatProgressLine(const ProgressState& s, std::optional<double> rate, TimePoint now);

class ProgressPrinter {
 public:
  // terminal: redraw one line with '\r'; otherwise print a line when something changes.
  ProgressPrinter(std::ostream& out, bool terminal, int width);
  void Update(const ProgressState& s, TimePoint wall, std::chrono::steady_clock::time_point mono);
  // On a terminal, clears the bar so what follows starts on a clean line.
  void Finish();

 private:
  std::ostream& out_;
  bool terminal_;
  int width_;
  bool drawn_ = false;
  std::optional<std::string> last_key_;
  RateMeter rate_;
  std::string rate_phase_;
};

// Columns of the terminal on `fd` (TIOCGWINSZ), else $COLUMNS, else 80.
int TerminalWidth(int fd);

}  // namespace lca::cli
