#pragma once
// The daemon's children must not outlive it. Each child gets PR_SET_PDEATHSIG(SIGKILL) (see
// process.cpp), which covers the child itself but not what it started in turn (its process
// group: `sh -c` pipelines, podman's helpers). So the daemon also records the process group of
// every running child in a small file in its state dir, and at start kills the groups its
// predecessor left behind (after a SIGKILL, an OOM kill or a crash), before anything touches
// what those processes might still be writing.
//
// A record is "<pgid> <start time in clock ticks since boot> <boot id> <command>". A group is
// killed only when it is provably the recorded one: same boot, and either its leader is alive
// with the recorded start time, or (leader gone) its members started no earlier than the
// leader did. A pid reused by an unrelated process fails the first check.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace lca {

// Where SystemProcessRunner records its running children; empty (the default) records
// nothing. Writing the file is best-effort: PDEATHSIG already stops the direct child, so a
// full disk must not stop a command from running (a failure is logged once).
void SetChildRecordFile(const std::filesystem::path& file);

// Called by SystemProcessRunner around each child's life.
void RecordChildStarted(pid_t pgid, const std::string& command);
void RecordChildEnded(pid_t pgid);

// Kills (SIGKILL) the leftover groups recorded in `file`, waits up to `wait` for them to be
// gone, removes the file and returns one line per group killed ("skopeo (process group 123,
// 2 processes)"). Unreadable or malformed records are skipped.
std::vector<std::string> ReapLeftoverChildren(const std::filesystem::path& file,
                                              std::chrono::milliseconds wait);

}  // namespace lca
