// Human output against golden files. To accept a deliberate change, run the test with
// LCA_UPDATE_GOLDEN=1 and review the diff of tests/golden/.
#include "agent/status/render.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"

namespace lca {
namespace {

const std::filesystem::path kSrc = LCA_TEST_SOURCE_DIR;
const TimePoint kNow = ParseTime("2026-11-22T10:00:00Z");

api::ImageBasedUpgrade Fixture(const std::string& name) {
  return api::FromJson(ParseJson(ReadFile(kSrc / "tests/fixtures" / (name + ".json")), name));
}

void ExpectGolden(const std::string& got, const std::string& golden) {
  const auto path = kSrc / "tests/golden" / golden;
  if (std::getenv("LCA_UPDATE_GOLDEN") != nullptr) {
    WriteFileAtomic(path, got, 0644);
    return;
  }
  const auto want = ReadFileIfExists(path);
  ASSERT_TRUE(want.has_value()) << "missing " << path << "; got:\n" << got;
  EXPECT_EQ(got, *want) << "differs from " << path;
}

TEST(Render, StatusPrepInProgress) {
  ExpectGolden(RenderHuman(Fixture("status-prep-in-progress"), kNow),
               "status-prep-in-progress.txt");
}

TEST(Render, StatusUpgradeCompleted) {
  ExpectGolden(RenderHuman(Fixture("status-upgrade-completed"), kNow),
               "status-upgrade-completed.txt");
}

TEST(Render, StatusOfAFreshObject) {
  ExpectGolden(RenderHuman(api::NewDefault(kNow, "u"), kNow), "status-fresh.txt");
}

TEST(Render, GetTable) {
  const auto ibu = Fixture("status-upgrade-completed");
  ExpectGolden(RenderTable(ibu, kNow, false, false) + RenderTable(ibu, kNow, true, false) +
                   RenderTable(ibu, kNow, false, true),
               "get-upgrade-completed.txt");
}

TEST(Render, YamlOfTheObjectRoundTrips) {
  const auto ibu = Fixture("status-upgrade-completed");
  EXPECT_EQ(api::FromJson(ParseYaml(ToYaml(api::ToJson(ibu)), "yaml")), ibu);
}

}  // namespace
}  // namespace lca
