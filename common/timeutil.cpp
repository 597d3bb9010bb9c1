#include "common/timeutil.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "common/error.hpp"

namespace lca {

TimePoint Now() { return std::chrono::time_point_cast<std::chrono::seconds>(Clock::now()); }

std::string FormatTime(TimePoint t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

TimePoint ParseTime(std::string_view text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail[16] = {0};
  std::string str(text);
  int n = std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%15s", &y, &mo, &d, &h, &mi, &s, tail);
  // Fractions and offsets other than Z are not produced by Kubernetes for metav1.Time.
  if (n < 6 || (n == 7 && std::string(tail) != "Z")) {
    throw Error(Errc::kInvalid,
                "'" + str + "' is not an RFC 3339 UTC time like 2024-01-31T10:00:00Z");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return TimePoint(std::chrono::seconds(timegm(&tm)));
}

std::string FormatDuration(std::chrono::seconds d) {
  long long total = d.count();
  std::string out;
  if (total < 0) {
    // push_back, not `out = "-"`: g++ 12 -O2 reports a false -Wrestrict on the latter.
    out.push_back('-');
    total = -total;
  }
  const long long h = total / 3600, m = (total % 3600) / 60, s = total % 60;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s) + "s";
  return out;
}

std::chrono::milliseconds ParseDuration(std::string_view text) {
  const std::string str(text);
  auto bad = [&] {
    return Error(Errc::kInvalid, "invalid duration '" + str + "' (examples: 90s, 5m, 1h30m, 2h)");
  };
  if (str.empty()) throw bad();
  double total_ms = 0;
  size_t i = 0;
  bool bare = true;
  while (i < str.size()) {
    size_t j = i;
    int digits = 0, dots = 0;
    for (; j < str.size(); ++j) {
      if (std::isdigit(static_cast<unsigned char>(str[j]))) {
        ++digits;
      } else if (str[j] == '.') {
        ++dots;
      } else {
        break;
      }
    }
    // Like Go: ".5" and "5." are numbers, "." and "1.2.3" are not (std::stod would throw on
    // the first and silently stop at the second '.').
    if (digits == 0 || dots > 1) throw bad();
    double num = 0;
    try {
      num = std::stod(str.substr(i, j - i));
    } catch (const std::out_of_range&) {  // hundreds of digits
      throw bad();
    }
    size_t k = j;
    while (k < str.size() && std::isalpha(static_cast<unsigned char>(str[k]))) ++k;
    const std::string unit = str.substr(j, k - j);
    double scale = 0;
    if (unit.empty()) {
      if (k != str.size() || !bare) throw bad();
      scale = 1000;
    } else if (unit == "h") {
      scale = 3600e3;
    } else if (unit == "m") {
      scale = 60e3;
    } else if (unit == "s") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "us") {
      scale = 1e-3;
    } else if (unit == "ns") {
      scale = 1e-6;
    } else {
      throw bad();
    }
    bare = false;
    total_ms += num * scale;
    i = k;
  }
  // Beyond what a long long of milliseconds holds (about 292 million years) llround is undefined.
  if (!(total_ms < 9.2e18)) throw bad();
  return std::chrono::milliseconds(static_cast<long long>(std::llround(total_ms)));
}

std::string FormatAge(std::chrono::seconds age) {
  long long s = age.count() < 0 ? 0 : age.count();
  if (s < 120) return std::to_string(s) + "s";
  if (s < 3600 * 3) return std::to_string(s / 60) + "m";
  if (s < 86400 * 2) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

}  // namespace lca
