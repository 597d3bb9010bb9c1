#include "common/failpoint.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "common/error.hpp"

namespace lca {
namespace {

struct Armed {
  std::string action;  // "error", "crash", "sleep(ms)"
  int on_hit = 0;      // 0: every hit; N: only the N-th
  int hits = 0;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Armed, std::less<>> points;
  bool loaded = false;
};

Registry& Reg() {
  static Registry r;
  return r;
}

Armed Parse(std::string_view name, std::string_view spec) {
  Armed a;
  if (auto star = spec.find('*'); star != std::string_view::npos) {
    a.on_hit = std::atoi(std::string(spec.substr(0, star)).c_str());
    spec.remove_prefix(star + 1);
  }
  a.action = std::string(spec);
  if (a.action != "error" && a.action != "crash" && a.action.rfind("sleep(", 0) != 0) {
    throw Error(Errc::kInvalid, "LCA_FAILPOINTS: unknown action '" + a.action + "' for '" +
                                    std::string(name) + "' (use error, crash or sleep(ms))");
  }
  return a;
}

void LoadLocked(Registry& r) {
  r.points.clear();
  r.loaded = true;
  const char* env = std::getenv("LCA_FAILPOINTS");
  if (env == nullptr) return;
  std::string_view rest(env);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw Error(Errc::kInvalid, "LCA_FAILPOINTS: '" + std::string(item) + "' is not name=action");
    }
    std::string_view name = item.substr(0, eq);
    r.points[std::string(name)] = Parse(name, item.substr(eq + 1));
  }
}

}  // namespace

void ReloadFailpoints() {
  Registry& r = Reg();
  std::lock_guard lock(r.mu);
  LoadLocked(r);
}

void SetFailpoint(std::string_view name, std::string_view action) {
  Registry& r = Reg();
  std::lock_guard lock(r.mu);
  if (!r.loaded) LoadLocked(r);
  if (action.empty()) {
    r.points.erase(std::string(name));
  } else {
    r.points[std::string(name)] = Parse(name, action);
  }
}

void HitFailpoint(std::string_view name) {
  Registry& r = Reg();
  std::string action;
  {
    std::lock_guard lock(r.mu);
    if (!r.loaded) LoadLocked(r);
    if (r.points.empty()) return;
    auto it = r.points.find(name);
    if (it == r.points.end()) return;
    Armed& a = it->second;
    ++a.hits;
    if (a.on_hit != 0 && a.hits != a.on_hit) return;
    action = a.action;
  }
  if (action == "crash") {
    // _exit, not abort: no core dump noise, no atexit handlers, no flushing of buffers, which
    // is what a SIGKILL or power loss leaves behind.
    ::_exit(137);
  }
  if (action == "error") {
    throw Error(Errc::kInternal, "failpoint " + std::string(name));
  }
  const int ms = std::atoi(action.c_str() + 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace lca
