#include "agent/cli/progress_view.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>

#include "agent/api/conditions.hpp"
#include "common/bytes.hpp"

namespace lca::cli {
namespace {

std::optional<uint64_t> Count(const std::vector<metrics::ParsedSample>& samples, const char* name) {
  const auto v = metrics::FindSample(samples, name);
  if (!v || !std::isfinite(*v) || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

// The share done: bytes when their total is known, else images.
std::optional<double> Fraction(const ProgressState& s) {
  if (s.bytes_done && s.bytes_total && *s.bytes_total > 0)
    return std::min(1.0, static_cast<double>(*s.bytes_done) / static_cast<double>(*s.bytes_total));
  if (s.images_done && s.images_total && *s.images_total > 0)
    return std::min(1.0,
                    static_cast<double>(*s.images_done) / static_cast<double>(*s.images_total));
  return std::nullopt;
}

std::optional<std::chrono::seconds> Eta(const ProgressState& s, std::optional<double> rate) {
  if (!rate || *rate <= 0 || !s.bytes_done || !s.bytes_total || *s.bytes_total == 0)
    return std::nullopt;
  const double left = static_cast<double>(*s.bytes_total) - static_cast<double>(*s.bytes_done);
  if (left <= 0) return std::chrono::seconds(0);
  return std::chrono::seconds(static_cast<int64_t>(std::ceil(left / *rate)));
}

std::string Head(const ProgressState& s) {
  std::string head = s.phase.empty() ? s.stage : s.stage + "/" + s.phase;
  if (!s.step.empty()) head += " step " + s.step;
  return head;
}

std::string Percent(double f) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%3d%%", static_cast<int>(std::floor(f * 100)));
  return buf;
}

// Cut to `width` columns (ASCII assumed for our own text; a message is cut by bytes).
std::string Fit(std::string text, size_t width) {
  if (text.size() <= width) return text;
  if (width <= 3) return text.substr(0, width);
  return text.substr(0, width - 3) + "...";
}

std::string Images(const ProgressState& s) {
  return std::to_string(*s.images_done) + "/" + std::to_string(*s.images_total) + " images";
}
std::string BytesPair(const ProgressState& s) {
  return HumanBytes(*s.bytes_done) + "/" +
         (s.bytes_total && *s.bytes_total > 0 ? HumanBytes(*s.bytes_total) : std::string("?"));
}

}  // namespace

ProgressState ProgressFromObject(const api::ImageBasedUpgrade& ibu,
                                 const std::vector<metrics::ParsedSample>& samples) {
  ProgressState s;
  s.stage = std::string(api::StageName(ibu.spec.stage));
  if (!ibu.status) return s;
  const auto& st = *ibu.status;
  if (!st.conditions.empty()) {
    s.state = st.conditions.back().reason;
    s.message = st.conditions.back().message;
  }
  for (const auto& c : st.conditions) {
    if (c.status == api::kTrue &&
        (c.reason == api::reason::kInProgress || c.reason == api::reason::kAborting ||
         c.reason == api::reason::kFinalizing)) {
      s.active = true;
    }
  }
  for (const auto& h : st.history) {
    if (h.stage != ibu.spec.stage) continue;
    for (const auto& ph : h.phases) {
      if (ph.start_time && !ph.completion_time) s.phase = ph.phase;
    }
  }
  if (!s.active) return s;
  for (const auto& sample : samples) {
    if (sample.name == "lca_step" && sample.value == 1 && sample.labels.count("step") != 0) {
      s.step = sample.labels.at("step");
    }
  }
  if (s.phase == "Precache") {
    s.images_done = Count(samples, "lca_precache_images_done");
    s.images_total = Count(samples, "lca_precache_images_total");
    s.bytes_done = Count(samples, "lca_precache_bytes_done");
    s.bytes_total = Count(samples, "lca_precache_bytes_total");
  } else if (s.phase == "Stateroot") {
    s.bytes_done = Count(samples, "lca_prep_bytes_done");
    s.bytes_total = Count(samples, "lca_prep_bytes_total");
  }
  if (s.bytes_done && *s.bytes_done == 0 && s.bytes_total && *s.bytes_total == 0) {
    s.bytes_done.reset();  // nothing reported yet: no "0 B/?" noise
    s.bytes_total.reset();
  }
  return s;
}

void RateMeter::Add(std::chrono::steady_clock::time_point t, uint64_t bytes) {
  if (!samples_.empty() && bytes < samples_.back().second) samples_.clear();
  samples_.emplace_back(t, bytes);
  while (samples_.size() > 2 && t - samples_.front().first > window_) samples_.pop_front();
}

std::optional<double> RateMeter::BytesPerSecond() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto dt = std::chrono::duration<double>(samples_.back().first - samples_.front().first);
  if (dt.count() < 1.0) return std::nullopt;
  return static_cast<double>(samples_.back().second - samples_.front().second) / dt.count();
}

std::string HumanBytes(uint64_t n) { return FormatBytes(n); }

std::string FormatProgressBar(const ProgressState& s, std::optional<double> rate, int width) {
  const size_t usable = static_cast<size_t>(std::max(width, 20) - 1);
  const std::string head = Head(s);
  const auto fraction = Fraction(s);
  if (!fraction) {
    std::string line = head + " " + s.state;
    if (!s.message.empty()) line += ": " + s.message;
    return Fit(line, usable);
  }
  std::vector<std::string> fields;
  if (s.images_done && s.images_total) fields.push_back(Images(s));
  if (s.bytes_done) fields.push_back(BytesPair(s));
  if (rate) fields.push_back(HumanBytes(static_cast<uint64_t>(*rate)) + "/s");
  if (const auto eta = Eta(s, rate)) fields.push_back("ETA " + FormatDuration(*eta));
  const std::string pct = Percent(*fraction);
  for (size_t keep = fields.size() + 1; keep-- > 0;) {
    std::string tail;
    for (size_t i = 0; i < keep; ++i) tail += "  " + fields[i];
    const size_t fixed = head.size() + 1 + 2 + 1 + pct.size() + tail.size();
    if (fixed + 10 > usable) continue;
    const size_t bar = std::min<size_t>(40, usable - fixed);
    const auto filled = static_cast<size_t>(std::floor(*fraction * static_cast<double>(bar)));
    return head + " [" + std::string(filled, '#') + std::string(bar - filled, '.') + "] " + pct +
           tail;
  }
  return Fit(head + " " + pct, usable);
}

std::string FormatProgressLine(const ProgressState& s, std::optional<double> rate, TimePoint now) {
  std::string line = FormatTime(now) + " " + Head(s) + " " + s.state;
  if (const auto f = Fraction(s)) {
    std::string pct = Percent(*f);
    pct.erase(0, pct.find_first_not_of(' '));
    line += " " + pct;
  }
  if (s.images_done && s.images_total)
    line += " images " + std::to_string(*s.images_done) + "/" + std::to_string(*s.images_total);
  if (s.bytes_done) line += " bytes " + BytesPair(s);
  if (rate) line += " " + HumanBytes(static_cast<uint64_t>(*rate)) + "/s";
  if (const auto eta = Eta(s, rate)) line += " ETA " + FormatDuration(*eta);
  if (!s.message.empty()) line += ": " + s.message;
  return line;
}

ProgressPrinter::ProgressPrinter(std::ostream& out, bool terminal, int width)
    : out_(out), terminal_(terminal), width_(width) {}

void ProgressPrinter::Update(const ProgressState& s, TimePoint wall,
                             std::chrono::steady_clock::time_point mono) {
  if (s.phase != rate_phase_) {
    rate_ = RateMeter();
    rate_phase_ = s.phase;
  }
  if (s.bytes_done) rate_.Add(mono, *s.bytes_done);
  const auto rate = rate_.BytesPerSecond();
  if (terminal_) {
    out_ << '\r' << FormatProgressBar(s, rate, width_) << "\x1b[K" << std::flush;
    drawn_ = true;
    return;
  }
  // A line when the stage, phase, state, image count or the tenth of the bytes changes, or the
  // message changes in words (its digits are progress the counters already show).
  std::string key = s.stage + "|" + s.phase + "|" + s.step + "|" + s.state + "|";
  for (char c : s.message) {
    if (c < '0' || c > '9') key += c;
  }
  if (s.images_done) key += "|i" + std::to_string(*s.images_done);
  if (s.bytes_done && s.bytes_total && *s.bytes_total > 0)
    key += "|b" + std::to_string(*s.bytes_done * 10 / *s.bytes_total);
  if (last_key_ && *last_key_ == key) return;
  last_key_ = key;
  out_ << FormatProgressLine(s, rate, wall) << "\n" << std::flush;
}

void ProgressPrinter::Finish() {
  if (terminal_ && drawn_) out_ << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

int TerminalWidth(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 80;
}

}  // namespace lca::cli
