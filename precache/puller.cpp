#include "precache/puller.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "precache/stale_tags.hpp"

namespace lca::precache {
namespace {

using Clock = std::chrono::steady_clock;

struct Task {
  size_t index = 0;  // into items
  int attempts = 0;  // made so far
  Clock::time_point not_before{};
  std::vector<size_t> deps;  // primers that must finish first
  bool done = false;
  bool in_flight = false;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// The stderr line that mentions `image`, if any (podman names the source as docker://<image>).
std::string LineAbout(const std::string& err, const std::string& image) {
  for (const auto& line : Lines(err)) {
    if (line.find("docker://" + image + ":") != std::string::npos ||
        line.find("docker://" + image + " ") != std::string::npos ||
        (line.find(image) != std::string::npos && line.find("rror") != std::string::npos)) {
      return line;
    }
  }
  return "";
}

std::string CleanError(std::string line) {
  if (auto at = line.find("Error: "); at != std::string::npos) line = line.substr(at + 7);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

bool IsPermanentPullError(const std::string& text) {
  return text.find("manifest unknown") != std::string::npos;
}

std::string PullResult::DescribeFailures(size_t max_items) const {
  std::string out;
  size_t n = 0;
  for (const auto& img : failed) {
    if (n == max_items) {
      out += "; and " + std::to_string(failed.size() - n) + " more";
      break;
    }
    auto it = errors.find(img);
    out += (out.empty() ? "" : "; ") + img +
           (it != errors.end() && !it->second.empty() ? " (" + it->second + ")" : "");
    ++n;
  }
  return out;
}

namespace {

// The scheduler behind PullImages: which images go into which `podman pull` process and when,
// on `window` worker threads sharing one state under `mu_`. Primers (images holding a large
// layer that later images share) go first; failed images are retried alone with a backoff;
// a cancel or the deadline stops the workers at their next decision.
class PullScheduler {
 public:
  PullScheduler(ProcessRunner& runner, const PodmanConfig& podman,
                const std::vector<PullItem>& items, PullOptions opts, ProgressRecorder* recorder,
                const PullHooks& hooks)
      : runner_(runner),
        podman_(podman),
        items_(items),
        opts_(std::move(opts)),
        recorder_(recorder),
        hooks_(hooks) {
    if (opts_.window < 1) opts_.window = 10;
    if (opts_.max_chunk < 1) opts_.max_chunk = 1;
    if (opts_.attempts < 1) opts_.attempts = 1;
  }

  PullResult Run() {
    PlanTasks();
    ChooseShape();
    AddPrimers();
    if (!tasks_.empty()) {
      std::vector<std::thread> threads;
      const size_t n = std::min(opts_.window, tasks_.size());
      threads.reserve(n);
      for (size_t i = 0; i < n; ++i) threads.emplace_back([this] { Worker(); });
      for (auto& th : threads) th.join();
    }
    FailNotAttempted();
    RecheckFailed();
    if (recorder_ != nullptr) recorder_->Flush();
    return result_;
  }

 private:
  // 1. What is already here: one listing, no registry round trip.
  void PlanTasks() {
    const LocalImages local = ListLocalImages(runner_, podman_);
    std::set<std::string> stale;
    if (opts_.tag_check) {
      std::vector<std::string> refs;
      for (const auto& it : items_) refs.push_back(it.image);
      stale = FindStaleTags(local, refs, *opts_.tag_check);
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < items_.size(); ++i) {
      if (!seen.insert(items_[i].image).second) continue;
      if (local.Contains(items_[i].image) && !stale.contains(items_[i].image)) {
        result_.skipped.push_back(items_[i].image);
        if (recorder_ != nullptr) recorder_->RecordPulled();
        continue;
      }
      Task t;
      t.index = i;
      tasks_.push_back(t);
      result_.bytes_total += items_[i].bytes;
    }
    spdlog::info("precache: {} images, {} already present, {} to pull", seen.size(),
                 result_.skipped.size(), tasks_.size());
  }

  // The shape: one process for a near registry, the window otherwise (PullOptions::round_trip).
  void ChooseShape() {
    if (opts_.round_trip && *opts_.round_trip < opts_.near_round_trip && !tasks_.empty()) {
      result_.near_registry = true;
      opts_.window = 1;
      opts_.max_chunk = tasks_.size();
      // In one process a shared layer is fetched once anyway: no image has to wait for another.
      opts_.primer_min_layer_bytes = UINT64_MAX;
      spdlog::info("precache: registry round trip {:.1f} ms: one podman process for the {} images",
                   static_cast<double>(opts_.round_trip->count()) / 1000, tasks_.size());
    } else if (opts_.round_trip) {
      spdlog::info("precache: registry round trip {:.1f} ms: up to {} podman processes at once",
                   static_cast<double>(opts_.round_trip->count()) / 1000, opts_.window);
    }
  }

  // 2. Primers: the first image holding a large layer that later images share goes first.
  void AddPrimers() {
    std::map<std::string, size_t> owner;  // layer -> task position
    for (size_t t = 0; t < tasks_.size(); ++t) {
      const PullItem& it = items_[tasks_[t].index];
      for (size_t l = 0; l < it.layers.size(); ++l) {
        const uint64_t size = l < it.layer_sizes.size() ? it.layer_sizes[l] : 0;
        if (size < opts_.primer_min_layer_bytes) continue;
        auto [pos, inserted] = owner.emplace(it.layers[l], t);
        auto& deps = tasks_[t].deps;
        if (!inserted && pos->second != t &&
            std::find(deps.begin(), deps.end(), pos->second) == deps.end()) {
          deps.push_back(pos->second);
        }
      }
    }
  }

  // Reports one image done (mu_ held). Progress may run ahead of the attribution: `podman pull
  // a b c` prints an ID per image it pulled, but not which argument it was (it goes on past a
  // failed one), so each line is credited at once (the counts, the hook, the failpoint) and the
  // image is only named when the process ends; `credited` says its counts were already given.
  void Report() {
    if (hooks_.progress) hooks_.progress(result_);
    // Tests kill the daemon here ("N*crash") to show a restarted Prep resumes the pre-cache.
    LCA_FAILPOINT("precache.image-done");
  }

  void Finish(size_t t, bool ok, const std::string& error, bool log = true,
              bool credited = false) {  // mu_ held
    tasks_[t].done = true;
    const PullItem& it = items_[tasks_[t].index];
    if (ok) {
      result_.pulled.push_back(it.image);
      result_.bytes_done += it.bytes;
      if (credited) return;
      if (recorder_ != nullptr) recorder_->RecordPulled();
    } else {
      result_.failed.push_back(it.image);
      result_.errors[it.image] = error;
      if (recorder_ != nullptr) recorder_->RecordFailed(it.image);
      if (log) spdlog::error("precache: failed to pull {}: {}", it.image, error);
    }
    Report();
  }

  bool Ready(const Task& t, Clock::time_point now) const {
    if (t.done || t.in_flight || t.not_before > now) return false;
    return std::all_of(t.deps.begin(), t.deps.end(), [&](size_t d) { return tasks_[d].done; });
  }

  size_t Remaining() const {
    return static_cast<size_t>(
        std::count_if(tasks_.begin(), tasks_.end(), [](const Task& t) { return !t.done; }));
  }

  // A cancel or the deadline stops every worker at its next decision (mu_ held).
  void StopIfDue(Clock::time_point now) {
    if (stop_ || !((hooks_.cancelled && hooks_.cancelled()) || now >= opts_.deadline)) return;
    stop_ = true;
    if (now >= opts_.deadline) {
      result_.timed_out = true;
    } else {
      result_.cancelled = true;
    }
    cv_.notify_all();
  }

  // Chunk: first-attempt tasks that are ready, sized so every slot gets a share; retries go
  // alone so one bad image cannot fail its neighbours again (mu_ held).
  std::vector<size_t> NextChunk(Clock::time_point now) const {
    std::vector<size_t> chunk;
    size_t ready_first = 0;
    for (const auto& t : tasks_) ready_first += (Ready(t, now) && t.attempts == 0) ? 1 : 0;
    const size_t share =
        std::clamp<size_t>((ready_first + opts_.window - 1) / opts_.window, 1, opts_.max_chunk);
    for (size_t t = 0; t < tasks_.size() && chunk.size() < share; ++t) {
      if (!Ready(tasks_[t], now)) continue;
      if (tasks_[t].attempts > 0) {
        if (chunk.empty()) chunk.push_back(t);
        break;
      }
      chunk.push_back(t);
    }
    return chunk;
  }

  // Nothing ready: wait for a pull to finish, a backoff to pass, or a cancel check.
  void WaitForWork(std::unique_lock<std::mutex>& lock, Clock::time_point now) {
    auto wake = now + std::chrono::milliseconds(200);
    for (const auto& t : tasks_) {
      if (!t.done && !t.in_flight && t.not_before > now) wake = std::min(wake, t.not_before);
    }
    wake = std::min(wake, opts_.deadline);
    cv_.wait_until(lock, wake);
  }

  void Worker() {
    std::unique_lock lock(mu_);
    while (true) {
      const auto now = Clock::now();
      StopIfDue(now);
      if (stop_ || Remaining() == 0) {
        if (in_flight_ == 0) cv_.notify_all();
        return;
      }
      const std::vector<size_t> chunk = NextChunk(now);
      if (chunk.empty()) {
        WaitForWork(lock, now);
        continue;
      }
      PullChunk(lock, chunk, now);
      cv_.notify_all();
    }
  }

  ProcessSpec ChunkSpec(const std::vector<size_t>& chunk, Clock::time_point now) const {
    std::vector<std::string> args = {"pull", "--quiet"};
    if (opts_.authfile) args.insert(args.end(), {"--authfile", opts_.authfile->string()});
    if (!podman_.signature_policy.empty()) {
      args.insert(args.end(), {"--signature-policy", podman_.signature_policy.string()});
    }
    args.push_back("--");
    for (size_t t : chunk) args.push_back(items_[tasks_[t].index].image);
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        opts_.pull_timeout * static_cast<int64_t>(chunk.size()));
    if (opts_.deadline != Clock::time_point::max()) {
      timeout = std::max(std::chrono::milliseconds(1),
                         std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               opts_.deadline - now)));
    }
    ProcessSpec spec = PodmanSpec(podman_, args, timeout, /*niced=*/true);
    spec.cancelled = hooks_.cancelled;
    return spec;
  }

  // What one `podman pull` of a chunk did, for Settle.
  struct ChunkRun {
    ProcessResult r;
    std::string start_error;
    size_t credited = 0;          // images whose ID line was counted already
    uint64_t credited_bytes = 0;  // their estimated bytes
    std::optional<LocalImages> after;
  };

  // Runs the chunk's process without the lock (mu_ held on entry and on return).
  void PullChunk(std::unique_lock<std::mutex>& lock, const std::vector<size_t>& chunk,
                 Clock::time_point now) {
    for (size_t t : chunk) {
      tasks_[t].in_flight = true;
      ++tasks_[t].attempts;
    }
    ++in_flight_;
    ++result_.processes;
    ProcessSpec spec = ChunkSpec(chunk, now);
    lock.unlock();
    ChunkRun run;
    // `podman pull --quiet a b c` prints each image's ID as that image is done: the progress
    // file follows each image, not each process. The bytes are an estimate (the chunk's images
    // in order) until the process ends and local storage says which images made it.
    spec.on_stdout_line = [&](const std::string& line) { CreditLine(line, chunk, run); };
    try {
      run.r = runner_.Run(spec);
    } catch (const std::exception& e) {
      run.start_error = e.what();
    }
    // Which images of a failed (or stopped) chunk made it: ask local storage, not podman's
    // error text nor the order of its output. Also for a single image that printed its ID
    // before a cancel: it is done, and its count was already given.
    if (run.start_error.empty() && !run.r.ok() && (chunk.size() > 1 || run.credited > 0)) {
      try {
        run.after = ListLocalImages(runner_, podman_);
      } catch (const std::exception& e) {
        spdlog::warn("precache: listing local images after a failed pull: {}", e.what());
      }
    }
    lock.lock();
    --in_flight_;
    result_.bytes_done -= run.credited_bytes;  // from here on, counted per image
    Settle(chunk, run);
  }

  void CreditLine(const std::string& line, const std::vector<size_t>& chunk, ChunkRun& run) {
    if (line.size() != 64 || line.find_first_not_of("0123456789abcdef") != std::string::npos)
      return;
    std::lock_guard stream_lock(mu_);
    if (run.credited == chunk.size()) return;
    const uint64_t bytes = items_[tasks_[chunk[run.credited++]].index].bytes;
    run.credited_bytes += bytes;
    result_.bytes_done += bytes;
    if (recorder_ != nullptr) recorder_->RecordPulled();
    try {
      Report();
    } catch (const std::exception& e) {
      // Nothing may leave the process runner's callback.
      spdlog::error("precache: reporting progress: {}", e.what());
    }
  }

  // Each image of the chunk: pulled, failed for good, or retried after a backoff (mu_ held).
  void Settle(const std::vector<size_t>& chunk, const ChunkRun& run) {
    const ProcessResult& r = run.r;
    size_t success = 0;
    for (size_t t : chunk) {
      tasks_[t].in_flight = false;
      const std::string& image = items_[tasks_[t].index].image;
      if (run.start_error.empty() && (r.ok() || (run.after && run.after->Contains(image)))) {
        Finish(t, true, "", true, /*credited=*/success++ < run.credited);
        continue;
      }
      if (r.cancelled) continue;  // stays not done: "not pulled: … cancelled" below
      std::string error = run.start_error;
      if (error.empty()) {
        error = chunk.size() == 1 ? PodmanFailure(r) : CleanError(LineAbout(r.stderr_tail, image));
        if (r.timed_out) error = "timed out: " + r.Describe();
        if (error.empty()) error = PodmanFailure(r);
      }
      const bool permanent = IsPermanentPullError(error) || !run.start_error.empty();
      if (permanent || tasks_[t].attempts >= opts_.attempts) {
        Finish(t, false, error);
        continue;
      }
      const auto delay = std::min<std::chrono::milliseconds>(
          opts_.backoff * (int64_t{1} << std::min(tasks_[t].attempts - 1, 10)),
          std::chrono::seconds(30));
      tasks_[t].not_before = Clock::now() + delay;
      spdlog::warn("precache: pull of {} failed (attempt {}/{}), retrying in {} ms: {}", image,
                   tasks_[t].attempts, opts_.attempts, delay.count(), error);
    }
    if (r.cancelled) {
      if (!stop_) result_.cancelled = true;
      stop_ = true;
    }
  }

  // Not attempted because of a stop: one log line for all of them.
  void FailNotAttempted() {
    const std::string stopped = result_.timed_out ? "not pulled: the pre-cache deadline passed"
                                                  : "not pulled: pre-caching was cancelled";
    size_t not_attempted = 0;
    for (size_t t = 0; t < tasks_.size(); ++t) {
      if (tasks_[t].done) continue;
      ++not_attempted;
      Finish(t, false, stopped, /*log=*/false);
    }
    if (not_attempted > 0) spdlog::error("precache: {} images {}", not_attempted, stopped);
  }

  // 3. As LCA does: an image that failed by its own name may be present under another one
  // (pulled by digest through an alias); `podman image exists` has the last word.
  void RecheckFailed() {
    if (result_.failed.empty() || result_.cancelled) return;
    std::vector<std::string> still;
    for (const auto& img : result_.failed) {
      ProcessResult r;
      try {
        r = runner_.Run(
            PodmanSpec(podman_, {"image", "exists", "--", img}, std::chrono::seconds(60)));
      } catch (const std::exception&) {
        still.push_back(img);
        continue;
      }
      if (r.ok()) {
        spdlog::info("precache: {} failed to pull but is present", img);
        result_.errors.erase(img);
        result_.pulled.push_back(img);
      } else {
        still.push_back(img);
      }
    }
    if (still.size() != result_.failed.size() && recorder_ != nullptr) {
      // The file keeps what happened to each pull; the verdict uses `still`.
      recorder_->Flush();
    }
    result_.failed = std::move(still);
  }

  ProcessRunner& runner_;
  const PodmanConfig& podman_;
  const std::vector<PullItem>& items_;
  PullOptions opts_;
  ProgressRecorder* recorder_;
  const PullHooks& hooks_;

  PullResult result_;
  std::vector<Task> tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0;
  bool stop_ = false;
};

}  // namespace

PullResult PullImages(ProcessRunner& runner, const PodmanConfig& podman,
                      const std::vector<PullItem>& items, const PullOptions& opts,
                      ProgressRecorder* recorder, const PullHooks& hooks) {
  return PullScheduler(runner, podman, items, opts, recorder, hooks).Run();
}

}  // namespace lca::precache
