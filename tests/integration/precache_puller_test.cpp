// The puller and the space plan on the real bed: a registry with auth holding 22 images made by
// the test (two families sharing a base layer), real podman with its own root (vfs), real
// skopeo. The test process runs in a private mount namespace with a tmpfs over /var/lib.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/progress.hpp"
#include "precache/puller.hpp"
#include "precache/space_plan.hpp"
#include "precache/storage_cleanup.hpp"
#include "tests/support/image_factory.hpp"
#include "tests/support/podman_bed.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/shared_bed.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::precache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kUser = "puller";
constexpr const char* kPassword = "pu11-me-pass";

struct Bed {
  std::unique_ptr<test::LocalRegistry> registry;
  std::vector<test::PushedImage> images;  // 22 images
  std::string base_digest;                // the shared base layer
  uint64_t base_bytes = 0;
  uint64_t unique_bytes = 0;  // every distinct blob pushed (configs + layers)

  Bed() {
    registry = std::make_unique<test::LocalRegistry>(
        test::RegistryCredentials{.user = kUser, .password = kPassword});
    test::ImagePusher push(registry->address(), std::make_pair(kUser, kPassword));
    const std::string base = test::TarOf({{"base/blob", test::RandomBytes(512 * 1024, 1)}});
    base_digest = test::Sha256Of(base);
    base_bytes = base.size();
    std::set<std::string> blobs;
    for (int i = 0; i < 22; ++i) {
      const std::string own = test::TarOf(
          {{"app/file" + std::to_string(i), test::RandomBytes(1024 + 97 * i, 100 + i)}});
      std::vector<std::string> layers = {own};
      if (i < 16) layers.insert(layers.begin(), base);  // 16 share the base, 6 do not
      const std::string repo = i % 2 == 0 ? "ocp/even" + std::to_string(i) : "ocp/odd";
      images.push_back(
          push.Push(repo, "v" + std::to_string(i), layers, {{"n", std::to_string(i)}}));
    }
    (void)blobs;
  }
};

class PrecachePullerTest : public test::SharedBedSuite<Bed, test::EnterPrivateVarLib> {
 protected:
  void SetUp() override {
    SharedBedSuite::SetUp();
    if (HasFatalFailure()) return;
    podman_ = test::IsolatedPodman(tmp_ / "podman", bed->registry->registries_conf(),
                                   bed->registry->policy_json());
    opts_.authfile = bed->registry->auth_json();
    opts_.backoff = 20ms;
  }

  std::vector<PullItem> Items(const std::vector<std::string>& refs) {
    std::vector<PullItem> out;
    for (const auto& r : refs) out.push_back(PullItem{r, {}, {}, 0});
    return out;
  }
  std::vector<std::string> AllRefs(bool pinned) {
    std::vector<std::string> out;
    for (const auto& i : bed->images) out.push_back(pinned ? i.pinned : i.ref);
    return out;
  }
  stateroot::RegistryAccess Access() {
    stateroot::RegistryAccess a;
    a.authfile = bed->registry->auth_json();
    a.registries_conf = bed->registry->registries_conf();
    a.timeout = 60s;
    return a;
  }

  test::TempDir tmp_{"lca-puller"};
  SystemProcessRunner runner_;
  PodmanConfig podman_;
  PullOptions opts_;
};

TEST_F(PrecachePullerTest, PullsEveryImageRecordsProgressAndSkipsThemOnTheNextRun) {
  const auto refs = AllRefs(/*pinned=*/false);
  const fs::path status = tmp_ / "precache_status.json";
  std::vector<PrecacheStatus> seen;
  ProgressRecorder rec(status, refs.size());
  PullHooks hooks;
  hooks.progress = [&](const PullResult&) {
    if (auto s = ReadStatusFile(status)) seen.push_back(*s);
  };
  const PullResult r = PullImages(runner_, podman_, Items(refs), opts_, &rec, hooks);
  EXPECT_TRUE(r.failed.empty()) << r.DescribeFailures();
  EXPECT_EQ(r.pulled.size(), refs.size());
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_LT(r.processes, refs.size()) << "chunks: fewer podman processes than images";
  const auto final_status = ReadStatusFile(status);
  ASSERT_TRUE(final_status.has_value());
  EXPECT_EQ(*final_status, (PrecacheStatus{22, 22, 0, {}}));
  EXPECT_EQ(ReadFile(status), R"({"total":22,"pulled":22,"failed":0,"failed_pulls":null})");
  ASSERT_FALSE(seen.empty());
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].pulled, seen[i - 1].pulled);

  // Every image is in local storage, by tag and by digest.
  const LocalImages local = ListLocalImages(runner_, podman_);
  for (const auto& img : bed->images) {
    EXPECT_TRUE(local.Contains(img.ref)) << img.ref;
    EXPECT_TRUE(local.Contains(img.pinned)) << img.pinned;
  }

  // Second run: everything is present, nothing is pulled, no podman pull runs.
  ProgressRecorder rec2(tmp_ / "second.json", refs.size() * 2);
  auto both = refs;
  for (const auto& p : AllRefs(true)) both.push_back(p);
  const auto t0 = std::chrono::steady_clock::now();
  const PullResult again = PullImages(runner_, podman_, Items(both), opts_, &rec2);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(again.skipped.size(), both.size());
  EXPECT_EQ(again.processes, 0u);
  EXPECT_TRUE(again.failed.empty());
  EXPECT_EQ(*ReadStatusFile(tmp_ / "second.json"), (PrecacheStatus{44, 44, 0, {}}));
  EXPECT_LT(took, 5s);
}

// Stale tags: a present image referenced by tag is skipped only when its local digest is the
// registry's (one manifest GET in-process); a moved tag is pulled again. Digest-pinned images
// cost no registry request, and the all-present run with every tag checked stays fast.
TEST_F(PrecachePullerTest, MovedTagIsPulledAgainAndAnUnchangedOneIsSkipped) {
  test::ImagePusher push(bed->registry->address(), std::make_pair(kUser, kPassword));
  const auto v1 = push.Push("ocp/moving", "stable", {test::TarOf({{"m/v", "one\n"}})});
  PullOptions checked = opts_;
  checked.tag_check = Access();
  PullResult r = PullImages(runner_, podman_, Items({v1.ref}), checked, nullptr);
  ASSERT_TRUE(r.failed.empty()) << r.DescribeFailures();
  EXPECT_EQ(r.pulled, std::vector<std::string>{v1.ref});

  r = PullImages(runner_, podman_, Items({v1.ref}), checked, nullptr);
  EXPECT_EQ(r.skipped, std::vector<std::string>{v1.ref}) << "the tag did not move";
  EXPECT_EQ(r.processes, 0u);

  const auto v2 = push.Push("ocp/moving", "stable", {test::TarOf({{"m/v", "two\n"}})});
  ASSERT_NE(v1.digest, v2.digest);
  // Present is enough without the check: the old image stays.
  r = PullImages(runner_, podman_, Items({v1.ref}), opts_, nullptr);
  EXPECT_EQ(r.skipped, std::vector<std::string>{v1.ref});
  r = PullImages(runner_, podman_, Items({v1.ref}), checked, nullptr);
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_EQ(r.pulled, std::vector<std::string>{v1.ref}) << "the moved tag is pulled again";
  const auto digests = ListLocalImages(runner_, podman_).DigestsOf(v1.ref);
  EXPECT_NE(std::find(digests.begin(), digests.end(), v2.digest), digests.end());

  // Everything present, every tag checked against the registry: still one listing and a GET
  // per tag, no pull, well within the all-present budget.
  auto all = AllRefs(false);
  for (const auto& p : AllRefs(true)) all.push_back(p);
  ASSERT_TRUE(PullImages(runner_, podman_, Items(all), opts_, nullptr).failed.empty());
  const auto t0 = std::chrono::steady_clock::now();
  r = PullImages(runner_, podman_, Items(all), checked, nullptr);
  EXPECT_EQ(r.skipped.size(), all.size());
  EXPECT_EQ(r.processes, 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(PrecachePullerTest, MissingImageIsReportedByNameWithoutRetriesAndBestEffortSucceeds) {
  const std::string missing = bed->registry->address() + "/ocp/does-not-exist:v1";
  std::vector<std::string> refs = {bed->images[0].ref, missing, bed->images[1].ref,
                                   bed->images[2].pinned};
  ProgressRecorder rec(tmp_ / "status.json", refs.size());
  const PullResult r = PullImages(runner_, podman_, Items(refs), opts_, &rec);
  EXPECT_EQ(r.failed, std::vector<std::string>{missing});
  EXPECT_EQ(r.pulled.size(), 3u);
  EXPECT_NE(r.errors.at(missing).find("manifest unknown"), std::string::npos)
      << r.errors.at(missing);
  // Four ready images share ten slots: one process each, and "manifest unknown" is final.
  EXPECT_EQ(r.processes, 4u);
  EXPECT_FALSE(r.ok(/*best_effort=*/false));
  EXPECT_TRUE(r.ok(/*best_effort=*/true));
  EXPECT_NE(r.DescribeFailures().find(missing), std::string::npos);
  EXPECT_EQ(*ReadStatusFile(tmp_ / "status.json"), (PrecacheStatus{4, 3, 1, {missing}}));
}

// One process for a near registry with a missing image second in line: podman goes on past it
// and prints an ID per image it pulled, not which one. Progress counts each ID at once; which
// image failed comes from local storage when the process ends, not from the order of the IDs.
TEST_F(PrecachePullerTest, NearRegistryFailureIsNamedByStorageNotByTheOrderOfOutput) {
  const std::string missing = bed->registry->address() + "/ocp/does-not-exist:v1";
  std::vector<std::string> refs = {bed->images[0].ref, missing};
  for (size_t i = 1; i < 6; ++i) refs.push_back(bed->images[i].ref);
  opts_.round_trip = 1ms;
  ProgressRecorder rec(tmp_ / "status.json", refs.size());
  std::vector<PrecacheStatus> seen;
  PullHooks hooks;
  hooks.progress = [&](const PullResult&) { seen.push_back(rec.Snapshot()); };
  const PullResult r = PullImages(runner_, podman_, Items(refs), opts_, &rec, hooks);
  EXPECT_TRUE(r.near_registry);
  EXPECT_EQ(r.failed, std::vector<std::string>{missing});
  ASSERT_EQ(r.errors.count(missing), 1u);
  EXPECT_NE(r.errors.at(missing).find("manifest unknown"), std::string::npos)
      << r.errors.at(missing);
  std::vector<std::string> want = refs;
  want.erase(want.begin() + 1);
  EXPECT_EQ(r.pulled, want);
  EXPECT_EQ(r.processes, 1u) << "manifest unknown is final: no retry";
  EXPECT_EQ(*ReadStatusFile(tmp_ / "status.json"), (PrecacheStatus{7, 6, 1, {missing}}));
  ASSERT_EQ(seen.size(), 7u) << "six IDs as they came, then the failure";
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(seen[i].pulled, i + 1);
  EXPECT_EQ(seen[6].failed, 1u);
}

TEST_F(PrecachePullerTest, UnreachableRegistryIsRetriedWithBackoffThenFails) {
  // A port nothing listens on: connection refused every time, so every attempt is made (podman
  // 4.3 itself retries 3 times 1 s apart inside each attempt).
  const std::string img = "127.0.0.1:1/ocp/unreachable:v1";
  opts_.attempts = 2;
  opts_.backoff = 100ms;
  const auto t0 = std::chrono::steady_clock::now();
  const PullResult r = PullImages(runner_, podman_, Items({img}), opts_, nullptr);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.failed, std::vector<std::string>{img});
  EXPECT_EQ(r.processes, 2u);
  EXPECT_GE(took, 100ms) << "backoff 100 ms";
  EXPECT_FALSE(r.errors.at(img).empty());
}

TEST_F(PrecachePullerTest, WithoutCredentialsTheAuthRegistryRefusesAndTheErrorSaysSo) {
  opts_.authfile.reset();
  opts_.attempts = 1;
  const PullResult r = PullImages(runner_, podman_, Items({bed->images[3].ref}), opts_, nullptr);
  ASSERT_EQ(r.failed.size(), 1u);
  const std::string err = r.errors.at(bed->images[3].ref);
  EXPECT_TRUE(err.find("unauthorized") != std::string::npos ||
              err.find("authentication required") != std::string::npos)
      << err;
}

TEST_F(PrecachePullerTest, PassedDeadlineStartsNoPullAndReportsATimeout) {
  opts_.deadline = std::chrono::steady_clock::now();
  ProgressRecorder rec(tmp_ / "status.json", 2);
  const PullResult r =
      PullImages(runner_, podman_, Items({bed->images[4].ref, bed->images[5].ref}), opts_, &rec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.processes, 0u);
  EXPECT_EQ(r.failed.size(), 2u);
  EXPECT_NE(r.errors.at(bed->images[4].ref).find("deadline"), std::string::npos);
}

TEST_F(PrecachePullerTest, SpacePlanCountsSharedAndPresentLayersOnceAndFailsWithBothNumbers) {
  auto refs = AllRefs(false);
  const Inspection inspected = InspectAll(runner_, refs, Access(), 8);
  ASSERT_TRUE(inspected.errors.empty()) << inspected.errors.front();
  const auto& layers = inspected.layers;
  ASSERT_EQ(layers.size(), refs.size());
  uint64_t pushed_total = 0;
  for (const auto& img : bed->images) pushed_total += img.bytes;
  // The shared base is counted once, not 16 times.
  const uint64_t want = pushed_total - 15 * bed->base_bytes;
  const FsUsage roomy{100ull << 30, 10ull << 30, 90ull << 30};
  SpacePlan plan = PlanSpace(layers, {}, 2.0, 0, 85, roomy, "/x");
  EXPECT_EQ(plan.download_bytes, want);
  EXPECT_EQ(plan.needed_bytes, 2 * want);
  EXPECT_TRUE(plan.fits());
  EXPECT_NO_THROW(RequireSpace(plan));

  // A nearly full filesystem: 85% of 10 GiB is 8.5 GiB, 8.5 GiB - 100 KiB used -> 100 KiB left.
  const FsUsage tight{10ull << 30, (85ull << 30) / 10 - 100 * 1024, 1ull << 30};
  plan = PlanSpace(layers, {}, 2.0, 0, 85, tight, "test-storage");
  EXPECT_FALSE(plan.fits());
  try {
    RequireSpace(plan);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("not enough space for precaching: need ", 0), 0u) << msg;
    EXPECT_NE(msg.find("100.0 KiB is available below the 85% image GC threshold on "
                       "test-storage"),
              std::string::npos)
        << msg;
  }
  // spaceRequired is a floor.
  plan = PlanSpace(layers, {}, 2.0, 5ull << 30, 85, roomy, "/x");
  EXPECT_EQ(plan.needed_bytes, 5ull << 30);

  // After pulling (six of them, to keep the test short), local storage holds their layers:
  // only their configs are left to count.
  refs.resize(6);
  std::vector<ImageLayers> six(layers.begin(), layers.begin() + 6);
  uint64_t six_total = 0;
  for (size_t i = 0; i < 6; ++i) six_total += bed->images[i].bytes;
  const PullResult r = PullImages(runner_, podman_, ToPullItems(refs, six), opts_, nullptr);
  ASSERT_TRUE(r.failed.empty()) << r.DescribeFailures();
  EXPECT_EQ(r.bytes_total, six_total);
  EXPECT_EQ(r.bytes_done, six_total);
  const auto local = LocalLayerDigests(podman_.root);
  EXPECT_EQ(local.count(bed->base_digest), 1u);
  plan = PlanSpace(six, local, 2.0, 0, 85, roomy, "/x");
  uint64_t configs = 0;
  for (const auto& l : six) configs += l.config_bytes;
  EXPECT_EQ(plan.download_bytes, configs) << "only configs are not tracked as layers";

  // The measured expansion on this storage driver, for docs/benchmarks.md.
  uint64_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(podman_.root)) {
    if (e.is_regular_file() && !e.is_symlink()) on_disk += e.file_size();
  }
  const uint64_t pulled = six_total - 5 * bed->base_bytes;
  std::cout << "[ measured ] vfs store " << on_disk << " bytes for " << pulled
            << " bytes pulled: expansion " << static_cast<double>(on_disk) / pulled << "\n";
}

// The in-process client reads the same manifests skopeo reads (Basic auth, plain HTTP through
// registries.conf's insecure entry, tags and digests), and times the registry.
TEST_F(PrecachePullerTest, ManifestsReadInProcessMatchSkopeosAndTimeTheRegistry) {
  std::vector<std::string> refs = AllRefs(false);
  for (size_t i = 0; i < 4; ++i) refs.push_back(bed->images[i].pinned);
  const Inspection fast = InspectAll(runner_, refs, Access(), 8);
  const Inspection slow = InspectAll(runner_, refs, Access(), 8, /*in_process=*/false);
  ASSERT_TRUE(fast.errors.empty()) << fast.errors.front();
  ASSERT_TRUE(slow.errors.empty()) << slow.errors.front();
  EXPECT_EQ(fast.in_process, refs.size());
  EXPECT_EQ(fast.by_skopeo, 0u);
  EXPECT_EQ(slow.in_process, 0u);
  EXPECT_EQ(slow.by_skopeo, refs.size());
  ASSERT_EQ(fast.layers.size(), slow.layers.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(fast.layers[i].image, refs[i]);
    EXPECT_EQ(fast.layers[i].digests, slow.layers[i].digests) << refs[i];
    EXPECT_EQ(fast.layers[i].sizes, slow.layers[i].sizes) << refs[i];
    EXPECT_EQ(fast.layers[i].config_bytes, slow.layers[i].config_bytes) << refs[i];
    EXPECT_GT(fast.layers[i].Bytes(), 0u);
  }
  ASSERT_EQ(fast.round_trips.size(), 1u);
  EXPECT_EQ(fast.round_trips.begin()->first, bed->registry->address());
  ASSERT_TRUE(fast.SlowestRoundTrip().has_value());
  std::cout << "[ measured ] loopback registry round trip " << fast.SlowestRoundTrip()->count()
            << " us\n";
  EXPECT_FALSE(slow.SlowestRoundTrip().has_value()) << "nothing timed: the shape stays the window";

  // A missing image goes to skopeo for its error, but its registry was timed all the same.
  const std::string missing = bed->registry->address() + "/ocp/does-not-exist:v1";
  stateroot::RegistryAccess once = Access();
  once.retries = 0;
  const Inspection partial = InspectAll(runner_, {refs[0], missing}, once, 2);
  EXPECT_EQ(partial.in_process, 1u);
  EXPECT_EQ(partial.by_skopeo, 1u);
  ASSERT_EQ(partial.errors.size(), 1u);
  EXPECT_NE(partial.errors[0].find("manifest unknown"), std::string::npos) << partial.errors[0];
  EXPECT_TRUE(partial.SlowestRoundTrip().has_value());
}

// What the client must not decide alone goes to skopeo: a registry with a mirror, and a
// credential the registry refuses (skopeo's error is the one reported).
TEST_F(PrecachePullerTest, MirroredRegistriesAndRefusedCredentialsAreLeftToSkopeo) {
  const std::string reg = bed->registry->address();
  const fs::path conf = tmp_ / "mirrored.conf";
  // The registry mirrors itself: skopeo reads through the mirror entry, the client stays out.
  WriteFileAtomic(conf,
                  "[[registry]]\nlocation = \"" + reg +
                      "\"\ninsecure = true\n"
                      "[[registry.mirror]]\nlocation = \"" +
                      reg + "\"\ninsecure = true\n",
                  0644);
  stateroot::RegistryAccess a = Access();
  a.registries_conf = conf;
  const std::vector<std::string> refs = {bed->images[0].pinned, bed->images[1].ref};
  const Inspection mirrored = InspectAll(runner_, refs, a, 2);
  ASSERT_TRUE(mirrored.errors.empty()) << mirrored.errors.front();
  EXPECT_EQ(mirrored.in_process, 0u);
  EXPECT_EQ(mirrored.by_skopeo, 2u);
  EXPECT_EQ(mirrored.layers[0].digests.size(), 2u) << "base + own layer";

  const fs::path bad = tmp_ / "bad-auth.json";
  WriteFileAtomic(
      bad,
      "{\"auths\":{\"" + reg + "\":{\"auth\":\"cHVsbGVyOndyb25n\"}}}\n",  // puller:wrong
      0600);
  a = Access();
  a.authfile = bad;
  a.retries = 0;
  const Inspection refused = InspectAll(runner_, {bed->images[2].ref}, a, 1);
  EXPECT_EQ(refused.in_process, 0u);
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_NE(refused.errors[0].find("inspecting " + bed->images[2].ref), std::string::npos)
      << refused.errors[0];
  EXPECT_NE(refused.errors[0].find("unauthorized"), std::string::npos) << refused.errors[0];
}

// True while a `podman pull` of this test's storage runs.
bool PodmanPullRunning(const fs::path& root) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::optional<std::string> cmd;
    try {
      cmd = ReadFileIfExists(e.path() / "cmdline");
    } catch (const Error&) {
      continue;  // the process ended while we looked
    }
    if (!cmd || cmd->find(root.string()) == std::string::npos) continue;
    if (cmd->find(std::string("pull\0", 5)) != std::string::npos) return true;
  }
  return false;
}

TEST_F(PrecachePullerTest, NearRegistryPullsEverythingInOneProcessReportingEachImage) {
  const auto refs = AllRefs(false);
  opts_.round_trip = 1ms;
  size_t calls = 0, while_running = 0;
  PullHooks hooks;
  hooks.progress = [&](const PullResult& r) {
    ++calls;
    if (r.pulled.size() < refs.size() && PodmanPullRunning(podman_.root)) ++while_running;
  };
  const PullResult r = PullImages(runner_, podman_, Items(refs), opts_, nullptr, hooks);
  ASSERT_TRUE(r.failed.empty()) << r.DescribeFailures();
  EXPECT_TRUE(r.near_registry);
  EXPECT_EQ(r.processes, 1u);
  EXPECT_EQ(r.pulled, refs) << "in the order given";
  EXPECT_EQ(calls, refs.size());
  EXPECT_GT(while_running, 0u) << "progress follows each image, not the end of the process";

  // Far (or not measured): the window, several processes.
  PullOptions far = opts_;
  far.round_trip = 50ms;
  PodmanConfig other = test::IsolatedPodman(tmp_ / "far", bed->registry->registries_conf(),
                                            bed->registry->policy_json());
  const PullResult f = PullImages(runner_, other, Items(refs), far, nullptr);
  ASSERT_TRUE(f.failed.empty()) << f.DescribeFailures();
  EXPECT_FALSE(f.near_registry);
  EXPECT_GT(f.processes, 1u);
}

TEST_F(PrecachePullerTest, CancelStopsThePodmanPullInFlightAndTheNextRunFinishes) {
  const auto refs = AllRefs(false);
  opts_.round_trip = 1ms;  // one process for all: without stopping it, cancel would wait for it
  std::atomic<bool> cancel{false};
  PullHooks hooks;
  hooks.cancelled = [&] { return cancel.load(); };
  hooks.progress = [&](const PullResult&) { cancel = true; };
  const auto t0 = std::chrono::steady_clock::now();
  const PullResult r = PullImages(runner_, podman_, Items(refs), opts_, nullptr, hooks);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.ok(false));
  EXPECT_LT(r.pulled.size(), refs.size() - 2) << "stopped early";
  EXPECT_EQ(r.pulled.size() + r.failed.size(), refs.size());
  ASSERT_FALSE(r.failed.empty());
  EXPECT_NE(r.errors.at(r.failed.back()).find("cancelled"), std::string::npos);
  std::cout << "[ measured ] cancelled after " << r.pulled.size() << " images in "
            << std::chrono::duration<double>(took).count() << " s\n";

  // The storage is usable: a second run skips what made it and pulls the rest.
  const PullResult again = PullImages(runner_, podman_, Items(refs), opts_, nullptr);
  EXPECT_TRUE(again.failed.empty()) << again.DescribeFailures();
  EXPECT_EQ(again.skipped.size() + again.pulled.size(), refs.size());
  EXPECT_GE(again.skipped.size(), r.pulled.size());
}

TEST_F(PrecachePullerTest, StorageCleanupRemovesDanglingFirstInBatchesAndKeepsWhatIsNeeded) {
  std::vector<std::string> refs;
  for (size_t i = 0; i < 6; ++i) refs.push_back(bed->images[i].ref);
  ASSERT_TRUE(PullImages(runner_, podman_, Items(refs), opts_, nullptr).failed.empty());
  // images[0] loses its name: dangling.
  SystemProcessRunner r;
  RunChecked(r, PodmanSpec(podman_, {"untag", refs[0]}, 60s));
  const auto before = ListLocalImages(runner_, podman_).images();
  std::string dangling_id;
  for (const auto& i : before) {
    if (i.dangling) dangling_id = i.id;
  }
  ASSERT_FALSE(dangling_id.empty());
  KeepSet keep;
  keep.refs = {refs[5]};
  // 90 % before and after the first batch, 40 % after the second: two batches of 2, then stop.
  int calls = 0;
  auto usage = [&] { return ++calls <= 2 ? FsUsage{100, 90, 10} : FsUsage{100, 40, 60}; };
  const CleanupResult res = CleanupStorage(runner_, podman_, keep, CleanupOptions{50, 2}, usage);
  EXPECT_TRUE(res.exceeded);
  EXPECT_EQ(res.usage_before, 90);
  EXPECT_EQ(res.usage_after, 40);
  EXPECT_FALSE(res.ran_out);
  ASSERT_EQ(res.removed.size(), 4u);
  EXPECT_EQ(res.removed[0], dangling_id);
  const LocalImages after = ListLocalImages(runner_, podman_);
  EXPECT_EQ(after.images().size(), 2u);
  EXPECT_TRUE(after.Contains(refs[5])) << "kept";
  // Below the threshold nothing is touched.
  const CleanupResult none = CleanupStorage(runner_, podman_, {}, CleanupOptions{50, 2}, [] {
    return FsUsage{100, 50, 50};
  });
  EXPECT_FALSE(none.exceeded);
  EXPECT_TRUE(none.removed.empty());
}

}  // namespace
}  // namespace lca::precache
