#pragma once
// TALM's standalone pre-cache job, run on the node (`lcactl precache --config DIR`): the
// `pre-cache-spec` ConfigMap keys as files in DIR (reference-talm-spoke §1.2), the image list
// from the release image, the operator catalogs and additionalImages, the space checks, the
// pulls, and TALM's states in a status file and the exit code.
//
// Where it differs from TALM's scripts (on purpose): the space check also runs for operator-only
// runs and also counts the bytes the registry says the images need; the last line of every
// list counts without a trailing newline; empty lines never abort; no files are left in /tmp;
// a pre-cache deadline of our own gives PrecacheTimeout without relying on the Job's
// activeDeadlineSeconds; the release image is read from a scratch layout, not pulled into
// containers-storage.
#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/progress.hpp"

namespace lca::precache {

enum class JobState {
  kNotStarted,
  kPreparingToStart,
  kStarting,
  kActive,
  kSucceeded,
  kPrecacheTimeout,
  kUnrecoverableError,
};
std::string_view JobStateName(JobState s);

// Exit codes: TALM's job has 0 and "non-zero"; the hub tells a timeout by the Job's deadline.
// Ours are distinct so a caller without a Job can tell them apart.
inline constexpr int kJobExitSucceeded = 0;
inline constexpr int kJobExitUnrecoverable = 1;
inline constexpr int kJobExitTimeout = 3;
int JobExitCode(JobState s);

// The ConfigMap keys, read from files named after them; a missing file is an empty value.
struct JobSpec {
  std::string platform_image;
  std::vector<std::string> indexes;  // distinct, sorted (as `sort -u`)
  std::string packages_and_channels;
  std::string exclude_patterns;
  std::string additional_images;
  std::string space_required;  // "" = none
};
// Throws kInvalid naming the file for unreadable files, a platform.image with more than one
// line, or an inconsistent spec (indexes without packages, packages without indexes, or nothing
// to pre-cache at all).
JobSpec ReadJobSpec(const std::filesystem::path& dir);

struct JobOptions {
  std::filesystem::path config_dir;
  std::filesystem::path status_file = "/var/lib/lca/precache-job/status.json";
  std::filesystem::path work_dir = "/var/lib/lca/precache-job";  // scratch (release, index)
  PodmanConfig podman;
  // Pull secret; TALM uses the kubelet's. Missing file = anonymous pulls (logged).
  std::filesystem::path authfile = "/var/lib/kubelet/config.json";
  std::optional<std::filesystem::path> registries_conf;  // for skopeo; podman uses podman's
  size_t concurrency = 10;
  int attempts = 5;
  std::chrono::milliseconds backoff{1000};
  std::chrono::seconds timeout{std::chrono::minutes(240)};  // TALM's default CGU timeout
  bool best_effort = false;
  double expansion = 2.5;
  int gc_high_threshold_percent = 85;
};

struct JobOutcome {
  JobState state = JobState::kNotStarted;
  std::string message;
  PrecacheStatus counts;
  std::vector<std::string> images;  // the final list
};

// Runs the job; never throws for job failures (they are the outcome). Writes the status file at
// every state change and as images finish:
//   {"state":"Active","message":"...","total":N,"pulled":P,"failed":F,"failed_pulls":[...]}
// and logs TALM's lines to `log`: "upgrades.pre-cache <date -Iseconds> [INFO]: <message>".
JobOutcome RunPrecacheJob(ProcessRunner& runner, const JobOptions& opts, std::ostream& log);

}  // namespace lca::precache
