// Container-storage cleanup rules (reference-lca §3.4) without podman: usage arithmetic, the
// annotations, the candidate order and what is never a candidate.
#include <gtest/gtest.h>

#include "precache/podman.hpp"
#include "precache/storage_cleanup.hpp"

namespace lca::precache {
namespace {

LocalImage Img(std::string id, std::vector<std::string> names, int64_t created,
               uint64_t containers = 0) {
  LocalImage i;
  i.id = std::move(id);
  i.names = std::move(names);
  i.created = created;
  i.dangling = i.names.empty();
  i.containers = containers;
  return i;
}

TEST(PrecacheCleanup, UsageIsSizeMinusAvailableOverSizeWithIntegerDivision) {
  EXPECT_EQ(UsagePercent(FsUsage{1000, 0, 500}), 50);
  EXPECT_EQ(UsagePercent(FsUsage{1000, 0, 491}), 50);  // 50.9 -> 50
  EXPECT_EQ(UsagePercent(FsUsage{1000, 0, 0}), 100);
  EXPECT_EQ(UsagePercent(FsUsage{0, 0, 0}), 0);
}

TEST(PrecacheCleanup, ThresholdComesFromTheAnnotationsOrIsOff) {
  EXPECT_EQ(CleanupThresholdFromAnnotations({}), 50);
  EXPECT_EQ(CleanupThresholdFromAnnotations({{kAnnotationCleanupThreshold, "70"}}), 70);
  EXPECT_EQ(CleanupThresholdFromAnnotations({{kAnnotationCleanupOnPrep, "Disabled"}}),
            std::nullopt);
  // Unparsable: off (and logged), as the reference.
  EXPECT_EQ(CleanupThresholdFromAnnotations({{kAnnotationCleanupThreshold, "seventy"}}),
            std::nullopt);
  EXPECT_EQ(CleanupThresholdFromAnnotations({{kAnnotationCleanupThreshold, "101"}}), std::nullopt);
  EXPECT_EQ(CleanupThresholdFromAnnotations({{kAnnotationCleanupOnPrep, "Enabled"}}), 50);
}

TEST(PrecacheCleanup, CandidatesAreDanglingFirstThenOldestAndNeverKeptOrUsed) {
  const std::vector<LocalImage> images = {
      Img("new", {"r.io/a:new"}, 300),
      Img("old", {"r.io/a:old"}, 100),
      Img("dangling-new", {}, 250),
      Img("pinned", {"r.io/pinned:1"}, 50),
      Img("used", {"r.io/used:1"}, 10, /*containers=*/1),
      Img("dangling-old", {}, 200),
      Img("crio-used", {"r.io/crio:1"}, 20),
      Img("listed", {"r.io/listed"}, 30),  // a name without a tag is :latest
  };
  KeepSet keep;
  keep.refs = {"pinned", "r.io/crio:1", "r.io/listed:latest"};
  std::vector<std::string> ids;
  for (const auto& c : CleanupCandidates(images, keep)) ids.push_back(c.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"dangling-old", "dangling-new", "old", "new"}));
}

TEST(PrecacheCleanup, LocalImagesMatchTagsDigestsAndLatest) {
  LocalImage i = Img("x", {"r.io/a/b:1", "r.io/c"}, 0);
  i.repo_digests = {"r.io/a/b@sha256:abc"};
  LocalImages local({i});
  EXPECT_TRUE(local.Contains("r.io/a/b:1"));
  EXPECT_TRUE(local.Contains("r.io/a/b@sha256:abc"));
  EXPECT_TRUE(local.Contains("r.io/a/b:ignored@sha256:abc"));
  EXPECT_TRUE(local.Contains("r.io/c:latest"));
  EXPECT_TRUE(local.Contains("r.io/c"));
  EXPECT_FALSE(local.Contains("r.io/a/b:2"));
  EXPECT_FALSE(local.Contains("r.io/a/b@sha256:abd"));
  EXPECT_FALSE(local.Contains("b:1")) << "short names resolve through search registries";
  EXPECT_EQ(NormalizeReference("r.io:5000/a"), "r.io:5000/a:latest");
  EXPECT_EQ(NormalizeReference("r.io:5000/a:t"), "r.io:5000/a:t");
}

}  // namespace
}  // namespace lca::precache
