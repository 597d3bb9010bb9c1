// The Kubernetes API server stand-in vouched for by the real kubectl: discovery, get (table,
// json, yaml, jsonpath), get -w, create, patch (merge; the strategic default a custom resource
// refuses), wait, apply --server-side, delete, 401/403, TLS with and without the CA.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/child_process.hpp"
#include "tests/support/kube_standin.hpp"

namespace lca::test {
namespace {

constexpr const char* kIbu = R"(apiVersion: lca.openshift.io/v1
kind: ImageBasedUpgrade
metadata:
  name: upgrade
spec:
  stage: Idle
)";

const std::string kIbuPath = "/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade";

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `file` until it contains `needle` (a background kubectl's output) or 20 s pass.
bool WaitForText(const std::filesystem::path& file, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadFile(file).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

class KubectlStandinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/bin/kubectl")) {
      GTEST_SKIP() << "/usr/bin/kubectl is absent: run scripts/install-deps.sh (it installs "
                      "Debian's kubernetes-client where kubectl is missing)";
    }
    minor_ = kube_.KubectlMinor();
  }

  // kubectl before 1.27 validates against OpenAPI v2, which the stand-in does not serve.
  std::vector<std::string> Validate() const {
    return minor_ < 27 ? std::vector<std::string>{"--validate=false"} : std::vector<std::string>{};
  }
  CmdResult CreateFile(const std::filesystem::path& file, std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), {"create", "-f", file.string()});
    for (const auto& v : Validate()) flags.push_back(v);
    return kube_.Kubectl(flags);
  }
  CmdResult ApplyFile(const std::filesystem::path& file, std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), {"apply", "--server-side", "-f", file.string()});
    for (const auto& v : Validate()) flags.push_back(v);
    return kube_.Kubectl(flags);
  }

  std::filesystem::path Manifest(const std::string& name, const std::string& text) {
    const auto p = files_ / name;
    std::ofstream(p) << text;
    return p;
  }

  void CreateIbu() {
    const auto r = CreateFile(Manifest("ibu.yaml", kIbu));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade created\n");
  }

  // A background kubectl writing to out; killed with the test.
  void StartKubectl(ChildProcess& p, std::vector<std::string> args,
                    const std::filesystem::path& out) {
    args.insert(args.begin(), {"/usr/bin/kubectl", "--kubeconfig", kube_.kubeconfig().string(),
                               "--cache-dir", (files_ / "cache").string()});
    p.Start(args, kube_.KubectlEnv(), out.string());
  }

  KubeStandin kube_;
  TempDir files_{"lca-kubectl"};
  int minor_ = 0;
};

TEST_F(KubectlStandinTest, ApiResourcesListsConfiguredKindsWithScopeAndShortNames) {
  const auto r = kube_.Kubectl({"api-resources", "--no-headers"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("imagebasedupgrades"), std::string::npos) << r.out;
  std::istringstream lines(r.out);
  bool ibu = false, cm = false;
  for (std::string l; std::getline(lines, l);) {
    std::istringstream w(l);
    std::vector<std::string> f{std::istream_iterator<std::string>(w), {}};
    if (f.size() == 5 && f[0] == "imagebasedupgrades") {
      ibu = f[1] == "ibu" && f[2] == "lca.openshift.io/v1" && f[3] == "false" &&
            f[4] == "ImageBasedUpgrade";
    }
    if (f.size() == 5 && f[0] == "configmaps") cm = f[1] == "cm" && f[3] == "true";
  }
  EXPECT_TRUE(ibu) << r.out;
  EXPECT_TRUE(cm) << r.out;
  const auto ns = kube_.Kubectl({"get", "namespaces", "default"});
  ASSERT_EQ(ns.code, 0) << ns.err;
  EXPECT_NE(ns.out.find("default   Active"), std::string::npos) << ns.out;
}

TEST_F(KubectlStandinTest, CreateGetAndMergePatchByShortAndQualifiedNames) {
  CreateIbu();
  const auto table = kube_.Kubectl({"get", "ibu"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.substr(0, table.out.find('\n')),
            "NAME      AGE   DESIRED STAGE   STATE   DETAILS");
  EXPECT_NE(table.out.find("Idle"), std::string::npos) << table.out;

  const auto patch = kube_.Kubectl({"patch", "imagebasedupgrades.lca.openshift.io", "upgrade", "-n",
                                    "openshift-lifecycle-agent", "--type=merge", "-p",
                                    R"({"spec": {"stage": "Prep"}})"});
  ASSERT_EQ(patch.code, 0) << patch.err;
  EXPECT_EQ(patch.out, "imagebasedupgrade.lca.openshift.io/upgrade patched\n");

  const auto json = kube_.Kubectl({"get", "imagebasedupgrades", "upgrade", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  const auto obj = nlohmann::json::parse(json.out);
  EXPECT_EQ(obj["spec"]["stage"], "Prep");
  EXPECT_EQ(obj["metadata"]["generation"], 2);
  EXPECT_FALSE(obj["metadata"]["uid"].get<std::string>().empty());

  const auto yaml = kube_.Kubectl({"get", "ibu", "upgrade", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_NE(yaml.out.find("  stage: Prep\n"), std::string::npos) << yaml.out;
  const auto path = kube_.Kubectl({"get", "ibu", "upgrade", "-o", "jsonpath={.spec.stage}"});
  EXPECT_EQ(path.out, "Prep");
}

TEST_F(KubectlStandinTest, LabelAndAnnotateAddAndRemoveWithoutMovingGeneration) {
  CreateIbu();
  ASSERT_EQ(kube_.Kubectl({"label", "ibu", "upgrade", "a=b"}).code, 0);
  const auto ann = kube_.Kubectl({"annotate", "ibu", "upgrade", "lca.openshift.io/x=y"});
  ASSERT_EQ(ann.code, 0) << ann.err;
  EXPECT_EQ(ann.out, "imagebasedupgrade.lca.openshift.io/upgrade annotated\n");
  EXPECT_EQ(
      kube_
          .Kubectl({"get", "ibu", "-l", "a=b", "-o",
                    "jsonpath={.items[0].metadata.annotations}|{.items[0].metadata.generation}"})
          .out,
      R"({"lca.openshift.io/x":"y"}|1)");
  ASSERT_EQ(kube_.Kubectl({"annotate", "ibu", "upgrade", "lca.openshift.io/x-"}).code, 0);
  ASSERT_EQ(kube_.Kubectl({"label", "ibu", "upgrade", "a-"}).code, 0);
  const auto meta = nlohmann::json::parse(
      kube_.Kubectl({"get", "ibu", "upgrade", "-o", "jsonpath={.metadata}"}).out);
  EXPECT_FALSE(meta.contains("annotations")) << meta.dump();  // omitted when empty
  EXPECT_FALSE(meta.contains("labels")) << meta.dump();
}

TEST_F(KubectlStandinTest, StrategicPatchDefaultIsRefusedForCustomResourceLikeARealServer) {
  CreateIbu();
  const auto r = kube_.Kubectl({"patch", "ibu", "upgrade", "-p", R"({"spec":{"stage":"Prep"}})"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("application/strategic-merge-patch+json is not supported by "
                       "lca.openshift.io/v1, Kind=ImageBasedUpgrade: the body of the request "
                       "was in an unknown format - accepted media types include: "
                       "application/json-patch+json, application/merge-patch+json, "
                       "application/apply-patch+yaml"),
            std::string::npos)
      << r.err;
  // A built-in kind takes it. (`kubectl create configmap` would send protobuf: not spoken here.)
  const auto cm_file =
      Manifest("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n");
  ASSERT_EQ(CreateFile(cm_file).code, 0);
  const auto cm = kube_.Kubectl({"patch", "cm", "c", "-p", R"({"data":{"a":"2"}})"});
  EXPECT_EQ(cm.code, 0) << cm.err;
  EXPECT_EQ(kube_.Kubectl({"get", "cm", "c", "-o", "jsonpath={.data.a}"}).out, "2");
}

TEST_F(KubectlStandinTest, WaitForConditionAndJsonpathReturnWhenTheStatusArrives) {
  CreateIbu();
  ChildProcess wait;
  const auto out = files_ / "wait.out";
  StartKubectl(wait, {"wait", "ibu/upgrade", "--for=condition=PrepCompleted", "--timeout=60s"},
               out);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto st = kube_.Http("PATCH", kIbuPath + "/status",
                             R"({"status":{"conditions":[{"type":"PrepCompleted","status":"True",
                                 "reason":"Completed","message":"Prep completed",
                                 "lastTransitionTime":"2026-01-01T00:00:00Z"}]}})",
                             "application/merge-patch+json");
  ASSERT_EQ(st.code, 200) << st.body;
  const auto status = wait.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << ReadFile(out);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << ReadFile(out);
  EXPECT_EQ(ReadFile(out), "imagebasedupgrade.lca.openshift.io/upgrade condition met\n");

  const auto never =
      kube_.Kubectl({"wait", "ibu/upgrade", "--for=condition=UpgradeCompleted", "--timeout=2s"});
  EXPECT_NE(never.code, 0);
  EXPECT_NE(never.err.find("timed out waiting for the condition"), std::string::npos) << never.err;
  if (minor_ < 23) GTEST_SKIP() << "kubectl 1." << minor_ << " has no wait --for=jsonpath";
  const auto jp =
      kube_.Kubectl({"wait", "ibu/upgrade",
                     "--for=jsonpath={.status.conditions[0].reason}=Completed", "--timeout=10s"});
  EXPECT_EQ(jp.code, 0) << jp.err;
}

TEST_F(KubectlStandinTest, GetWatchPrintsAddedThenModifiedAsTheObjectChanges) {
  CreateIbu();
  ChildProcess watch;
  const auto out = files_ / "watch.out";
  StartKubectl(watch, {"get", "ibu", "-w", "--output-watch-events"}, out);
  ASSERT_TRUE(WaitForText(out, "ADDED")) << ReadFile(out);
  for (const char* stage : {"Prep", "Upgrade"}) {
    const auto r = kube_.Kubectl({"patch", "ibu", "upgrade", "--type=merge", "-p",
                                  std::string(R"({"spec":{"stage":")") + stage + "\"}}"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  ASSERT_TRUE(WaitForText(out, "Upgrade")) << ReadFile(out);
  std::istringstream lines(ReadFile(out));
  std::vector<std::string> events;
  for (std::string l; std::getline(lines, l);) {
    std::istringstream w(l);
    std::string ev, name, age, stage;
    w >> ev >> name >> age >> stage;
    if (ev != "EVENT") events.push_back(ev + " " + name + " " + stage);
  }
  EXPECT_EQ(events, (std::vector<std::string>{"ADDED upgrade Idle", "MODIFIED upgrade Prep",
                                              "MODIFIED upgrade Upgrade"}))
      << ReadFile(out);
}

TEST_F(KubectlStandinTest, ServerSideApplyCreatesMergesAndReportsConflictsUnlessForced) {
  const auto first = ApplyFile(Manifest("ibu.yaml", kIbu));
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, "imagebasedupgrade.lca.openshift.io/upgrade serverside-applied\n");
  ASSERT_EQ(kube_
                .Kubectl({"patch", "ibu", "upgrade", "--type=merge", "-p",
                          R"({"spec":{"stage":"Prep"}})"})
                .code,
            0);
  const auto again = ApplyFile(Manifest("ibu.yaml", kIbu));
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("Apply failed with 1 conflict: conflict with \"kubectl-patch\" using "
                           "lca.openshift.io/v1: .spec.stage"),
            std::string::npos)
      << again.err;
  const auto forced = ApplyFile(Manifest("ibu.yaml", kIbu), {"--force-conflicts"});
  ASSERT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(kube_.Kubectl({"get", "ibu", "upgrade", "-o", "jsonpath={.spec.stage}"}).out, "Idle");
  // A field the manager stops applying goes away.
  const std::string with_label = std::string(kIbu).replace(
      std::string(kIbu).find("  name: upgrade\n"), 16, "  name: upgrade\n  labels: {a: b}\n");
  ASSERT_EQ(ApplyFile(Manifest("ibu.yaml", with_label)).code, 0);
  EXPECT_EQ(kube_.Kubectl({"get", "ibu", "-l", "a=b", "-o", "name"}).out,
            "imagebasedupgrade.lca.openshift.io/upgrade\n");
  ASSERT_EQ(ApplyFile(Manifest("ibu.yaml", kIbu)).code, 0);
  EXPECT_EQ(kube_.Kubectl({"get", "ibu", "-l", "a=b", "-o", "name"}).out, "");
}

// Nothing in the stand-in knows this kind: the CRD registers it, as on a real cluster.
TEST_F(KubectlStandinTest, CustomResourceDefinitionRegistersANewNamespacedKind) {
  const auto crd = Manifest("crd.yaml", R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
)");
  ASSERT_EQ(ApplyFile(crd).code, 0);
  const auto established = kube_.Kubectl(
      {"wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"});
  ASSERT_EQ(established.code, 0) << established.err;
  const auto w = Manifest("w.yaml",
                          "apiVersion: example.com/v1alpha1\nkind: Widget\nmetadata: {name: w1, "
                          "namespace: kube-public}\nspec: {size: 3}\n");
  const auto created = CreateFile(w);
  ASSERT_EQ(created.code, 0) << created.err;
  const auto table = kube_.Kubectl({"get", "wd", "-A"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out, "NAMESPACE     NAME   SIZE\nkube-public   w1     3\n");
  EXPECT_NE(kube_.Kubectl({"get", "wd", "w1"}).code, 0) << "w1 is not in namespace default";
  ASSERT_EQ(kube_.Kubectl({"delete", "crd", "widgets.example.com"}).code, 0);
  const auto gone = kube_.Kubectl({"get", "widgets.example.com", "-A"});
  EXPECT_NE(gone.code, 0);
  EXPECT_NE(gone.err.find("the server doesn't have a resource type"), std::string::npos)
      << gone.err;
}

// A CRD's schema: unknown fields pruned (an error under kubectl's strict validation, a warning
// otherwise), enum, minimum and type enforced with the API server's messages.
TEST_F(KubectlStandinTest, CustomResourceSchemaPrunesUnknownFieldsAndValidates) {
  const auto crd = Manifest("crd.yaml", R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.org}
spec:
  group: example.org
  names: {kind: Gadget, plural: gadgets, singular: gadget}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [color]
            properties:
              color: {type: string, enum: [red, blue]}
              size: {type: integer, minimum: 0}
          status:
            type: object
            properties: {note: {type: string}}
)");
  ASSERT_EQ(ApplyFile(crd).code, 0);
  const auto bad = CreateFile(Manifest(
      "bad.yaml",
      "apiVersion: example.org/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {color: green, "
      "size: -1}\n"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("spec.color: Unsupported value: \"green\": supported values: \"red\", "
                         "\"blue\""),
            std::string::npos)
      << bad.err;
  EXPECT_NE(bad.err.find("spec.size: Invalid value: -1: spec.size in body should be greater "
                         "than or equal to 0"),
            std::string::npos)
      << bad.err;
  const auto extra = Manifest("extra.yaml",
                              "apiVersion: example.org/v1\nkind: Gadget\nmetadata: {name: g}\n"
                              "spec: {color: red, bogus: 1}\n");
  if (minor_ >= 27) {
    const auto strict = CreateFile(extra);
    EXPECT_NE(strict.code, 0);
    EXPECT_NE(strict.err.find("strict decoding error: unknown field \"spec.bogus\""),
              std::string::npos)
        << strict.err;
  }
  ASSERT_EQ(kube_.Kubectl({"create", "--validate=false", "-f", extra.string()}).code, 0);
  EXPECT_EQ(kube_.Kubectl({"get", "gadget", "g", "-o", "jsonpath={.spec}"}).out,
            R"({"color":"red"})");
  const auto st = kube_.Kubectl({"patch", "gadget", "g", "--subresource=status", "--type=merge",
                                 "-p", R"({"status":{"note":"n","other":1}})"});
  ASSERT_EQ(st.code, 0) << st.err;
  EXPECT_NE(st.err.find("Warning: unknown field \"status.other\""), std::string::npos) << st.err;
  EXPECT_EQ(kube_.Kubectl({"get", "gadget", "g", "-o", "jsonpath={.status}"}).out,
            R"({"note":"n"})");
  const auto type =
      kube_.Kubectl({"patch", "gadget", "g", "--type=merge", "-p", R"({"spec":{"size":"x"}})"});
  EXPECT_NE(type.code, 0);
  EXPECT_NE(type.err.find("spec.size: Invalid value: \"string\": spec.size in body must be of "
                          "type integer: \"string\""),
            std::string::npos)
      << type.err;
}

// kubectl describe finds an object's Events with an involvedObject field selector.
TEST_F(KubectlStandinTest, DescribeShowsTheEventsAboutTheObject) {
  CreateIbu();
  const std::string uid =
      kube_.Kubectl({"get", "ibu", "upgrade", "-o", "jsonpath={.metadata.uid}"}).out;
  ASSERT_FALSE(uid.empty());
  const nlohmann::json ev = {{"apiVersion", "v1"},
                             {"kind", "Event"},
                             {"metadata", {{"name", "upgrade.prep"}, {"namespace", "default"}}},
                             {"involvedObject",
                              {{"apiVersion", "lca.openshift.io/v1"},
                               {"kind", "ImageBasedUpgrade"},
                               {"name", "upgrade"},
                               {"uid", uid}}},
                             {"reason", "Prep"},
                             {"message", "Prep stage started"},
                             {"type", "Normal"},
                             {"source", {{"component", "lifecycle-agent"}}},
                             {"count", 1}};
  const auto created = CreateFile(Manifest("ev.json", ev.dump()));
  ASSERT_EQ(created.code, 0) << created.err;
  const auto d = kube_.Kubectl({"describe", "ibu", "upgrade"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_NE(d.out.find("lifecycle-agent  Prep stage started"), std::string::npos) << d.out;
  const auto list = kube_.Kubectl(
      {"get", "events", "--field-selector", "involvedObject.kind=ImageBasedUpgrade", "-o", "name"});
  EXPECT_EQ(list.out, "event/upgrade.prep\n") << list.err;
}

TEST_F(KubectlStandinTest, DeleteRemovesTheObjectAndEndsAWaitForDelete) {
  CreateIbu();
  ChildProcess wait;
  const auto out = files_ / "wait.out";
  StartKubectl(wait, {"wait", "ibu/upgrade", "--for=delete", "--timeout=60s"}, out);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto del = kube_.Kubectl({"delete", "ibu", "upgrade"});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_EQ(del.out, "imagebasedupgrade.lca.openshift.io \"upgrade\" deleted\n");
  const auto get = kube_.Kubectl({"get", "ibu", "upgrade"});
  EXPECT_NE(get.code, 0);
  EXPECT_EQ(get.err,
            "Error from server (NotFound): imagebasedupgrades.lca.openshift.io "
            "\"upgrade\" not found\n");
  const auto status = wait.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << ReadFile(out);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << ReadFile(out);
  EXPECT_EQ(ReadFile(out), "imagebasedupgrade.lca.openshift.io/upgrade condition met\n");
}

TEST_F(KubectlStandinTest, RevokedTokenIsUnauthorizedAndADeniedVerbForbidden) {
  CreateIbu();
  kube_.Deny(kube_.token(), {"patch"}, {"imagebasedupgrades"});
  const auto patch = kube_.Kubectl(
      {"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Prep"}})"});
  EXPECT_NE(patch.code, 0);
  EXPECT_EQ(patch.err,
            "Error from server (Forbidden): imagebasedupgrades.lca.openshift.io \"upgrade\" is "
            "forbidden: User \"system:serviceaccount:openshift-lifecycle-agent:lifecycle-agent\" "
            "cannot patch resource \"imagebasedupgrades\" in API group \"lca.openshift.io\" at "
            "the cluster scope\n");
  EXPECT_EQ(kube_.Kubectl({"get", "ibu"}).code, 0);  // other verbs still work
  kube_.RevokeToken(kube_.token());
  const auto get = kube_.Kubectl({"get", "ibu"});
  EXPECT_NE(get.code, 0);
  EXPECT_NE(get.err.find("error: You must be logged in to the server (Unauthorized)"),
            std::string::npos)
      << get.err;
}

TEST_F(KubectlStandinTest, TlsNeedsTheClusterCa) {
  const std::vector<std::string> base = {"--kubeconfig", "/dev/null", "--server",
                                         kube_.server(), "--token",   kube_.token()};
  auto args = base;
  args.insert(args.end(), {"get", "namespaces"});
  const auto no_ca = kube_.Kubectl(args, "/dev/null");
  EXPECT_NE(no_ca.code, 0);
  EXPECT_NE(no_ca.err.find("x509: certificate signed by unknown authority"), std::string::npos)
      << no_ca.err;
  args.insert(args.end(), {"--certificate-authority", kube_.ca_file().string()});
  const auto with_ca = kube_.Kubectl(args, "/dev/null");
  EXPECT_EQ(with_ca.code, 0) << with_ca.err;
}

TEST(KubectlStandinCertTest, ClientCertificateAuthenticatesUntilRevoked) {
  if (!std::filesystem::exists("/usr/bin/kubectl")) GTEST_SKIP() << "/usr/bin/kubectl is absent";
  KubeStandin kube({.client_certs = true});
  const auto ok = kube.Kubectl({"get", "namespaces", "-o", "name"}, kube.kubeconfig_cert());
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("namespace/default"), std::string::npos);
  EXPECT_EQ(kube.Requests().back().user, "lca-agent");
  kube.RevokeClientCert();
  const auto revoked = kube.Kubectl({"get", "namespaces"}, kube.kubeconfig_cert());
  EXPECT_NE(revoked.code, 0);
  EXPECT_NE(revoked.err.find("Unauthorized"), std::string::npos) << revoked.err;
}

}  // namespace
}  // namespace lca::test
