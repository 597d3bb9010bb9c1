// Prep's Precache phase, the parts without podman: the pull secret it uses, its progress message
// and the environment LCA's operator reads.
#include "agent/controller/handlers/precache_phase.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "precache/progress.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

TEST(PrecachePhase, PullSecretIsTheNodesMergedWithTheSpecsWhichWins) {
  test::TempDir tmp;
  AgentPaths paths{tmp / "state", tmp / "sysroot", tmp / "etc", tmp / "containers"};
  api::ImageBasedUpgrade ibu;
  const auto node = tmp / "node.json";
  // Neither: anonymous.
  EXPECT_EQ(PrecachePullSecret(ibu, paths, node), std::nullopt);
  WriteFileAtomic(node, R"({"auths":{"a.io":{"auth":"bm9kZQ=="},"b.io":{"auth":"bm9kZQ=="}}})",
                  0600);
  ibu.spec.seed_image_ref.pull_secret_ref = api::PullSecretRef{"s"};
  // The spec names a secret that is not there: the node's alone.
  EXPECT_EQ(ParseJson(*PrecachePullSecret(ibu, paths, node), "x")["auths"].size(), 2u);
  std::filesystem::create_directories(tmp / "etc/secrets/s");
  WriteFileAtomic(tmp / "etc/secrets/s/.dockerconfigjson",
                  R"({"auths":{"b.io":{"auth":"c3BlYw=="},"c.io":{"auth":"c3BlYw=="}}})", 0600);
  const Json merged = ParseJson(*PrecachePullSecret(ibu, paths, node), "x");
  EXPECT_EQ(merged["auths"].size(), 3u);
  EXPECT_EQ(merged["auths"]["a.io"]["auth"], "bm9kZQ==");
  EXPECT_EQ(merged["auths"]["b.io"]["auth"], "c3BlYw==");
  WriteFileAtomic(node, "{\"not\":\"a secret\"}", 0600);
  try {
    PrecachePullSecret(ibu, paths, node);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(node.string()), std::string::npos) << e.what();
  }
}

TEST(PrecachePhase, ProgressMessageHasTheReferencesShapeWithBytes) {
  precache::PrecacheStatus s{20, 7, 1, {"x"}};
  EXPECT_EQ(PrecacheProgressMessage(s, 0, 0),
            "Precache job in progress. job-name: lca-prep-precache, job-namespace: "
            "openshift-lifecycle-agent. total: 20 (pulled: 7, failed: 1)");
  EXPECT_EQ(PrecacheProgressMessage(s, 3 << 20, 40 << 20),
            "Precache job in progress. job-name: lca-prep-precache, job-namespace: "
            "openshift-lifecycle-agent. total: 20 (pulled: 7, failed: 1), 3.0 MiB of 40.0 MiB");
}

TEST(PrecachePhase, EnvironmentAsLcasOperatorReadsIt) {
  PrecacheOptions o;
  ::setenv("PRECACHE_BEST_EFFORT", "true", 1);  // only "TRUE" counts
  ::setenv("MAX_PULL_THREADS", "0", 1);         // < 1: keep
  ApplyPrecacheEnvironment(o);
  EXPECT_FALSE(o.best_effort);
  EXPECT_EQ(o.concurrency, 10u);
  ::setenv("PRECACHE_BEST_EFFORT", "TRUE", 1);
  ::setenv("MAX_PULL_THREADS", "4", 1);
  ApplyPrecacheEnvironment(o);
  EXPECT_TRUE(o.best_effort);
  EXPECT_EQ(o.concurrency, 4u);
  ::unsetenv("PRECACHE_BEST_EFFORT");
  ::unsetenv("MAX_PULL_THREADS");
}

}  // namespace
}  // namespace lca
