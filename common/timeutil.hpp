#pragma once
// Times as Kubernetes spells them (RFC 3339, second precision, UTC) and durations as Go's
// time.Duration prints and kubectl parses them ("1m0s", "2h", "90s", "1.5h").
#include <chrono>
#include <string>
#include <string_view>

namespace lca {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::seconds>;

TimePoint Now();
std::string FormatTime(TimePoint t);            // 2026-11-22T10:03:04Z
TimePoint ParseTime(std::string_view rfc3339);  // throws lca::Error kInvalid

// Go's Duration.String() for whole seconds and above: "0s", "45s", "1m0s", "1h2m3s".
std::string FormatDuration(std::chrono::seconds d);
// kubectl's --timeout syntax: sequences of <number><unit> with units ns us ms s m h; a bare
// number means seconds. Throws lca::Error kInvalid.
std::chrono::milliseconds ParseDuration(std::string_view text);

// "5m", "3h", "2d" style age as kubectl prints it in the AGE column.
std::string FormatAge(std::chrono::seconds age);

}  // namespace lca
