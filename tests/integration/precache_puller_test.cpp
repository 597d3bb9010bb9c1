// The puller and the space plan on the real bed: a registry with auth holding 22 images made by
// the test (two families sharing a base layer), real podman with its own root (vfs), real
// skopeo. The test process runs in a private mount namespace with a tmpfs over /var/lib.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
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
  std::vector<std::string> errors;
  const auto layers = InspectAll(runner_, refs, Access(), 8, &errors);
  ASSERT_TRUE(errors.empty()) << errors.front();
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
