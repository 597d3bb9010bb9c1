// The seed contract and Prep's rules over it (reference §3.2.1, §3.3, §3.6, §5.7, §10).
#include "stateroot/seed_format.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "stateroot/seed_image.hpp"
#include "tests/support/expect_error.hpp"

namespace lca::stateroot {
namespace {

const std::string kSha = std::string(64, 'a');

std::string ErrorOf(const std::function<void()>& f) { return test::InvalidMessage(f); }

TEST(SeedLabels, FormatVersionMustBeFour) {
  EXPECT_EQ(ErrorOf([] { ValidateSeedLabels(Json::object()); }),
            "failed to find seed format version label "
            "com.openshift.lifecycle-agent.seed_format_version in seed image: please build a new "
            "image using the latest version of the lca-cli");
  EXPECT_EQ(ErrorOf([] {
              ValidateSeedLabels(Json{{"com.openshift.lifecycle-agent.seed_format_version", "3"}});
            }),
            "seed image format version mismatch: expected 4, got 3");
  EXPECT_FALSE(
      ValidateSeedLabels(Json{{"com.openshift.lifecycle-agent.seed_format_version", "4"}}));
}

TEST(SeedLabels, ClusterInfoIsParsed) {
  Json labels = {
      {"com.openshift.lifecycle-agent.seed_format_version", "4"},
      {"com.openshift.lifecycle-agent.seed_cluster_info",
       R"({"seed_cluster_ocp_version":"4.15.2","release_registry":"quay.io","has_proxy":false,"has_fips":true,"node_ips":["10.0.0.5"]})"}};
  auto info = ValidateSeedLabels(labels);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->seed_cluster_ocp_version, "4.15.2");
  EXPECT_EQ(info->release_registry, "quay.io");
  EXPECT_TRUE(info->has_fips);
  EXPECT_EQ(info->raw["node_ips"][0], "10.0.0.5");
  labels["com.openshift.lifecycle-agent.seed_cluster_info"] = "{broken";
  EXPECT_NE(ErrorOf([&] { ValidateSeedLabels(labels); }).find("invalid JSON"), std::string::npos);
  labels["com.openshift.lifecycle-agent.seed_cluster_info"] = R"({"has_fips":"yes"})";
  EXPECT_NE(ErrorOf([&] { ValidateSeedLabels(labels); }).find("has_fips must be a boolean"),
            std::string::npos);
}

TEST(Versions, SemverOrdering) {
  EXPECT_EQ(CompareVersions("4.15.2", "4.14.1"), 1);
  EXPECT_EQ(CompareVersions("4.14.10", "4.14.9"), 1);
  EXPECT_EQ(CompareVersions("4.14.1", "4.14.1"), 0);
  EXPECT_EQ(CompareVersions("4.14.8+metadata", "4.14.8"), 0);
  EXPECT_EQ(CompareVersions("4.15.0-rc.1", "4.15.0"), -1);
  EXPECT_EQ(CompareVersions("4.15.0-rc.2", "4.15.0-rc.10"), -1);
  EXPECT_EQ(
      CompareVersions("4.15.0-0.nightly-2023-12-04-223539", "4.15.0-0.nightly-2023-12-03-000000"),
      1);
  EXPECT_EQ(CompareVersions("4.15.0-alpha", "4.15.0-1"), 1);
  EXPECT_EQ(CompareVersions("4.15", "4.15.0"), 0);
  EXPECT_NE(ErrorOf([] { CompareVersions("four", "4.1"); }).find("is not a version"),
            std::string::npos);
}

TEST(Versions, SeedMustBeNewer) {
  // TestImageBasedUpgradeReconciler_validateSeedOcpVersion
  EXPECT_EQ(ErrorOf([] { CheckSeedVersionIsNewer("4.14.8+metadata", "4.14.8"); }),
            "seed OCP version (4.14.8+metadata) must be higher than current OCP version (4.14.8)");
  EXPECT_EQ(ErrorOf([] { CheckSeedVersionIsNewer("4.15.0-rc.1", "4.15.0"); }),
            "seed OCP version (4.15.0-rc.1) must be higher than current OCP version (4.15.0)");
  EXPECT_EQ(ErrorOf([] { CheckSeedVersionIsNewer("4.15.2", "4.14.1"); }), "accepted");
  EXPECT_EQ(ErrorOf([] { CheckSeedVersionMatchesSpec("4.15.2", "4.15.3"); }),
            "version specified in seed image (4.15.2) differs from version in spec (4.15.3)");
}

TEST(Deployments, IdTakesTheTextAfterTheLastDash) {
  // TestGetDeploymentFromDeploymentID: ids with many dashes; the seed creator's "second field"
  // reading is the inconsistency not to copy.
  auto d = ParseDeploymentId("rhcos-" + kSha + ".1");
  EXPECT_EQ(d.deployment, kSha + ".1");
  EXPECT_EQ(d.checksum, kSha);
  d = ParseDeploymentId("my-os-name-" + kSha + ".0");
  EXPECT_EQ(d.checksum, kSha);
  EXPECT_NE(ErrorOf([] { ParseDeploymentId("nodash"); }).find("failed to get deployment"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseDeploymentId("rhcos-abc.0"); }).find("64-hex-digit"),
            std::string::npos);
}

TEST(Deployments, BootedFromRpmOstreeJson) {
  Json st = {{"deployments",
              {{{"id", "rhcos-" + std::string(64, 'b') + ".0"}, {"booted", false}},
               {{"id", "rhcos-" + kSha + ".1"}, {"booted", true}}}}};
  EXPECT_EQ(SeedBootedDeployment(st).checksum, kSha);
  st["deployments"][1]["booted"] = false;
  EXPECT_EQ(ErrorOf([&] { SeedBootedDeployment(st); }), "rpm-ostree.json: no booted deployment");
}

TEST(KernelArgs, FromMachineConfigPlusIbu) {
  Json mc = Json::parse(
      R"({"spec":{"kernelArguments":["rcupdate.rcu_normal_after_boot=0","systemd.cpu_affinity=0,1"]}})");
  EXPECT_EQ(SeedKernelArgs(mc, "4.15.2"),
            (std::vector<std::string>{"rcupdate.rcu_normal_after_boot=0",
                                      "systemd.cpu_affinity=0,1", "ibu=4.15.2"}));
  mc["spec"]["fips"] = true;
  EXPECT_EQ(SeedKernelArgs(mc, "4.15.2").at(2), "fips=1");
  EXPECT_EQ(SeedKernelArgs(mc, "4.15.2").at(3), "boot=LABEL=boot");
  EXPECT_EQ(SeedKernelArgs(Json::object(), "4.15.2"), (std::vector<std::string>{"ibu=4.15.2"}));
}

TEST(EtcDeletions, ParsedAndHostileLinesRefused) {
  EXPECT_EQ(ParseEtcDeletions("/etc/a.conf\n\n  /etc/dir/b  \n"),
            (std::vector<std::string>{"etc/a.conf", "etc/dir/b"}));
  EXPECT_NE(ErrorOf([] { ParseEtcDeletions("/usr/bin/sh\n"); }).find("not a path under /etc"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseEtcDeletions("/etc/../usr/bin/sh\n"); }).find("'..'"),
            std::string::npos);
}

TEST(AutoRollback, ConfigMatchesTheGoWriter) {
  EXPECT_EQ(
      AutoRollbackConfig(0, false, false),
      Json::parse(
          R"({"monitor_enabled":true,"monitor_timeout":1800,"enabled_components":{"config":true,"postpivot":true}})"));
  EXPECT_EQ(
      AutoRollbackConfig(60, true, true),
      Json::parse(
          R"({"monitor_timeout":60,"enabled_components":{"config":false,"postpivot":false}})"));
}

TEST(SkopeoFailure, TheMessageWithoutLogFramingOrPreamble) {
  ProcessResult r;
  r.exit_code = 1;
  r.stderr_tail =
      "time=\"2026-11-22T11:28:01Z\" level=fatal msg=\"Error parsing image name "
      "\\\"docker://127.0.0.1:5001/ibu/seed:4.15.2\\\": reading manifest 4.15.2 in "
      "127.0.0.1:5001/ibu/seed: unauthorized: authentication required\"\n";
  EXPECT_EQ(SkopeoFailure(r),
            "reading manifest 4.15.2 in 127.0.0.1:5001/ibu/seed: unauthorized: authentication "
            "required");
  r.stderr_tail = "time=\"x\" level=fatal msg=\"copying system image: Digest did not match\"\n";
  EXPECT_EQ(SkopeoFailure(r), "copying system image: Digest did not match");
  r.stderr_tail = "something else entirely\n\n";
  EXPECT_EQ(SkopeoFailure(r), "exited with status 1: something else entirely");
}

}  // namespace
}  // namespace lca::stateroot
