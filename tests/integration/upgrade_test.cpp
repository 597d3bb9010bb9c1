// Upgrade, Rollback and Idle end to end on the real bed (tests/support/agent_host.hpp): the
// real lifecycle-agent on a throwaway ostree host, a real seed in a real registry, simulated
// reboots. Then the crash matrix: the daemon killed at every journaled host step of a whole
// cycle, restarted, and required to converge.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "agent/controller/step_tables.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "tests/support/agent_host.hpp"
#include "tests/support/etcd.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
using test::AgentHost;

std::vector<std::string> Stages(const Json& o) {
  std::vector<std::string> out;
  for (const auto& s : o["status"].value("validNextStages", Json::array())) out.push_back(s);
  return out;
}

std::vector<std::string> Stateroots(const fs::path& sysroot) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(sysroot / "ostree/deploy")) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<stateroot::Deployment> Deployments(const fs::path& sysroot) {
  stateroot::OstreeSysroot s(sysroot);
  return s.Deployments();
}

Json PrepPatch(int64_t init_monitor_timeout = 0, const Json& annotations = Json::object()) {
  Json spec = {{"stage", "Prep"},
               {"seedImageRef",
                {{"version", test::SeedBed::kVersion}, {"image", test::SeedBedSuite::bed->image}}}};
  if (init_monitor_timeout > 0)
    spec["autoRollbackOnFailure"] = {{"initMonitorTimeoutSeconds", init_monitor_timeout}};
  Json p = {{"spec", spec}};
  if (!annotations.empty()) p["metadata"] = {{"annotations", annotations}};
  return p;
}

auto Cond(const std::string& type, const std::string& status = "True") {
  return [type, status](const Json& o) { return AgentHost::ConditionStatus(o, type) == status; };
}

class UpgradeTest : public test::SeedBedSuite {
 protected:
  void SetUp() override {
    test::SeedBedSuite::SetUp();
    if (HasFatalFailure()) return;
    host_ = std::make_unique<AgentHost>(tmp_.path(), *bed);
  }
  void TearDown() override {
    if (HasFailure() && host_)
      std::cerr << "---- daemon log ----\n" << host_->DaemonLog() << "----\n";
    host_.reset();
  }

  void Hook(const std::string& phase, const std::string& name, const std::string& body) {
    WriteFileAtomic(host_->hooks(phase) / name, "#!/bin/sh\n" + body + "\n", 0755);
  }

  // Prep, then Upgrade up to the reboot request, then the simulated reboot.
  void PrepUpgradeAndBoot(int64_t init_monitor_timeout = 0,
                          const Json& annotations = Json::object()) {
    host_->Start();
    host_->Patch(PrepPatch(init_monitor_timeout, annotations));
    auto o = host_->WaitFor(Cond("PrepCompleted"), "PrepCompleted");
    EXPECT_EQ(Stages(o), (std::vector<std::string>{"Idle", "Upgrade"}));
    host_->Patch({{"spec", {{"stage", "Upgrade"}}}});
    host_->WaitFor([&](const Json&) { return host_->Reboots() == 1; }, "the reboot request");
    EXPECT_EQ(host_
                  ->Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p",
                         R"({"metadata":{"labels":{"x":"y"}}})"})
                  .code,
              1)
        << "the object is sealed while the host reboots";
    const Json served = host_->Object();
    EXPECT_EQ(Stages(served), std::vector<std::string>{})
        << "no next stage is offered while every patch is refused";
    const uint64_t served_rv =
        std::stoull(served["metadata"]["resourceVersion"].get<std::string>());
    // Before the reboot: the old deployment pinned, the new one default, the old stateroot's
    // record says what a boot back into it without lca means.
    const auto deps = Deployments(host_->sysroot());
    EXPECT_EQ(deps.at(0).stateroot, AgentHost::kTarget);
    EXPECT_EQ(deps.at(1).stateroot, "rhcos");
    EXPECT_TRUE(deps.at(1).pinned);
    const Json old_record = ParseJson(ReadFile(host_->StateDir("rhcos") / "ibu.json"), "old");
    EXPECT_EQ(AgentHost::ConditionMessage(old_record, "UpgradeInProgress"),
              "Uncontrolled rollback");
    EXPECT_TRUE(fs::exists(host_->StateDir(AgentHost::kTarget) / "ibu.json"));
    host_->Reboot();
    EXPECT_EQ(host_->BootedStateroot(), AgentHost::kTarget);
    EXPECT_NE(ReadFile(host_->cmdline_file()).find("ibu=4.15.2"), std::string::npos);
    EXPECT_GT(std::stoull(host_->Object()["metadata"]["resourceVersion"].get<std::string>()),
              served_rv)
        << "resourceVersion never goes back across the pivot boot";
  }

  test::TempDir tmp_{"lca-upgrade-it"};
  std::unique_ptr<AgentHost> host_;
};

TEST_F(UpgradeTest, SuccessThenFinalizeRemovesTheOldStateroot) {
  Hook("pre-pivot", "10-record",
       "echo \"$LCA_PHASE $LCA_TARGET_STATEROOT\" > '" + (tmp_ / "pre-pivot.ran").string() + "'");
  Hook("post-pivot", "10-record",
       "echo \"$LCA_PHASE $LCA_BOOTED_STATEROOT\" > '" + (tmp_ / "post-pivot.ran").string() + "'");
  PrepUpgradeAndBoot();
  auto o = host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted");
  EXPECT_EQ(Stages(o), (std::vector<std::string>{"Idle", "Rollback"}));
  EXPECT_EQ(ReadFile(tmp_ / "pre-pivot.ran"), "pre-pivot rhcos_4.15.2\n");
  EXPECT_EQ(ReadFile(tmp_ / "post-pivot.ran"), "post-pivot rhcos_4.15.2\n");
  EXPECT_NE(ReadFileIfExists(tmp_ / "systemctl.log")
                .value_or("")
                .find("disable lca-init-monitor.service"),
            std::string::npos);
  ASSERT_EQ(o["status"]["history"].size(), 2u);
  host_->Patch({{"spec", {{"stage", "Idle"}}}});
  o = host_->WaitFor(Cond("Idle"), "Idle");
  EXPECT_EQ(Stages(o), (std::vector<std::string>{"Prep"}));
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{AgentHost::kTarget}));
  const auto deps = Deployments(host_->sysroot());
  ASSERT_EQ(deps.size(), 1u);
  EXPECT_FALSE(deps[0].pinned);
  EXPECT_FALSE(fs::exists(host_->StateDir() / "workspace"));
}

// The product docs' procedure (tests/fixtures/doc-commands.txt) with lcactl for oc, verbatim,
// on the real bed: Prep really prepares, Upgrade really pivots, Idle finalizes; the docs'
// Rollback line, met after the finalize, is refused as the operator refuses it.
TEST_F(UpgradeTest, TheProductDocsProcedureWithLcactlForOc) {
  host_->Start();
  // The docs' prerequisite: the seed is named in the CR before Prep.
  host_->Patch(
      {{"spec",
        {{"seedImageRef", {{"version", test::SeedBed::kVersion}, {"image", bed->image}}}}}});
  std::vector<std::string> lines;
  {
    std::istringstream in(
        ReadFile(std::string(LCA_TEST_SOURCE_DIR) + "/tests/fixtures/doc-commands.txt"));
    for (std::string l; std::getline(in, l);) {
      if (!l.empty() && l[0] != '#') lines.push_back("lcactl " + l.substr(3));
    }
  }
  ASSERT_EQ(lines.size(), 9u);
  auto run = [&](size_t i) {
    const auto r = host_->Shell(lines.at(i));
    EXPECT_EQ(r.code, 0) << lines[i] << "\n" << r.err;
    return r;
  };
  auto yaml_condition = [&](size_t i, const std::string& type) {
    const Json list = ParseYaml(run(i).out, lines[i]);
    return AgentHost::ConditionStatus(list["items"].at(0), type);
  };
  run(0);  // Prep
  auto w = host_->Shell(
      "lcactl wait ibu upgrade --for=condition=PrepCompleted --timeout=10m "
      "-n openshift-lifecycle-agent");
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_EQ(yaml_condition(1, "PrepCompleted"), "True");
  run(2);  // Upgrade
  host_->WaitFor([&](const Json&) { return host_->Reboots() == 1; }, "the reboot request");
  host_->Reboot();
  w = host_->Shell("lcactl wait ibu --for=condition=UpgradeCompleted --timeout=10m");
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_EQ(yaml_condition(3, "UpgradeCompleted"), "True");
  EXPECT_EQ(yaml_condition(4, "UpgradeCompleted"), "True");
  run(5);  // Idle: finalize
  host_->WaitFor(Cond("Idle"), "Idle");
  EXPECT_EQ(yaml_condition(6, "Idle"), "True");
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{AgentHost::kTarget}));
  const auto rollback = run(7);  // Rollback after the finalize: nothing to roll back to
  EXPECT_NE(rollback.err.find("Warning: spec.stage: \"Rollback\" is not in "
                              "status.validNextStages [Prep]"),
            std::string::npos)
      << rollback.err;
  run(8);  // Idle again, with -n
  EXPECT_EQ(host_->WaitFor(Cond("Idle"), "Idle")["spec"]["stage"], "Idle");
}

// extraManifests are checked at Prep (warnings into the annotation, the reference's message)
// and exported at Upgrade; the agent, installed on the booted release and missing from the
// seed, is carried into the new stateroot; Idle removes the annotation.
TEST_F(UpgradeTest, ExtraManifestsWarnAtPrepExportAtUpgradeAndTheAgentIsCarried) {
  const fs::path booted_dep =
      host_->sysroot() / "ostree/deploy/rhcos/deploy" / (host_->host().commit() + ".0");
  EnsureDir(booted_dep / "usr/bin", 0755);
  EnsureDir(booted_dep / "usr/lib/systemd/system", 0755);
  WriteFileAtomic(booted_dep / "usr/bin/lifecycle-agent", "agent-binary", 0755);
  WriteFileAtomic(booted_dep / "usr/lib/systemd/system/lifecycle-agent.service",
                  "[Service]\nExecStart=/usr/bin/lifecycle-agent\n", 0644);
  EnsureDir(tmp_ / "etc/configmaps/site", 0755);
  WriteFileAtomic(tmp_ / "etc/configmaps/site/extra.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: site\n"
                  "data:\n  a.yaml: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n"
                  "      name: tuned\n      namespace: not-on-this-cluster\n",
                  0644);
  host_->Start();
  Json prep = PrepPatch();
  prep["spec"]["extraManifests"] = {{{"name", "extra"}, {"namespace", "site"}}};
  host_->Patch(prep);
  auto o = host_->WaitFor(Cond("PrepCompleted"), "PrepCompleted");
  EXPECT_EQ(AgentHost::ConditionMessage(o, "PrepCompleted"),
            "Prep stage completed with extramanifests validation warning. Please check the "
            "annotation 'extra-manifest.lca.openshift.io/validation-warning' for details.");
  EXPECT_EQ(
      o["metadata"]["annotations"].value("extra-manifest.lca.openshift.io/validation-warning", ""),
      "ConfigMap[tuned] - namespace not-on-this-cluster not found on cluster or not added "
      "in configmap in right order");

  host_->Patch({{"spec", {{"stage", "Upgrade"}}}});
  host_->WaitFor([&](const Json&) { return host_->Reboots() == 1; }, "the reboot request");
  const fs::path target = host_->sysroot() / "ostree/deploy" / AgentHost::kTarget;
  EXPECT_NE(ReadFile(target / "var/opt/extra-manifests/group1/01_ConfigMap_tuned_not-on-this-"
                              "cluster.yaml")
                .find("name: tuned"),
            std::string::npos);
  EXPECT_EQ(ReadFile(target / "var/lib/lca/bin/lifecycle-agent"), "agent-binary");
  const auto deps = Deployments(host_->sysroot());
  ASSERT_EQ(deps.at(0).stateroot, AgentHost::kTarget);
  const fs::path units = deps.at(0).dir / "etc/systemd/system";
  EXPECT_NE(ReadFile(units / "lifecycle-agent.service")
                .find("ExecStart=/var/lib/lca/bin/lifecycle-agent"),
            std::string::npos);
  EXPECT_TRUE(fs::is_symlink(units / "multi-user.target.wants/lifecycle-agent.service"));

  host_->Reboot();
  host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted");
  host_->Patch({{"spec", {{"stage", "Idle"}}}});
  o = host_->WaitFor(Cond("Idle"), "Idle");
  EXPECT_FALSE(o["metadata"]
                   .value("annotations", Json::object())
                   .contains("extra-manifest.lca.openshift.io/validation-warning"));
}

TEST_F(UpgradeTest, DisallowedExtraManifestFailsPrepBeforeAnythingIsMade) {
  EnsureDir(tmp_ / "etc/configmaps/site", 0755);
  WriteFileAtomic(tmp_ / "etc/configmaps/site/mc.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mc\n  namespace: site\n"
                  "data:\n  mc.yaml: |\n    apiVersion: machineconfiguration.openshift.io/v1\n"
                  "    kind: MachineConfig\n    metadata:\n      name: 99-extra\n",
                  0644);
  host_->Start();
  Json prep = PrepPatch();
  prep["spec"]["extraManifests"] = {{{"name", "mc"}, {"namespace", "site"}}};
  host_->Patch(prep);
  const auto o = host_->WaitFor(Cond("PrepCompleted", "False"), "Prep failed");
  EXPECT_EQ(AgentHost::ConditionMessage(o, "PrepInProgress"),
            "failed to validate IBU spec: extraManifests: MachineConfig[99-extra] in "
            "extramanifests is not allowed");
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
}

// recoveryBackup: the TALM-style backup (recovery/) is the last pre-pivot step, against a real
// etcd and a fake host tree; the upgrade then goes on as usual.
class UpgradeWithBackupTest : public UpgradeTest {
 protected:
  void SetUp() override {
    UpgradeTest::SetUp();
    for (const std::string pod :
         {"kube-apiserver-pod", "kube-controller-manager-pod", "kube-scheduler-pod", "etcd-pod"}) {
      const fs::path d = root_ / "etc/kubernetes/static-pod-resources" / (pod + "-7");
      EnsureDir(d, 0755);
      WriteFileAtomic(d / (pod + ".yaml"), "rev 7 " + pod + "\n", 0644);
    }
    WriteFileAtomic(root_ / "etc/hosts", "127.0.0.1 localhost\n", 0644);
    EnsureDir(root_ / "usr/local/bin", 0755);
    EnsureDir(root_ / "var/lib/kubelet", 0755);
    WriteFileAtomic(tmp_ / "hostcmd",
                    "#!/bin/sh\necho \"$*\" >> '" + (tmp_ / "hostcmd.log").string() + "'\n", 0755);
  }
  void Configure(const std::string& etcd_endpoint) {
    const Json settings = {{"root", root_.string()},
                           {"commandPrefix", {(tmp_ / "hostcmd").string()}},
                           {"etcdEndpoints", {etcd_endpoint}},
                           {"backupSpaceMarginBytes", 0},
                           {"backupRecoveryScript", ""}};
    WriteFileAtomic(tmp_ / "recovery.json", settings.dump(2), 0600);
    WriteFileAtomic(
        tmp_ / "none.yaml",
        "recoveryBackup: true\nrecoveryConfig: " + (tmp_ / "recovery.json").string() + "\n", 0644);
  }
  fs::path root_ = tmp_ / "root";
};

TEST_F(UpgradeWithBackupTest, BackupTakenBeforeThePivot) {
  // Where the host keeps it: the size estimate reads its db.
  test::EtcdServer etcd(root_ / "var/lib/etcd", tmp_ / "etcd.log");
  etcd.Put("cluster", "state");
  Configure(etcd.endpoint());
  PrepUpgradeAndBoot();
  host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted");
  const fs::path backup = root_ / "var/recovery";
  EXPECT_TRUE(fs::exists(backup / "manifest.json"));
  bool snapshot = false;
  for (const auto& e : fs::directory_iterator(backup / "cluster")) {
    snapshot = snapshot || e.path().filename().string().rfind("snapshot_", 0) == 0;
  }
  EXPECT_TRUE(snapshot) << "no etcd snapshot in " << backup;
  EXPECT_EQ(ReadFile(backup / "etc/hosts"), "127.0.0.1 localhost\n");
  EXPECT_NE(host_->DaemonLog().find("upgrade.recovery-backup"), std::string::npos);
}

TEST_F(UpgradeWithBackupTest, FailedBackupFailsTheUpgradeAndKeepsTheOldDefault) {
  Configure("http://127.0.0.1:" + std::to_string(test::FreePort()));
  host_->Start();
  host_->Patch(PrepPatch());
  host_->WaitFor(Cond("PrepCompleted"), "PrepCompleted");
  host_->Patch({{"spec", {{"stage", "Upgrade"}}}});
  const auto o = host_->WaitFor(Cond("UpgradeCompleted", "False"), "Upgrade failed");
  const std::string msg = AgentHost::ConditionMessage(o, "UpgradeInProgress");
  EXPECT_NE(msg.find("pre-upgrade recovery backup: "), std::string::npos) << msg;
  EXPECT_EQ(host_->Reboots(), 0);
  EXPECT_EQ(Deployments(host_->sysroot()).at(0).stateroot, "rhcos");
  EXPECT_FALSE(fs::exists(root_ / "var/recovery/manifest.json"));
}

TEST_F(UpgradeTest, ManualRollbackThenFinalizeRemovesTheNewStateroot) {
  PrepUpgradeAndBoot();
  host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted");
  host_->Patch({{"spec", {{"stage", "Rollback"}}}});
  host_->WaitFor([&](const Json&) { return host_->Reboots() == 2; }, "the rollback reboot");
  EXPECT_EQ(Deployments(host_->sysroot()).at(0).stateroot, "rhcos");
  host_->Reboot();
  EXPECT_EQ(host_->BootedStateroot(), "rhcos");
  auto o = host_->WaitFor(Cond("RollbackCompleted"), "RollbackCompleted");
  EXPECT_EQ(Stages(o), (std::vector<std::string>{"Idle"}));
  EXPECT_FALSE(o["status"].contains("rollbackAvailabilityExpiration"));
  host_->Patch({{"spec", {{"stage", "Idle"}}}});
  o = host_->WaitFor(Cond("Idle"), "Idle");
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
  const auto deps = Deployments(host_->sysroot());
  ASSERT_EQ(deps.size(), 1u);
  EXPECT_FALSE(deps[0].pinned) << "the pin is removed with the upgrade closed";
}

TEST_F(UpgradeTest, InitMonitorTimeoutRollsBackAndIdleAborts) {
  Hook("post-pivot", "10-never", "echo 'the new release is broken' >&2; exit 1");
  // post-reboot-config Disabled: the failing hook fails the Upgrade without rolling back, so the
  // init monitor's timeout is what rolls back.
  PrepUpgradeAndBoot(
      2, {{"auto-rollback-on-failure.lca.openshift.io/post-reboot-config", "Disabled"}});
  auto o = host_->WaitFor(Cond("UpgradeCompleted", "False"), "Upgrade failed");
  EXPECT_NE(AgentHost::ConditionMessage(o, "UpgradeInProgress").find("the new release is broken"),
            std::string::npos);
  EXPECT_EQ(Stages(o), (std::vector<std::string>{"Rollback"}));
  const auto r = test::MustRunArgv(
      {test::kCtlBin, "init-monitor", "--monitor", "--config", (tmp_ / "none.yaml").string(),
       "--sysroot", host_->sysroot().string(), "--state-dir", host_->StateDir().string(),
       "--proc-cmdline", host_->cmdline_file().string(), "--reboot-command",
       (tmp_ / "bin/reboot").string()},
      {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}});
  EXPECT_EQ(host_->Reboots(), 2);
  EXPECT_EQ(Deployments(host_->sysroot()).at(0).stateroot, "rhcos");
  host_->Reboot();
  o = host_->WaitFor(Cond("UpgradeCompleted", "False"), "the old stateroot's record");
  EXPECT_EQ(AgentHost::ConditionMessage(o, "UpgradeInProgress"),
            "Rollback due to LCA Init Monitor timeout, after 2s");
  EXPECT_EQ(Stages(o), (std::vector<std::string>{"Idle"}));
  host_->Patch({{"spec", {{"stage", "Idle"}}}});
  host_->WaitFor(Cond("Idle"), "Idle");
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
  EXPECT_FALSE(Deployments(host_->sysroot()).at(0).pinned);
}

TEST_F(UpgradeTest, PostPivotHookFailureRollsBackAutomatically) {
  Hook("post-pivot", "10-fail", "echo 'recert failed' >&2; exit 3");
  PrepUpgradeAndBoot();
  host_->WaitFor([&](const Json&) { return host_->Reboots() == 2; }, "the rollback reboot");
  host_->Reboot();
  EXPECT_EQ(host_->BootedStateroot(), "rhcos");
  auto o = host_->WaitFor(Cond("UpgradeCompleted", "False"), "Upgrade failed");
  const std::string msg = AgentHost::ConditionMessage(o, "UpgradeInProgress");
  EXPECT_EQ(msg.rfind("Rollback due to postpivot failure: hook ", 0), 0u) << msg;
  EXPECT_NE(msg.find("exited with status 3: recert failed"), std::string::npos) << msg;
  host_->Patch({{"spec", {{"stage", "Idle"}}}});
  host_->WaitFor(Cond("Idle"), "Idle");
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
}

TEST_F(UpgradeTest, InitMonitorExitsWithoutRollbackOnceUpgradeCompleted) {
  PrepUpgradeAndBoot(30);
  host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted");
  const auto t0 = std::chrono::steady_clock::now();
  test::MustRunArgv({test::kCtlBin, "init-monitor", "--monitor", "--config",
                     (tmp_ / "none.yaml").string(), "--sysroot", host_->sysroot().string(),
                     "--state-dir", host_->StateDir().string(), "--proc-cmdline",
                     host_->cmdline_file().string(), "--reboot-command",
                     (tmp_ / "bin/reboot").string()});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(host_->Reboots(), 1);
  EXPECT_EQ(Deployments(host_->sysroot()).at(0).stateroot, AgentHost::kTarget);
}

// ---------------------------------------------------------------------------------------------
// The crash matrix. A cycle is driven to its end while the daemon is killed (failpoint "crash",
// _exit 137) at one journaled step and restarted; it must converge to the end state of an
// uninterrupted run, or to a clean Failed whose abort leaves no stateroot, pin or file behind.

enum class Cycle { kUpgrade, kRollback, kAbort };

struct KillPoint {
  std::string step;
  Cycle cycle;
};

// Every step of every agent table (agent/controller/step_tables.hpp), with the cycle that
// reaches it. Recovery's backup and restore tables are killed in recovery_test's matrices.
std::vector<KillPoint> KillPoints() {
  std::vector<KillPoint> out;
  for (const auto& t : AllStepTables()) {
    if (t.failpoint_prefix != "step.") continue;
    const Cycle cycle = t.table == "Rollback" ? Cycle::kRollback
                        : t.table == "Abort"  ? Cycle::kAbort
                                              : Cycle::kUpgrade;
    for (const auto& step : t.steps) out.push_back({step, cycle});
  }
  return out;
}

const std::vector<KillPoint> kKillPoints = KillPoints();

class CrashMatrixTest : public UpgradeTest, public ::testing::WithParamInterface<KillPoint> {
 protected:
  // Restarts a crashed daemon (without the failpoint) and boots after a reboot request.
  void Supervise() {
    if (auto code = host_->Exited()) {
      ASSERT_EQ(*code, 137) << "the daemon exited by itself with " << *code;
      ++crashes_;
      host_->SetDaemonEnv({});
      const std::string step = GetParam().step;
      if (!pivoted_ && step != "upgrade.seal" && step != "upgrade.reboot") {
        // Before the pivot the booted deployment stays the default.
        EXPECT_EQ(Deployments(host_->sysroot()).at(0).stateroot, host_->BootedStateroot())
            << "after a kill at " << GetParam().step;
      }
      host_->Start();
    }
    if (host_->Reboots() > reboots_seen_) {
      reboots_seen_ = host_->Reboots();
      pivoted_ = true;
      host_->Reboot();
    }
  }
  Json Until(const std::function<bool(const Json&)>& pred, const std::string& what) {
    return host_->WaitFor(pred, what, std::chrono::seconds(120), [this] { Supervise(); });
  }
  static bool Failed(const Json& o) {
    for (const char* t : {"PrepCompleted", "UpgradeCompleted", "RollbackCompleted"}) {
      if (AgentHost::ConditionStatus(o, t) == "False") return true;
    }
    return false;
  }
  // A clean Failed: abort, and nothing of the upgrade is left.
  void AbortAndExpectNothingLeft() {
    host_->Patch({{"spec", {{"stage", "Idle"}}}});
    Until(Cond("Idle"), "Idle after abort");
    EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
    for (const auto& d : Deployments(host_->sysroot())) EXPECT_FALSE(d.pinned);
    EXPECT_FALSE(fs::exists(host_->sysroot() / "ostree/lca-prep"));
  }

  int crashes_ = 0;
  int reboots_seen_ = 0;
  bool pivoted_ = false;
};

TEST_P(CrashMatrixTest, KilledAtAStepConverges) {
  const KillPoint kp = GetParam();
  host_->SetDaemonEnv({{"LCA_FAILPOINTS", "step." + kp.step + "=crash"}});
  host_->Start();
  host_->Patch(PrepPatch());
  auto o = Until([](const Json& j) { return Cond("PrepCompleted")(j) || Failed(j); }, "Prep");
  ASSERT_FALSE(Failed(o)) << o.dump(2);
  if (kp.cycle == Cycle::kAbort) {
    AbortAndExpectNothingLeft();
  } else {
    host_->Patch({{"spec", {{"stage", "Upgrade"}}}});
    o = Until([](const Json& j) { return Cond("UpgradeCompleted")(j) || Failed(j); }, "Upgrade");
    if (Failed(o)) {
      // Only a kill between the seal and the reboot request may end here (the sealed record
      // is what this stateroot shows if it runs again without the reboot).
      EXPECT_EQ(kp.step, "upgrade.reboot") << o.dump(2);
      EXPECT_EQ(host_->BootedStateroot(), "rhcos");
      AbortAndExpectNothingLeft();
    } else if (kp.cycle == Cycle::kRollback) {
      host_->Patch({{"spec", {{"stage", "Rollback"}}}});
      Until(Cond("RollbackCompleted"), "RollbackCompleted");
      EXPECT_EQ(host_->BootedStateroot(), "rhcos");
      host_->Patch({{"spec", {{"stage", "Idle"}}}});
      Until(Cond("Idle"), "Idle");
      EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
      for (const auto& d : Deployments(host_->sysroot())) EXPECT_FALSE(d.pinned);
    } else {
      host_->Patch({{"spec", {{"stage", "Idle"}}}});
      Until(Cond("Idle"), "Idle");
      EXPECT_EQ(host_->BootedStateroot(), AgentHost::kTarget);
      EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{AgentHost::kTarget}));
      for (const auto& d : Deployments(host_->sysroot())) EXPECT_FALSE(d.pinned);
    }
  }
  EXPECT_EQ(crashes_, 1) << "the failpoint at " << kp.step << " never fired";
}

INSTANTIATE_TEST_SUITE_P(Steps, CrashMatrixTest, ::testing::ValuesIn(kKillPoints),
                         [](const auto& param_info) {
                           std::string n = param_info.param.step;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(CrashMatrixSize, AtLeastThirtyKillPoints) {
  const size_t n = std::size(kKillPoints);
  size_t steps = 0, recovery = 0;
  for (const auto& t : AllStepTables()) {
    steps += t.steps.size();
    if (t.failpoint_prefix != "step.") recovery += t.steps.size();
  }
  std::cout << "crash matrix: " << n << " kill points (Prep, Upgrade, Rollback, cleanup) here, "
            << recovery << " in recovery_test's backup and restore matrices; " << steps
            << " steps in all tables\n";
  EXPECT_GE(n, 30u);
  EXPECT_GT(n, 30u);
  EXPECT_GE(n + recovery, steps);
}

// A step that kills the daemon every time it starts (systemd would restart it forever): after
// maxStepAttempts (3) starts the stage fails with a message naming the step and the count,
// and abort leaves nothing of the upgrade behind.
TEST_F(UpgradeTest, StepKillingTheDaemonEveryTimeFailsPrepAfterThreeAttempts) {
  host_->SetDaemonEnv({{"LCA_FAILPOINTS", "step.prep.extract=crash"}});
  host_->Start();
  host_->Patch(PrepPatch());
  int restarts = 0;
  const Json o =
      host_->WaitFor(Cond("PrepCompleted", "False"), "Prep failed", std::chrono::seconds(180), [&] {
        if (auto code = host_->Exited()) {
          ASSERT_EQ(*code, 137) << "the daemon exited by itself with " << *code;
          ++restarts;
          host_->Start();  // as systemd would, failpoint still armed
        }
      });
  EXPECT_EQ(restarts, 3);
  const std::string msg = AgentHost::ConditionMessage(o, "PrepInProgress");
  EXPECT_NE(msg.find("step prep.extract was started 3 times without finishing"), std::string::npos)
      << msg;
  host_->Patch({{"spec", {{"stage", "Idle"}}}});
  host_->WaitFor(Cond("Idle"), "Idle after abort");
  EXPECT_EQ(Stateroots(host_->sysroot()), (std::vector<std::string>{"rhcos"}));
  for (const auto& d : Deployments(host_->sysroot())) EXPECT_FALSE(d.pinned);
  EXPECT_FALSE(fs::exists(host_->sysroot() / "ostree/lca-prep"));
  EXPECT_FALSE(fs::exists(host_->StateDir() / "workspace"));
}

}  // namespace
}  // namespace lca
