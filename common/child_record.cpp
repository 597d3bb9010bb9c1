#include "common/child_record.hpp"

#include <dirent.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

namespace lca {
namespace {

struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t pgrp = 0;
  unsigned long long start = 0;  // clock ticks since boot
};

struct Record {
  pid_t pgid = 0;
  unsigned long long start = 0;
  std::string boot_id;
  std::string command;
};

std::optional<ProcStat> ReadStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name in parentheses may hold spaces and ')': the fields start after the last.
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(paren + 1));
  ProcStat st;
  st.pid = pid;
  std::string skip;
  fields >> st.state >> skip >> st.pgrp;            // fields 3-5
  for (int i = 6; i < 22 && fields >> skip; ++i) {  // fields 6-21
  }
  fields >> st.start;  // field 22
  if (!fields) return std::nullopt;
  return st;
}

std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::vector<ProcStat> AllProcesses() {
  std::vector<ProcStat> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (auto st = ReadStat(static_cast<pid_t>(pid))) out.push_back(*st);
  }
  ::closedir(d);
  return out;
}

// The live (non-zombie) processes of the recorded group, when it is provably the recorded one.
std::vector<pid_t> GroupMembers(const Record& r, const std::vector<ProcStat>& all) {
  std::vector<pid_t> members;
  for (const ProcStat& p : all) {
    if (p.pgrp != r.pgid || p.state == 'Z') continue;
    if (p.pid == r.pgid) {
      if (p.start != r.start) return {};  // the pid now leads somebody else's group
    } else if (p.start < r.start) {
      return {};  // older than our leader: not a group our child started
    }
    members.push_back(p.pid);
  }
  return members;
}

std::vector<Record> ReadRecords(const std::filesystem::path& file) {
  std::vector<Record> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Record r;
    if (fields >> r.pgid >> r.start >> r.boot_id >> r.command && r.pgid > 1) out.push_back(r);
  }
  return out;
}

class Recorder {
 public:
  void SetFile(const std::filesystem::path& file) {
    std::lock_guard lk(mu_);
    file_ = file;
    live_.clear();
    boot_id_ = BootId();
  }

  void Started(pid_t pgid, const std::string& command) {
    std::lock_guard lk(mu_);
    if (file_.empty()) return;
    const auto st = ReadStat(pgid);
    if (!st) return;  // already gone: nothing can be left of it
    std::string name = std::filesystem::path(command).filename().string();
    for (char& c : name) {
      if (c == ' ' || c == '\t' || c == '\n') c = '_';
    }
    live_[pgid] = std::to_string(pgid) + " " + std::to_string(st->start) + " " + boot_id_ + " " +
                  (name.empty() ? "?" : name) + "\n";
    WriteLocked();
  }

  void Ended(pid_t pgid) {
    std::lock_guard lk(mu_);
    if (file_.empty() || live_.erase(pgid) == 0) return;
    WriteLocked();
  }

 private:
  // No fsync: the file matters only while this boot lasts (a power cut ends every child too),
  // and rename keeps it whole for a daemon restarted after a kill.
  void WriteLocked() {
    std::string text;
    for (const auto& [pgid, line] : live_) text += line;
    const std::filesystem::path tmp = file_.string() + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "we");
    bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
    ok = ok && std::rename(tmp.c_str(), file_.c_str()) == 0;
    if (!ok && !warned_) {
      warned_ = true;
      spdlog::warn(
          "cannot record running children in {}: {}; a restart after a crash will "
          "not stop what they started",
          file_.string(), std::strerror(errno));
    }
  }

  std::mutex mu_;
  std::filesystem::path file_;
  std::string boot_id_;
  std::map<pid_t, std::string> live_;
  bool warned_ = false;
};

Recorder& TheRecorder() {
  static Recorder r;
  return r;
}

}  // namespace

void SetChildRecordFile(const std::filesystem::path& file) { TheRecorder().SetFile(file); }

void RecordChildStarted(pid_t pgid, const std::string& command) {
  TheRecorder().Started(pgid, command);
}

void RecordChildEnded(pid_t pgid) { TheRecorder().Ended(pgid); }

std::vector<std::string> ReapLeftoverChildren(const std::filesystem::path& file,
                                              std::chrono::milliseconds wait) {
  std::vector<std::string> killed;
  const std::string boot = BootId();
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (const Record& r : ReadRecords(file)) {
    if (r.boot_id != boot) continue;  // an earlier boot: those processes are long gone
    std::size_t count = 0;
    // Members may fork while we kill: repeat until the group is empty or time is up.
    for (;;) {
      const auto members = GroupMembers(r, AllProcesses());
      if (members.empty()) break;
      for (pid_t pid : members) ::kill(pid, SIGKILL);
      count = std::max(count, members.size());
      if (std::chrono::steady_clock::now() > deadline) {
        spdlog::warn("process group {} ({}) left by a previous lifecycle-agent is still there",
                     r.pgid, r.command);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (count > 0) {
      killed.push_back(r.command + " (process group " + std::to_string(r.pgid) + ", " +
                       std::to_string(count) + (count == 1 ? " process)" : " processes)"));
    }
  }
  std::error_code ec;
  std::filesystem::remove(file, ec);
  return killed;
}

}  // namespace lca
