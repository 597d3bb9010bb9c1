#include "agent/metrics/progress.hpp"

#include <mutex>

namespace lca::metrics {
namespace {

std::mutex mu;
ProgressSnapshot state;

}  // namespace

void ReportPrepBytesTotal(uint64_t total) {
  std::lock_guard lock(mu);
  state.prep_bytes_total = total;
  state.prep_reported = true;
}

void ReportPrepBytesDone(uint64_t done) {
  std::lock_guard lock(mu);
  state.prep_bytes_done = done;
  state.prep_reported = true;
}

void ReportPrecacheBytes(uint64_t done, uint64_t total) {
  std::lock_guard lock(mu);
  state.precache_bytes_done = done;
  state.precache_bytes_total = total;
  state.precache_reported = true;
}

void ReportStepDone(const std::string& step, double seconds) {
  std::lock_guard lock(mu);
  state.step_seconds[step] = seconds;
}

ProgressSnapshot Progress() {
  std::lock_guard lock(mu);
  return state;
}

void ResetProgress() {
  std::lock_guard lock(mu);
  state = ProgressSnapshot{};
}

}  // namespace lca::metrics
