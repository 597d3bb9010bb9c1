#include "precache/puller.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <mutex>
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

PullResult PullImages(ProcessRunner& runner, const PodmanConfig& podman,
                      const std::vector<PullItem>& items, const PullOptions& opts_in,
                      ProgressRecorder* recorder, const PullHooks& hooks) {
  PullOptions opts = opts_in;
  if (opts.window < 1) opts.window = 10;
  if (opts.max_chunk < 1) opts.max_chunk = 1;
  if (opts.attempts < 1) opts.attempts = 1;

  PullResult result;
  // 1. What is already here: one listing, no registry round trip.
  const LocalImages local = ListLocalImages(runner, podman);
  std::set<std::string> stale;
  if (opts.tag_check) {
    std::vector<std::string> refs;
    for (const auto& it : items) refs.push_back(it.image);
    stale = FindStaleTags(local, refs, *opts.tag_check);
  }
  std::vector<Task> tasks;
  std::set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!seen.insert(items[i].image).second) continue;
    if (local.Contains(items[i].image) && !stale.contains(items[i].image)) {
      result.skipped.push_back(items[i].image);
      if (recorder != nullptr) recorder->RecordPulled();
      continue;
    }
    Task t;
    t.index = i;
    tasks.push_back(t);
    result.bytes_total += items[i].bytes;
  }
  spdlog::info("precache: {} images, {} already present, {} to pull", seen.size(),
               result.skipped.size(), tasks.size());

  // The shape: one process for a near registry, the window otherwise (PullOptions::round_trip).
  if (opts.round_trip && *opts.round_trip < opts.near_round_trip && !tasks.empty()) {
    result.near_registry = true;
    opts.window = 1;
    opts.max_chunk = tasks.size();
    // In one process a shared layer is fetched once anyway: no image has to wait for another.
    opts.primer_min_layer_bytes = UINT64_MAX;
    spdlog::info("precache: registry round trip {:.1f} ms: one podman process for the {} images",
                 static_cast<double>(opts.round_trip->count()) / 1000, tasks.size());
  } else if (opts.round_trip) {
    spdlog::info("precache: registry round trip {:.1f} ms: up to {} podman processes at once",
                 static_cast<double>(opts.round_trip->count()) / 1000, opts.window);
  }

  // 2. Primers: the first image holding a large layer that later images share goes first.
  {
    std::map<std::string, size_t> owner;  // layer -> task position
    for (size_t t = 0; t < tasks.size(); ++t) {
      const PullItem& it = items[tasks[t].index];
      for (size_t l = 0; l < it.layers.size(); ++l) {
        const uint64_t size = l < it.layer_sizes.size() ? it.layer_sizes[l] : 0;
        if (size < opts.primer_min_layer_bytes) continue;
        auto [pos, inserted] = owner.emplace(it.layers[l], t);
        if (!inserted && pos->second != t &&
            std::find(tasks[t].deps.begin(), tasks[t].deps.end(), pos->second) ==
                tasks[t].deps.end()) {
          tasks[t].deps.push_back(pos->second);
        }
      }
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  size_t in_flight = 0;
  bool stop = false;

  // Reports one image done. Progress may run ahead of the attribution: `podman pull a b c`
  // prints an ID per image it pulled, but not which argument it was (it goes on past a failed
  // one), so each line is credited at once (the counts, the hook, the failpoint) and the image
  // is only named when the process ends; `credited` says its counts were already given.
  auto report = [&] {  // mu held
    if (hooks.progress) hooks.progress(result);
    // Tests kill the daemon here ("N*crash") to show a restarted Prep resumes the pre-cache.
    LCA_FAILPOINT("precache.image-done");
  };
  auto finish = [&](size_t t, bool ok, const std::string& error, bool log = true,
                    bool credited = false) {  // mu held
    tasks[t].done = true;
    const PullItem& it = items[tasks[t].index];
    if (ok) {
      result.pulled.push_back(it.image);
      result.bytes_done += it.bytes;
      if (credited) return;
      if (recorder != nullptr) recorder->RecordPulled();
    } else {
      result.failed.push_back(it.image);
      result.errors[it.image] = error;
      if (recorder != nullptr) recorder->RecordFailed(it.image);
      if (log) spdlog::error("precache: failed to pull {}: {}", it.image, error);
    }
    report();
  };
  auto ready = [&](const Task& t, Clock::time_point now) {
    if (t.done || t.in_flight || t.not_before > now) return false;
    return std::all_of(t.deps.begin(), t.deps.end(), [&](size_t d) { return tasks[d].done; });
  };
  auto remaining = [&] {
    return std::count_if(tasks.begin(), tasks.end(), [](const Task& t) { return !t.done; });
  };

  auto worker = [&] {
    std::unique_lock lock(mu);
    while (true) {
      const auto now = Clock::now();
      if (!stop && ((hooks.cancelled && hooks.cancelled()) || now >= opts.deadline)) {
        stop = true;
        if (now >= opts.deadline)
          result.timed_out = true;
        else
          result.cancelled = true;
        cv.notify_all();
      }
      if (stop || remaining() == 0) {
        if (in_flight == 0) cv.notify_all();
        return;
      }
      // Chunk: first-attempt tasks that are ready, sized so every slot gets a share; retries
      // go alone so one bad image cannot fail its neighbours again.
      std::vector<size_t> chunk;
      size_t ready_first = 0;
      for (const auto& t : tasks) ready_first += (ready(t, now) && t.attempts == 0) ? 1 : 0;
      const size_t share =
          std::clamp<size_t>((ready_first + opts.window - 1) / opts.window, 1, opts.max_chunk);
      for (size_t t = 0; t < tasks.size() && chunk.size() < share; ++t) {
        if (!ready(tasks[t], now)) continue;
        if (tasks[t].attempts > 0) {
          if (chunk.empty()) chunk.push_back(t);
          break;
        }
        chunk.push_back(t);
      }
      if (chunk.empty()) {
        // Nothing ready: wait for a pull to finish, a backoff to pass, or a cancel check.
        auto wake = now + std::chrono::milliseconds(200);
        for (const auto& t : tasks) {
          if (!t.done && !t.in_flight && t.not_before > now) wake = std::min(wake, t.not_before);
        }
        wake = std::min(wake, opts.deadline);
        cv.wait_until(lock, wake);
        continue;
      }
      for (size_t t : chunk) {
        tasks[t].in_flight = true;
        ++tasks[t].attempts;
      }
      ++in_flight;
      ++result.processes;
      std::vector<std::string> args = {"pull", "--quiet"};
      if (opts.authfile) args.insert(args.end(), {"--authfile", opts.authfile->string()});
      if (!podman.signature_policy.empty()) {
        args.insert(args.end(), {"--signature-policy", podman.signature_policy.string()});
      }
      args.push_back("--");
      for (size_t t : chunk) args.push_back(items[tasks[t].index].image);
      auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
          opts.pull_timeout * static_cast<int64_t>(chunk.size()));
      if (opts.deadline != Clock::time_point::max()) {
        timeout = std::max(std::chrono::milliseconds(1),
                           std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 opts.deadline - now)));
      }
      lock.unlock();
      ProcessSpec spec = PodmanSpec(podman, args, timeout, /*niced=*/true);
      spec.cancelled = hooks.cancelled;
      // `podman pull --quiet a b c` prints each image's ID as that image is done: the progress
      // file follows each image, not each process. The bytes are an estimate (the chunk's
      // images in order) until the process ends and local storage says which images made it.
      size_t credited = 0;
      uint64_t credited_bytes = 0;
      spec.on_stdout_line = [&](const std::string& line) {
        if (line.size() != 64 || line.find_first_not_of("0123456789abcdef") != std::string::npos)
          return;
        std::lock_guard stream_lock(mu);
        if (credited == chunk.size()) return;
        const uint64_t bytes = items[tasks[chunk[credited++]].index].bytes;
        credited_bytes += bytes;
        result.bytes_done += bytes;
        if (recorder != nullptr) recorder->RecordPulled();
        try {
          report();
        } catch (const std::exception& e) {
          // Nothing may leave the process runner's callback.
          spdlog::error("precache: reporting progress: {}", e.what());
        }
      };
      ProcessResult r;
      std::string start_error;
      try {
        r = runner.Run(spec);
      } catch (const std::exception& e) {
        start_error = e.what();
      }
      // Which images of a failed (or stopped) chunk made it: ask local storage, not podman's
      // error text nor the order of its output. Also for a single image that printed its ID
      // before a cancel: it is done, and its count was already given.
      std::optional<LocalImages> after;
      if (start_error.empty() && !r.ok() && (chunk.size() > 1 || credited > 0)) {
        try {
          after = ListLocalImages(runner, podman);
        } catch (const std::exception& e) {
          spdlog::warn("precache: listing local images after a failed pull: {}", e.what());
        }
      }
      lock.lock();
      --in_flight;
      result.bytes_done -= credited_bytes;  // from here on, counted per image
      size_t success = 0;
      for (size_t t : chunk) {
        tasks[t].in_flight = false;
        const std::string& image = items[tasks[t].index].image;
        if (start_error.empty() && (r.ok() || (after && after->Contains(image)))) {
          finish(t, true, "", true, /*credited=*/success++ < credited);
          continue;
        }
        if (r.cancelled) continue;  // stays not done: "not pulled: … cancelled" below
        std::string error = start_error;
        if (error.empty()) {
          error =
              chunk.size() == 1 ? PodmanFailure(r) : CleanError(LineAbout(r.stderr_tail, image));
          if (r.timed_out) error = "timed out: " + r.Describe();
          if (error.empty()) error = PodmanFailure(r);
        }
        const bool permanent = IsPermanentPullError(error) || !start_error.empty();
        if (permanent || tasks[t].attempts >= opts.attempts) {
          finish(t, false, error);
        } else {
          const auto delay = std::min<std::chrono::milliseconds>(
              opts.backoff * (int64_t{1} << std::min(tasks[t].attempts - 1, 10)),
              std::chrono::seconds(30));
          tasks[t].not_before = Clock::now() + delay;
          spdlog::warn("precache: pull of {} failed (attempt {}/{}), retrying in {} ms: {}", image,
                       tasks[t].attempts, opts.attempts, delay.count(), error);
        }
      }
      if (r.cancelled) {
        if (!stop) result.cancelled = true;
        stop = true;
      }
      cv.notify_all();
    }
  };

  if (!tasks.empty()) {
    std::vector<std::thread> threads;
    const size_t n = std::min(opts.window, tasks.size());
    threads.reserve(n);
    for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
    for (auto& th : threads) th.join();
  }
  // Not attempted because of a stop: one log line for all of them.
  const std::string stopped = result.timed_out ? "not pulled: the pre-cache deadline passed"
                                               : "not pulled: pre-caching was cancelled";
  size_t not_attempted = 0;
  for (size_t t = 0; t < tasks.size(); ++t) {
    if (tasks[t].done) continue;
    ++not_attempted;
    finish(t, false, stopped, /*log=*/false);
  }
  if (not_attempted > 0) spdlog::error("precache: {} images {}", not_attempted, stopped);

  // 3. As LCA does: an image that failed by its own name may be present under another one
  // (pulled by digest through an alias); `podman image exists` has the last word.
  if (!result.failed.empty() && !result.cancelled) {
    std::vector<std::string> still;
    for (const auto& img : result.failed) {
      ProcessResult r;
      try {
        r = runner.Run(
            PodmanSpec(podman, {"image", "exists", "--", img}, std::chrono::seconds(60)));
      } catch (const std::exception&) {
        still.push_back(img);
        continue;
      }
      if (r.ok()) {
        spdlog::info("precache: {} failed to pull but is present", img);
        result.errors.erase(img);
        result.pulled.push_back(img);
      } else {
        still.push_back(img);
      }
    }
    if (still.size() != result.failed.size() && recorder != nullptr) {
      // The file keeps what happened to each pull; the verdict uses `still`.
      recorder->Flush();
    }
    result.failed = std::move(still);
  }
  if (recorder != nullptr) recorder->Flush();
  return result;
}

}  // namespace lca::precache
