#pragma once
// Live progress the stage handlers report, for /metrics and lcactl's progress bar. The object's
// condition message says the same in words (and is throttled to not turn the object into a
// log); these are the numbers, updated on every callback. Process-wide: a daemon runs one
// upgrade at a time.
#include <cstdint>
#include <map>
#include <string>

namespace lca::metrics {

struct ProgressSnapshot {
  uint64_t prep_bytes_done = 0;       // bytes the seed extraction has written
  uint64_t prep_bytes_total = 0;      // 0 (unknown) until the extraction is done, then exact
  uint64_t precache_bytes_done = 0;   // downloaded by the pre-cache pulls
  uint64_t precache_bytes_total = 0;  // to download (from the registry manifests)
  bool prep_reported = false;         // anything reported for the stateroot phase
  bool precache_reported = false;     // anything reported for the pre-cache phase
  // The journaled steps finished in this daemon's life: name -> seconds of its last run.
  std::map<std::string, double> step_seconds;
};

void ReportPrepBytesTotal(uint64_t total);
void ReportPrepBytesDone(uint64_t done);
void ReportPrecacheBytes(uint64_t done, uint64_t total);
// A journaled step finished (common/step_runner.hpp) after `seconds`.
void ReportStepDone(const std::string& step, double seconds);
ProgressSnapshot Progress();
// Back to nothing reported (a new Prep; tests).
void ResetProgress();

}  // namespace lca::metrics
