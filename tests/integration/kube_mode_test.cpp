// Kubernetes mode end to end: the real lifecycle-agent on a throwaway ostree host with a real
// seed in a real registry (tests/support/agent_host.hpp), mirroring the ImageBasedUpgrade CR of
// the API server stand-in (tests/support/kube_standin.hpp), driven by the real kubectl.
#include <gtest/gtest.h>

#include "common/atomic_file.hpp"
#include "tests/support/agent_host.hpp"
#include "tests/support/kube_standin.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
using test::AgentHost;
using test::KubeStandin;

const std::string kTimeout = "--timeout=180s";

class KubeModeTest : public test::SeedBedSuite {
 protected:
  void SetUp() override {
    test::SeedBedSuite::SetUp();
    if (HasFatalFailure()) return;
    host_ = std::make_unique<AgentHost>(tmp_.path(), *bed);
    kube_ = std::make_unique<KubeStandin>(test::KubeStandinOptions{.bookmark_interval_seconds = 1});
    // The agent's own identity, from a token file (as a service account's), so a test can
    // revoke it and hand out a new one.
    agent_token_ =
        kube_->AddToken("system:serviceaccount:openshift-lifecycle-agent:lifecycle-agent");
    WriteFileAtomic(tmp_ / "agent-token", agent_token_ + "\n", 0600);
    WriteFileAtomic(tmp_ / "agent-kubeconfig",
                    "apiVersion: v1\nkind: Config\ncurrent-context: sno\n"
                    "clusters:\n- name: sno\n  cluster:\n    server: " +
                        kube_->server() +
                        "\n    certificate-authority: " + kube_->ca_file().string() +
                        "\nusers:\n- name: agent\n  user:\n    tokenFile: agent-token\n"
                        "contexts:\n- name: sno\n  context: {cluster: sno, user: agent}\n",
                    0600);
    host_->SetDaemonFlags({"--kubeconfig", (tmp_ / "agent-kubeconfig").string()});
  }
  void TearDown() override {
    if (HasFailure() && host_) {
      std::cerr << "---- daemon log ----\n" << host_->DaemonLog() << "----\n";
      std::cerr << "---- CR ----\n" << Kubectl({"get", "ibu", "upgrade", "-o", "yaml"}).out;
    }
    host_.reset();
    kube_.reset();
  }

  test::CmdResult Kubectl(const std::vector<std::string>& args) { return kube_->Kubectl(args); }

  // The daemon's /metrics over its socket.
  std::string Metrics() {
    return test::RunCmd({"/usr/bin/curl", "-sS", "--unix-socket",
                         (host_->dir() / "run/lca.sock").string(), "http://localhost/metrics"},
                        {})
        .out;
  }

  // The CR as kubectl sees it; null while it does not exist or the server is down.
  Json Cr() {
    const auto r = Kubectl({"get", "imagebasedupgrades.lca.openshift.io", "upgrade", "-o", "json"});
    if (r.code != 0) return Json();
    return ParseJson(r.out, "kubectl get");
  }

  Json WaitForCr(const std::function<bool(const Json&)>& pred, const std::string& what,
                 std::chrono::seconds timeout = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Json cr;
    while (std::chrono::steady_clock::now() < deadline) {
      cr = Cr();
      if (cr.is_object() && pred(cr)) return cr;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "timed out waiting for the CR: " << what << "\n" << cr.dump(2);
    return cr;
  }

  void KubectlPatch(const Json& patch) {
    const auto r = Kubectl({"patch", "imagebasedupgrades.lca.openshift.io", "upgrade",
                            "--type=merge", "-p", patch.dump()});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
  }
  void KubectlWait(const std::string& condition) {
    const auto r = Kubectl({"wait", "ibu/upgrade", "--for=condition=" + condition, kTimeout});
    ASSERT_EQ(r.code, 0) << "kubectl wait " << condition << ": " << r.out << r.err;
  }

  static Json PrepPatch() {
    return {
        {"spec",
         {{"stage", "Prep"},
          {"seedImageRef",
           {{"version", test::SeedBed::kVersion}, {"image", test::SeedBedSuite::bed->image}}}}}};
  }

  // The events about the CR (kubectl get events), as "reason: message" lines.
  std::vector<std::string> Events() {
    const auto r = Kubectl({"get", "events", "-n", "default", "-o", "json"});
    std::vector<std::string> out;
    if (r.code != 0) return out;
    for (const auto& e : ParseJson(r.out, "events").value("items", Json::array())) {
      if (e["involvedObject"].value("kind", "") != "ImageBasedUpgrade") continue;
      out.push_back(e.value("reason", "") + ": " + e.value("message", ""));
    }
    return out;
  }
  bool HasEvent(const std::string& line) {
    const auto ev = Events();
    return std::find(ev.begin(), ev.end(), line) != ev.end();
  }

  void ExpectNoTokenIn(const std::string& text, const std::string& where) {
    EXPECT_EQ(text.find(agent_token_), std::string::npos) << "the agent's token in " << where;
    EXPECT_EQ(text.find(kube_->token()), std::string::npos) << "kubectl's token in " << where;
  }

  test::TempDir tmp_{"lca-kube-it"};
  std::unique_ptr<AgentHost> host_;
  std::unique_ptr<KubeStandin> kube_;
  std::string agent_token_;
};

auto Cond(const std::string& type, const std::string& status = "True") {
  return [type, status](const Json& o) { return AgentHost::ConditionStatus(o, type) == status; };
}

// Equal as JSON values, whatever the order of the keys (kubectl sorts them, the agent keeps
// the CRD's order).
bool Same(const Json& a, const Json& b) {
  return nlohmann::json::parse(a.dump()) == nlohmann::json::parse(b.dump());
}

std::string ConditionReason(const Json& o, const std::string& type) {
  for (const auto& c : o["status"].value("conditions", Json::array())) {
    if (c.value("type", "") == type) return c.value("reason", "");
  }
  return "";
}

TEST_F(KubeModeTest, KubectlPatchPrepsTheNodeAndKubectlWaitSucceeds) {
  host_->Start();
  // The agent creates the CR (spec.stage Idle, as the Go operator) and writes its status.
  Json cr = WaitForCr(Cond("Idle"), "created with Idle=True");
  EXPECT_EQ(cr["spec"]["stage"], "Idle");

  KubectlPatch(PrepPatch());
  KubectlWait("PrepCompleted");
  const Json node = host_->Object();
  EXPECT_EQ(AgentHost::ConditionStatus(node, "PrepCompleted"), "True");
  EXPECT_EQ(node["spec"]["seedImageRef"]["image"], test::SeedBedSuite::bed->image);
  cr = WaitForCr(
      [&](const Json& c) { return Same(c["status"]["conditions"], node["status"]["conditions"]); },
      "the node's conditions");
  EXPECT_EQ(cr["status"]["validNextStages"], Json::array({"Idle", "Upgrade"}));
  EXPECT_EQ(cr["status"]["observedGeneration"], cr["metadata"]["generation"]);
  // kubectl's table: the CRD's printer columns over the node's status.
  const auto table = Kubectl({"get", "ibu"});
  EXPECT_NE(table.out.find("Completed"), std::string::npos) << table.out;
  // Events for the transitions.
  // The last condition after Prep (the CR's State/Details columns): PrepInProgress, Completed.
  const std::string done = "Completed: PrepInProgress: Prep completed";
  for (int i = 0; i < 50 && !HasEvent(done); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(HasEvent(done)) << ::testing::PrintToString(Events());

  // The connection shows in lcactl status and in the metrics; no credential in the log.
  const auto status = host_->Ctl({"status"});
  EXPECT_NE(status.out.find("connected to " + kube_->server() + ", last sync"), std::string::npos)
      << status.out;
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("lca_kube_connected{server=\"" + kube_->server() + "\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("lca_kube_last_sync_timestamp_seconds "), std::string::npos);
  ExpectNoTokenIn(host_->DaemonLog(), "the daemon log");
  ExpectNoTokenIn(metrics, "the metrics");
  ExpectNoTokenIn(status.out, "lcactl status");
  // Nor in a must-gather whose config dir holds the kubeconfig and the token file.
  const fs::path out = tmp_ / "must-gather.tar.gz";
  const auto mg =
      host_->Ctl({"must-gather", "-o", out.string(), "--state-dir", host_->StateDir().string(),
                  "--sysroot", host_->sysroot().string(), "--config-dir", tmp_.path().string(),
                  "--log-file", (host_->dir() / "daemon.log").string()});
  ASSERT_EQ(mg.code, 0) << mg.err;
  const auto members = test::RunCmd({"/bin/tar", "-xOf", out.string()}, {});
  ASSERT_EQ(members.code, 0) << members.err;
  EXPECT_NE(members.out.find("lca_kube_connected"), std::string::npos) << "the metrics are in it";
  ExpectNoTokenIn(members.out, "the must-gather");
}

// Issue 18's order of sources: on a cluster the running release is ClusterVersion's, not the
// booted commit's build id. A cluster already past the seed's release refuses the Prep with the
// reference's message, naming the cluster's version.
TEST_F(KubeModeTest, PrepComparesTheSeedWithTheClusterVersion) {
  const fs::path cv = tmp_ / "clusterversion.yaml";
  WriteFileAtomic(cv,
                  "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\n"
                  "metadata: {name: version}\nspec: {clusterID: 0a1b}\n",
                  0600);
  ASSERT_EQ(Kubectl({"create", "-f", cv.string()}).code, 0);
  const auto st = Kubectl({"patch", "clusterversion", "version", "--subresource=status",
                           "--type=merge", "-p", R"({"status":{"desired":{"version":"4.16.3"}}})"});
  ASSERT_EQ(st.code, 0) << st.out << st.err;
  host_->Start();
  WaitForCr(Cond("Idle"), "created with Idle=True");
  KubectlPatch(PrepPatch());
  const Json cr = WaitForCr(Cond("PrepCompleted", "False"), "Prep failed");
  std::string message;
  for (const auto& c : cr["status"].value("conditions", Json::array())) {
    if (c.value("type", "") == "PrepInProgress") message = c.value("message", "");
  }
  EXPECT_NE(message.find("seed OCP version (4.15.2) must be higher than current OCP version "
                         "(4.16.3)"),
            std::string::npos)
      << message;
}

TEST_F(KubeModeTest, UpgradeWithTheApiServerDownAcrossTheRebootCatchesUp) {
  host_->Start();
  WaitForCr(Cond("Idle"), "created");
  KubectlPatch(PrepPatch());
  KubectlWait("PrepCompleted");
  KubectlPatch({{"spec", {{"stage", "Upgrade"}}}});
  host_->WaitFor([&](const Json&) { return host_->Reboots() == 1; }, "the reboot request");
  EXPECT_TRUE(HasEvent("Reboot: System will now reboot for upgrade"))
      << ::testing::PrintToString(Events());

  kube_->Stop();  // the API server is down while the node pivots (as on a real SNO)
  host_->Reboot();
  EXPECT_EQ(host_->BootedStateroot(), AgentHost::kTarget);
  host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted on the node");
  const auto status = host_->Ctl({"status"});
  EXPECT_NE(status.out.find("not connected to " + kube_->server()), std::string::npos)
      << status.out;

  kube_->Start();
  KubectlWait("UpgradeCompleted");
  const Json cr = Cr();
  EXPECT_EQ(cr["status"]["validNextStages"], Json::array({"Idle", "Rollback"}));
  EXPECT_TRUE(Same(cr["status"]["conditions"], host_->Object()["status"]["conditions"]));

  // Finalize from the cluster.
  KubectlPatch({{"spec", {{"stage", "Idle"}}}});
  KubectlWait("Idle");
  EXPECT_EQ(host_->Object()["spec"]["stage"], "Idle");
}

TEST_F(KubeModeTest, AnInvalidTransitionOnTheClusterGetsInvalidTransition) {
  host_->Start();
  WaitForCr(Cond("Idle"), "created");
  KubectlPatch({{"spec", {{"stage", "Upgrade"}}}});  // Idle -> Upgrade is not allowed
  const Json cr = WaitForCr(
      [](const Json& c) { return ConditionReason(c, "UpgradeInProgress") == "InvalidTransition"; },
      "InvalidTransition");
  const Json node = host_->Object();
  EXPECT_EQ(node["spec"]["stage"], "Upgrade") << "the same admission as a local patch";
  EXPECT_EQ(ConditionReason(node, "UpgradeInProgress"), "InvalidTransition");
  EXPECT_EQ(AgentHost::ConditionMessage(cr, "UpgradeInProgress"),
            AgentHost::ConditionMessage(node, "UpgradeInProgress"));
  // What a local lcactl patch gets on a second host is the same status.
  test::TempDir other_dir("lca-kube-it-local");
  AgentHost other(other_dir.path(), *bed);
  other.Start();
  other.Patch({{"spec", {{"stage", "Upgrade"}}}});
  const Json local = other.WaitFor(
      [](const Json& o) { return ConditionReason(o, "UpgradeInProgress") == "InvalidTransition"; },
      "InvalidTransition locally");
  EXPECT_EQ(AgentHost::ConditionMessage(local, "UpgradeInProgress"),
            AgentHost::ConditionMessage(cr, "UpgradeInProgress"));
  EXPECT_TRUE(HasEvent("InvalidTransition: UpgradeInProgress: " +
                       AgentHost::ConditionMessage(cr, "UpgradeInProgress")))
      << ::testing::PrintToString(Events());
}

TEST_F(KubeModeTest, AChangeTheNodeRefusesIsPutBackOnTheCr) {
  host_->Start();
  WaitForCr(Cond("Idle"), "created");
  KubectlPatch(PrepPatch());
  KubectlWait("PrepCompleted");
  // Prep is done, not Idle: the seed may not change (the CRD's CEL rule on a real server; the
  // stand-in evaluates no CEL, so the node's admission is what refuses it).
  KubectlPatch({{"spec", {{"seedImageRef", {{"image", "quay.io/other/seed:4.15.2"}}}}}});
  const std::string image = test::SeedBedSuite::bed->image;
  WaitForCr([&](const Json& c) { return c["spec"]["seedImageRef"]["image"] == image; },
            "the node's seedImageRef back on the CR");
  EXPECT_EQ(host_->Object()["spec"]["seedImageRef"]["image"], image);
  bool refused = false;
  for (const auto& e : Events()) {
    refused = refused || e.rfind("ChangeRefused: spec.seedImageRef: can only be changed", 0) == 0;
  }
  EXPECT_TRUE(refused) << ::testing::PrintToString(Events());
  EXPECT_NE(host_->DaemonLog().find("was refused, putting the node's back"), std::string::npos);
}

TEST_F(KubeModeTest, ARevokedTokenMidStageIsReportedAndTheNodeGoesOn) {
  // A pre-pivot hook holds Upgrade until the test has revoked the agent's token.
  const fs::path gate = tmp_ / "gate";
  WriteFileAtomic(host_->hooks("pre-pivot") / "10-gate",
                  "#!/bin/sh\nwhile [ ! -e '" + gate.string() + "' ]; do sleep 0.1; done\n", 0755);
  host_->Start();
  WaitForCr(Cond("Idle"), "created");
  KubectlPatch(PrepPatch());
  KubectlWait("PrepCompleted");
  KubectlPatch({{"spec", {{"stage", "Upgrade"}}}});
  WaitForCr(Cond("UpgradeInProgress"), "Upgrade started, as the CR shows");
  kube_->RevokeToken(agent_token_);
  WriteFileAtomic(gate, "", 0644);
  host_->WaitFor([&](const Json&) { return host_->Reboots() == 1; }, "the reboot request");
  host_->Reboot();
  host_->WaitFor(Cond("UpgradeCompleted"), "UpgradeCompleted on the node despite the cluster");

  // The failure is in the log (with what to do), lcactl status and the metrics.
  const std::string connected0 = "lca_kube_connected{server=\"" + kube_->server() + "\"} 0";
  host_->WaitFor([&](const Json&) { return Metrics().find(connected0) != std::string::npos; },
                 "disconnected in the metrics", std::chrono::seconds(60));
  const std::string log = host_->DaemonLog();
  EXPECT_NE(log.find("HTTP 401 Unauthorized"), std::string::npos) << log;
  EXPECT_NE(log.find("the API server refused the agent's identity from kubeconfig " +
                     (tmp_ / "agent-kubeconfig").string()),
            std::string::npos);
  const auto status = host_->Ctl({"status"});
  EXPECT_NE(status.out.find("not connected to " + kube_->server() + ": Unauthorized"),
            std::string::npos)
      << status.out;
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("lca_kube_errors_total{reason=\"Unauthorized\"}"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("lca_kube_last_error_timestamp_seconds{reason=\"Unauthorized\"}"),
            std::string::npos);
  EXPECT_NE(AgentHost::ConditionStatus(Cr(), "UpgradeCompleted"), "True")
      << "the CR cannot know yet";

  // A new token in the token file (as the kubelet rotates one): the CR catches up.
  const std::string renewed =
      kube_->AddToken("system:serviceaccount:openshift-lifecycle-agent:lifecycle-agent");
  WriteFileAtomic(tmp_ / "agent-token", renewed + "\n", 0600);
  KubectlWait("UpgradeCompleted");
  ExpectNoTokenIn(host_->DaemonLog(), "the daemon log");
  EXPECT_EQ(host_->DaemonLog().find(renewed), std::string::npos);
}

TEST_F(KubeModeTest, DaemonKilledWhileTheCrAndTheNodeDisagreeConverges) {
  host_->Start();
  WaitForCr(Cond("Idle"), "created");
  host_->Kill();
  // While the daemon is down the cluster asks for Prep and labels the CR.
  KubectlPatch(PrepPatch());
  ASSERT_EQ(Kubectl({"label", "ibu", "upgrade", "team=edge"}).code, 0);
  host_->Start();
  KubectlWait("PrepCompleted");
  const Json node = host_->Object();
  EXPECT_EQ(node["spec"]["stage"], "Prep");
  EXPECT_EQ(node["metadata"]["labels"]["team"], "edge");

  // And the other way: the node changes (a local patch) while the API server is away; the
  // daemon is killed before it could write it; after both return, the CR has it.
  kube_->Stop();
  host_->Patch({{"metadata", {{"annotations", {{"note", "from-the-node"}}}}}});
  host_->Kill();
  kube_->Start();
  host_->Start();
  const Json cr = WaitForCr(
      [](const Json& c) {
        return c["metadata"].value("annotations", Json::object()).value("note", "") ==
               "from-the-node";
      },
      "the node's annotation on the CR");
  EXPECT_EQ(cr["spec"]["stage"], "Prep");
}

TEST_F(KubeModeTest, InAPodTheServiceAccountIsUsed) {
  // What Kubernetes gives a pod: the service's address in the environment, the account's
  // token and the cluster's CA in a directory (--service-account-dir stands in for
  // /var/run/secrets/kubernetes.io/serviceaccount).
  const fs::path sa = tmp_ / "serviceaccount";
  fs::create_directories(sa);
  WriteFileAtomic(sa / "token", agent_token_, 0600);
  fs::copy_file(kube_->ca_file(), sa / "ca.crt");
  host_->SetDaemonFlags({"--service-account-dir", sa.string()});
  host_->SetDaemonEnv({{"KUBERNETES_SERVICE_HOST", "127.0.0.1"},
                       {"KUBERNETES_SERVICE_PORT", std::to_string(kube_->port())}});
  host_->Start();
  WaitForCr(Cond("Idle"), "created with the service account's token");
  EXPECT_NE(host_->DaemonLog().find("in-cluster service account (" + sa.string() + ")"),
            std::string::npos);
  ExpectNoTokenIn(host_->DaemonLog(), "the daemon log");
}

TEST_F(KubeModeTest, TheManifestsApplyWithKubectlAndTheAgentUsesTheirCrd) {
  // A server that knows no ImageBasedUpgrade until the CRD from lcactl manifests is applied.
  kube_.reset();
  const fs::path res = fs::path(LCA_TEST_SOURCE_DIR) / "tests/support/kube_apiserver/resources";
  kube_ =
      std::make_unique<KubeStandin>(test::KubeStandinOptions{.extra_resources = {res / "core.json"},
                                                             .default_resources = false,
                                                             .bookmark_interval_seconds = 1});
  agent_token_ = kube_->AddToken("agent");
  WriteFileAtomic(tmp_ / "agent-token", agent_token_ + "\n", 0600);
  WriteFileAtomic(tmp_ / "agent-kubeconfig",
                  "apiVersion: v1\nkind: Config\ncurrent-context: sno\n"
                  "clusters:\n- name: sno\n  cluster:\n    server: " +
                      kube_->server() +
                      "\n    certificate-authority: " + kube_->ca_file().string() +
                      "\nusers:\n- name: agent\n  user:\n    tokenFile: agent-token\n"
                      "contexts:\n- name: sno\n  context: {cluster: sno, user: agent}\n",
                  0600);
  const auto manifests = host_->Ctl({"manifests"});
  ASSERT_EQ(manifests.code, 0);
  WriteFileAtomic(tmp_ / "manifests.yaml", manifests.out, 0644);
  // Server-side apply: client-side apply needs OpenAPI v2 patch schemas the stand-in lacks.
  const auto applied =
      Kubectl({"apply", "--server-side", "-f", (tmp_ / "manifests.yaml").string()});
  ASSERT_EQ(applied.code, 0) << applied.out << applied.err;
  EXPECT_NE(applied.out.find("customresourcedefinition.apiextensions.k8s.io/"
                             "imagebasedupgrades.lca.openshift.io serverside-applied"),
            std::string::npos)
      << applied.out;
  EXPECT_NE(applied.out.find(
                "clusterrole.rbac.authorization.k8s.io/lifecycle-agent-node serverside-applied"),
            std::string::npos)
      << applied.out;
  host_->Start();
  const Json cr = WaitForCr(Cond("Idle"), "created through the applied CRD");
  EXPECT_EQ(cr["spec"]["stage"], "Idle");
  const auto table = Kubectl({"get", "ibu"});
  EXPECT_NE(table.out.find("DESIRED STAGE"), std::string::npos) << table.out;
}

}  // namespace
}  // namespace lca
