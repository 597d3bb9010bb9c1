#include "precache/job.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <ostream>
#include <set>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "precache/image_list.hpp"
#include "precache/puller.hpp"
#include "precache/sources.hpp"
#include "precache/space.hpp"
#include "precache/space_plan.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::precache {
namespace fs = std::filesystem;

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kNotStarted:
      return "NotStarted";
    case JobState::kPreparingToStart:
      return "PreparingToStart";
    case JobState::kStarting:
      return "Starting";
    case JobState::kActive:
      return "Active";
    case JobState::kSucceeded:
      return "Succeeded";
    case JobState::kPrecacheTimeout:
      return "PrecacheTimeout";
    case JobState::kUnrecoverableError:
      return "UnrecoverableError";
  }
  return "UnrecoverableError";
}

int JobExitCode(JobState s) {
  if (s == JobState::kSucceeded) return kJobExitSucceeded;
  if (s == JobState::kPrecacheTimeout) return kJobExitTimeout;
  return kJobExitUnrecoverable;
}

namespace {

std::string Key(const fs::path& dir, const char* key) {
  const fs::path p = dir / key;
  try {
    return ReadFileIfExists(p).value_or("");
  } catch (const std::exception& e) {
    throw Error(Errc::kInvalid, p.string() + ": " + e.what());
  }
}

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  return s;
}

class Job {
 public:
  Job(ProcessRunner& runner, const JobOptions& opts, std::ostream& log)
      : runner_(runner), opts_(opts), log_(log) {}

  JobOutcome Run();

 private:
  void Log(const char* level, const std::string& msg) {
    std::lock_guard lock(mu_);
    char ts[40];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S%z", &tm);
    std::string t = ts;  // date -Iseconds writes the offset as +00:00
    if (t.size() > 5) t.insert(t.size() - 2, ":");
    log_ << "upgrades.pre-cache " << t << " [" << level << "]: " << msg << "\n" << std::flush;
  }
  void Set(JobState s, std::string message) {
    out_.state = s;
    out_.message = std::move(message);
    Write();
    Log(s == JobState::kUnrecoverableError || s == JobState::kPrecacheTimeout ? "ERROR" : "INFO",
        std::string(JobStateName(s)) + (out_.message.empty() ? "" : ": " + out_.message));
  }
  void Write() {
    Json j = StatusToJson(out_.counts);
    Json s = {{"state", std::string(JobStateName(out_.state))}, {"message", out_.message}};
    s.update(j);
    WriteFileAtomic(opts_.status_file, s.dump() + "\n", 0644);
  }

  ProcessRunner& runner_;
  const JobOptions& opts_;
  std::ostream& log_;
  std::mutex mu_;
  JobOutcome out_;
};

JobOutcome Job::Run() {
  EnsureDir(opts_.status_file.parent_path(), 0755);
  Set(JobState::kNotStarted, "");
  // PreparingToStart: what an earlier run left (TALM deletes the spoke namespace; on the node it
  // is our scratch dir). Nothing in /tmp, ever.
  Set(JobState::kPreparingToStart, "removing the leftovers of earlier runs");
  const fs::path scratch = opts_.work_dir / "scratch";
  std::error_code ec;
  fs::remove_all(scratch, ec);
  struct ScratchGuard {
    fs::path p;
    ~ScratchGuard() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } guard{scratch};

  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline =
      opts_.timeout.count() > 0 ? t0 + opts_.timeout : std::chrono::steady_clock::time_point::max();
  try {
    Set(JobState::kStarting, "reading the pre-cache spec from " + opts_.config_dir.string());
    const JobSpec spec = ReadJobSpec(opts_.config_dir);
    const ExcludePatterns excludes =
        ExcludePatterns::Parse(spec.exclude_patterns, "excludePrecachePatterns");
    EnsureDir(scratch, 0700);
    stateroot::RegistryAccess access;
    if (fs::exists(opts_.authfile)) {
      access.authfile = opts_.authfile;
    } else {
      Log("INFO", "no pull secret at " + opts_.authfile.string() + ": pulling anonymously");
    }
    access.registries_conf = opts_.registries_conf;

    std::vector<std::vector<std::string>> lists;
    if (!spec.platform_image.empty()) {
      Log("INFO", "reading the release payload of " + spec.platform_image);
      lists.push_back(
          ReleasePayloadImages(runner_, spec.platform_image, access, scratch, excludes));
      Log("INFO", std::to_string(lists.back().size()) + " release images after excludes");
    }
    if (!spec.indexes.empty()) {
      const auto channels = ParsePackagesAndChannels(spec.packages_and_channels);
      std::set<std::string> found;
      for (const auto& index : spec.indexes) {
        Log("INFO", "reading the catalog of " + index);
        const CatalogSelection sel =
            CatalogImagesOfIndex(runner_, index, access, scratch, channels);
        for (const auto& w : sel.warnings) Log("INFO", index + ": " + w);
        for (const auto& [p, c] : channels) {
          if (std::find(sel.missing.begin(), sel.missing.end(), p + ":" + c) == sel.missing.end())
            found.insert(p);
        }
        lists.push_back(sel.images);
      }
      // A package no index has is a spec error, not a silent empty line (TALM's parse_index).
      for (const auto& [p, c] : channels) {
        if (found.count(p) == 0) {
          throw Error(Errc::kInvalid, "operators.packagesAndChannels: " + p + ":" + c +
                                          " is in none of the operators.indexes");
        }
      }
    }
    // additionalImages are used as given (TALM applies the excludes to the payload only).
    lists.push_back(ParseImageList(spec.additional_images, "additionalImages"));
    out_.images = MergeImageLists(lists);
    RequireImages(out_.images);

    // Space: the registry's sizes of what is missing, with spaceRequired as a floor; for
    // operator-only runs too.
    const LocalImages local = ListLocalImages(runner_, opts_.podman);
    std::vector<std::string> missing;
    for (const auto& img : out_.images) {
      if (!local.Contains(img)) missing.push_back(img);
    }
    const Inspection inspected = InspectAll(runner_, missing, access, opts_.concurrency);
    for (const auto& e : inspected.errors) Log("DEBUG", e + " (its size is not counted)");
    const auto& layers = inspected.layers;
    const uint64_t floor =
        spec.space_required.empty() ? 0 : ParseConfigMapSpaceRequired(spec.space_required);
    const fs::path storage = opts_.podman.root;
    const SpacePlan plan = PlanSpace(layers, LocalLayerDigests(storage), opts_.expansion, floor,
                                     opts_.gc_high_threshold_percent, StatFs(storage), storage);
    Log("DEBUG", "highThresholdPercent: " + std::to_string(plan.high_threshold_percent) +
                     " diskSize: " + std::to_string(plan.fs.size_bytes / 1024) +
                     " used: " + std::to_string(plan.fs.used_bytes / 1024));
    Log("DEBUG",
        "spaceRequired: " + std::to_string(BytesToGiBRoundedUp(plan.needed_bytes)) + " GiB");
    RequireSpace(plan);

    // Active: the pulls.
    std::optional<stateroot::TransientAuthFile> auth;
    PullOptions po;
    po.window = opts_.concurrency;
    po.round_trip = inspected.SlowestRoundTrip();
    po.attempts = opts_.attempts;
    po.backoff = opts_.backoff;
    po.deadline = deadline;
    po.best_effort = opts_.best_effort;
    if (access.authfile) po.authfile = access.authfile;
    const fs::path progress_file = opts_.work_dir / "progress.json";
    ProgressRecorder recorder(progress_file, out_.images.size());
    out_.counts = recorder.Snapshot();
    Set(JobState::kActive, "pre-caching " + std::to_string(out_.images.size()) + " images");
    PullHooks hooks;
    hooks.progress = [&](const PullResult&) {
      std::lock_guard lock(mu_);
      out_.counts = recorder.Snapshot();
      Write();
    };
    const PullResult r =
        PullImages(runner_, opts_.podman, ToPullItems(out_.images, layers), po, &recorder, hooks);
    fs::remove(progress_file, ec);
    out_.counts = recorder.Snapshot();
    if (r.timed_out) {
      Set(JobState::kPrecacheTimeout,
          "partially done: the deadline of " + std::to_string(opts_.timeout.count()) +
              "s passed with " + std::to_string(r.failed.size()) +
              " images not pre-cached; run again to continue (present images are skipped)");
      return out_;
    }
    if (!r.failed.empty()) {
      const std::string what =
          "One or more images were not pre-cached successfully: " + r.DescribeFailures();
      if (!opts_.best_effort) {
        Set(JobState::kUnrecoverableError, what);
        return out_;
      }
      Log("ERROR", what + " (best effort: continuing)");
    }
    // After the pulls: usage must stay below the image GC threshold (TALM's post-pull check).
    const FsUsage after = StatFs(storage);
    if (AvailableBelowThreshold(after, opts_.gc_high_threshold_percent) == 0) {
      Set(JobState::kUnrecoverableError,
          "not enough space for precaching: " + storage.string() + " is at or above the " +
              std::to_string(opts_.gc_high_threshold_percent) +
              "% image GC threshold after pulling (size " + Bytes(after.size_bytes) + ", used " +
              Bytes(after.used_bytes) + ")");
      return out_;
    }
    Set(JobState::kSucceeded, "pre-cached " + std::to_string(out_.images.size()) + " images (" +
                                  std::to_string(r.skipped.size()) + " already present)");
  } catch (const std::exception& e) {
    Set(JobState::kUnrecoverableError, e.what());
  }
  return out_;
}

}  // namespace

JobSpec ReadJobSpec(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    throw Error(Errc::kInvalid, "--config " + dir.string() +
                                    ": not a directory (it holds the pre-cache-spec ConfigMap "
                                    "keys as files: platform.image, operators.indexes, ...)");
  }
  JobSpec s;
  s.platform_image = Trimmed(Key(dir, "platform.image"));
  if (s.platform_image.find_first_of(" \t\r\n") != std::string::npos) {
    throw Error(Errc::kInvalid,
                (dir / "platform.image").string() + ": must hold one release image pull spec");
  }
  std::set<std::string> idx;
  for (auto& i : ParseImageList(Key(dir, "operators.indexes"), "operators.indexes")) {
    idx.insert(i);
  }
  s.indexes.assign(idx.begin(), idx.end());
  s.packages_and_channels = Key(dir, "operators.packagesAndChannels");
  s.exclude_patterns = Key(dir, "excludePrecachePatterns");
  s.additional_images = Key(dir, "additionalImages");
  s.space_required = Trimmed(Key(dir, "spaceRequired"));
  const bool packages = !Trimmed(s.packages_and_channels).empty();
  if (!s.indexes.empty() && !packages) {
    throw Error(Errc::kInvalid,
                "inconsistent pre-cache spec: operators.indexes is set but "
                "operators.packagesAndChannels is empty (name the <package>:<channel> to "
                "pre-cache)");
  }
  if (s.platform_image.empty() && s.indexes.empty() &&
      ParseImageList(s.additional_images, "additionalImages").empty()) {
    throw Error(Errc::kInvalid, "no images specified for precaching: " + dir.string() +
                                    " has no platform.image, operators.indexes or "
                                    "additionalImages");
  }
  return s;
}

JobOutcome RunPrecacheJob(ProcessRunner& runner, const JobOptions& opts, std::ostream& log) {
  Job job(runner, opts, log);
  return job.Run();
}

}  // namespace lca::precache
