#pragma once
// The puller: gets a list of images into local containers-storage with `podman pull`, as fast as
// the link and the host allow, and reports each image as it finishes.
//
// How it differs from the references (reference-lca §4.3, reference-talm-spoke §1.7):
//  * images already in local storage are skipped after ONE `podman images` listing, with no
//    registry round trip (TALM runs `podman image exists` per image; LCA pulls every image);
//  * a sliding window of `window` podman processes (TALM waits for a whole batch of 10; LCA
//    starts one goroutine per image behind a semaphore);
//  * each process pulls a CHUNK of images in one `podman pull a b c`: podman's start-up (storage
//    init, locks, config parsing) costs about as much as pulling a small image, so per-image
//    processes waste most of a loopback run; chunks are sized so the window stays full;
//  * an image that shares a large layer with an earlier one waits for that earlier image
//    (the "primer"), so a shared base layer crosses the link once, not once per parallel pull;
//  * failed images are retried one per process with exponential backoff (TALM: 10 immediate
//    sequential retries; LCA: 5 immediate), stopping early on `manifest unknown`;
//  * an overall deadline; cancellation stops the processes in flight; every process has a
//    timeout;
//  * with a near registry (a measured round trip) ONE process pulls everything, in order.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/progress.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::precache {

struct PullItem {
  std::string image;
  // Layer digests and the image's compressed bytes, from its manifest (space planning); empty
  // when unknown. Used to order pulls that share layers and for byte progress.
  std::vector<std::string> layers;
  std::vector<uint64_t> layer_sizes;
  uint64_t bytes = 0;
};

struct PullOptions {
  size_t window = 10;    // podman processes at once (MAX_PULL_THREADS); < 1 means 10
  size_t max_chunk = 8;  // images per podman process; 1 = one process per image
  int attempts = 5;      // per image, the chunk pull counting as the first
  std::chrono::milliseconds backoff{1000};  // before the 2nd attempt; doubles, capped at 30 s
  std::chrono::milliseconds pull_timeout{std::chrono::minutes(30)};  // per image in a process
  // Overall deadline; time_point::max() = none. Past it no pull starts and the run ends with
  // timed_out (PrecacheTimeout in TALM's words).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool best_effort = false;  // failures are reported but the run is ok()
  std::optional<std::filesystem::path> authfile;
  // Set: a present image referenced by tag is skipped only when its local digest is the
  // registry's (stale_tags.hpp, one manifest GET each); unset: present is enough.
  std::optional<stateroot::RegistryAccess> tag_check;
  // A shared layer at least this big makes later images wait for the first one holding it.
  uint64_t primer_min_layer_bytes = 256 * 1024;
  // The registries' measured round trip (the slowest registry's fastest manifest read, from the
  // space plan: Inspection::SlowestRoundTrip); nullopt = not measured. Below `near_round_trip`
  // every image goes through ONE podman process: with a near registry the pulls are bound by
  // the host (decompression on few cores, one storage lock), so parallel processes only
  // contend, and a process per image adds its start-up. Farther away, or unmeasured, the window
  // hides the link's latency. 10 ms sits between a registry in the same site (< 2 ms) and one
  // across a WAN (> 20 ms); see docs/benchmarks.md.
  std::optional<std::chrono::microseconds> round_trip;
  std::chrono::microseconds near_round_trip{10000};
};

struct PullResult {
  std::vector<std::string> skipped;           // already present before the run
  std::vector<std::string> pulled;            // pulled by this run
  std::vector<std::string> failed;            // missing at the end
  std::map<std::string, std::string> errors;  // image -> last error
  bool timed_out = false;
  bool cancelled = false;
  uint64_t bytes_total = 0;    // compressed bytes of the images that were missing
  uint64_t bytes_done = 0;     // of those, pulled
  uint64_t processes = 0;      // podman pull processes started
  bool near_registry = false;  // pulled in one process (PullOptions::round_trip)

  // Every image is present, or best effort was asked for (and the run was not cancelled).
  bool ok(bool best_effort) const {
    if (cancelled) return false;
    return failed.empty() || best_effort;
  }
  // "img (error); img2 (error)" for messages.
  std::string DescribeFailures(size_t max_items = 10) const;
};

struct PullHooks {
  // Checked between pulls and every 100 ms during each podman process; true stops the run and
  // the podman processes in flight (SIGTERM, then SIGKILL). Called from several threads.
  std::function<bool()> cancelled;
  // After each image finishes (pulled or finally failed), with the running totals.
  std::function<void(const PullResult&)> progress;
};

// Pulls `items` (in order of preference) into the storage of `podman`. `recorder`, when given,
// is updated as each image finishes (skipped images count as pulled). Throws only when podman
// cannot run at all (listing local storage fails); pull failures are in the result.
PullResult PullImages(ProcessRunner& runner, const PodmanConfig& podman,
                      const std::vector<PullItem>& items, const PullOptions& opts,
                      ProgressRecorder* recorder, const PullHooks& hooks = {});

// True when podman's error text says the image does not exist in the registry: no retry helps.
bool IsPermanentPullError(const std::string& text);

}  // namespace lca::precache
