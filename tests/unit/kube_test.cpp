// Kubernetes mode without a server: kubeconfig and in-cluster credentials (and that no secret
// reaches an error message), the mirror rules (merge diff, which side wins, observedGeneration
// as the cluster sees it, the events of a stage transition), the watch cursor (bookmarks, 410
// Gone, other objects, deletion), the backoff's jitter bounds, and the manifests: they parse
// as YAML and the CRD's schema has exactly the API model's fields.
#include <gtest/gtest.h>

#include <set>

#include "agent/api/conditions.hpp"
#include "agent/kube/credentials.hpp"
#include "agent/kube/mirror.hpp"
#include "agent/kube/watch_cursor.hpp"
#include "agent/metrics/collector.hpp"
#include "agent/metrics/exposition.hpp"
#include "agent/status/render.hpp"
#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "common/error.hpp"
#include "manifests/embedded.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::kube {
namespace {

const std::string kToken = "sEcReT-tOkEn-0123456789";
const std::string kCa = "-----BEGIN CERTIFICATE-----\nQ0EK\n-----END CERTIFICATE-----\n";

std::string Kubeconfig(const std::string& user_body, const std::string& cluster_extra = "") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: lca\n"
         "contexts:\n- name: other\n  context: {cluster: c2, user: u2}\n"
         "- name: lca\n  context: {cluster: c1, user: u1}\n"
         "clusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:6443/\n" +
         cluster_extra +
         "- name: c2\n  cluster: {server: 'https://other:1'}\n"
         "users:\n- name: u2\n  user: {token: nope}\n- name: u1\n  user:\n" +
         user_body;
}

std::string LoadError(const std::filesystem::path& file) {
  try {
    LoadKubeconfig(file);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    return e.what();
  }
  return "accepted";
}

TEST(Kubeconfig, CurrentContextTokenAndCaData) {
  test::TempDir dir;
  WriteFileAtomic(dir / "kc",
                  Kubeconfig("    token: " + kToken + "\n",
                             "    certificate-authority-data: " + Base64Encode(kCa) + "\n"),
                  0600);
  const Credentials c = LoadKubeconfig(dir / "kc");
  EXPECT_EQ(c.server, "https://127.0.0.1:6443");
  EXPECT_EQ(c.ca_pem, kCa);
  EXPECT_EQ(BearerToken(c), kToken);
  EXPECT_EQ(c.source, "kubeconfig " + (dir / "kc").string() + " (context lca)");
  EXPECT_EQ(LoadKubeconfig(dir / "kc", "other").server, "https://other:1");
}

TEST(Kubeconfig, FilesRelativeToTheKubeconfigAndTokenFileReadEachTime) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "sub");
  WriteFileAtomic(dir / "sub/ca.crt", kCa, 0644);
  WriteFileAtomic(dir / "sub/tls.crt", "CERT", 0600);
  WriteFileAtomic(dir / "sub/tls.key", "KEY", 0600);
  WriteFileAtomic(dir / "sub/token", kToken + "\n", 0600);
  WriteFileAtomic(dir / "sub/kc",
                  Kubeconfig("    tokenFile: token\n    client-certificate: tls.crt\n"
                             "    client-key: " +
                                 (dir / "sub/tls.key").string() + "\n",
                             "    certificate-authority: ca.crt\n"),
                  0600);
  const Credentials c = LoadKubeconfig(dir / "sub/kc");
  EXPECT_EQ(c.ca_pem, kCa);
  EXPECT_EQ(c.client_cert_pem, "CERT");
  EXPECT_EQ(c.client_key_pem, "KEY");
  EXPECT_EQ(BearerToken(c), kToken);
  WriteFileAtomic(dir / "sub/token", "renewed\n", 0600);
  EXPECT_EQ(BearerToken(c), "renewed") << "a rotated token is picked up";
}

TEST(Kubeconfig, ClientCertificateData) {
  test::TempDir dir;
  WriteFileAtomic(dir / "kc",
                  Kubeconfig("    client-certificate-data: " + Base64Encode("CERT") +
                             "\n    client-key-data: " + Base64Encode("KEY") + "\n"),
                  0600);
  const Credentials c = LoadKubeconfig(dir / "kc");
  EXPECT_EQ(c.client_cert_pem, "CERT");
  EXPECT_EQ(c.client_key_pem, "KEY");
  EXPECT_EQ(BearerToken(c), "");
}

TEST(Kubeconfig, ErrorsNameTheFieldButNeverASecret) {
  test::TempDir dir;
  const std::string f = (dir / "kc").string();
  WriteFileAtomic(dir / "kc", Kubeconfig("    client-key-data: " + kToken + "%%\n"), 0600);
  std::string msg = LoadError(dir / "kc");
  EXPECT_EQ(msg,
            "kubeconfig " + f +
                ": users[u1].user.client-key-data: is not valid base64 (the value is not shown)");
  EXPECT_EQ(msg.find(kToken), std::string::npos);

  WriteFileAtomic(dir / "kc",
                  Kubeconfig("    token: " + kToken +
                             "\n    client-certificate-data: " + Base64Encode("C") + "\n"),
                  0600);
  msg = LoadError(dir / "kc");
  EXPECT_EQ(msg, "kubeconfig " + f +
                     ": users[u1].user: client-certificate and client-key go together; one is "
                     "missing");
  WriteFileAtomic(dir / "kc", Kubeconfig("    exec: {command: x}\n    token: " + kToken + "\n"),
                  0600);
  msg = LoadError(dir / "kc");
  EXPECT_NE(msg.find("users[u1].user.exec: not supported"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(kToken), std::string::npos);

  WriteFileAtomic(dir / "kc", "current-context: nope\ncontexts: []\n", 0600);
  EXPECT_EQ(LoadError(dir / "kc"), "kubeconfig " + f + ": contexts: no entry named 'nope'");
  WriteFileAtomic(dir / "kc", "token: " + kToken + ": [\n", 0600);
  msg = LoadError(dir / "kc");
  EXPECT_NE(msg.find("not YAML"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(kToken), std::string::npos) << msg;
  WriteFileAtomic(dir / "kc", Kubeconfig("    token: x\n", "    certificate-authority: nope.crt\n"),
                  0600);
  msg = LoadError(dir / "kc");
  EXPECT_NE(msg.find("clusters[c1].cluster.certificate-authority: cannot read " +
                     (dir / "nope.crt").string()),
            std::string::npos)
      << msg;
}

TEST(InCluster, ServiceAccountFromEnvironmentAndDir) {
  test::TempDir dir;
  WriteFileAtomic(dir / "token", kToken, 0600);
  WriteFileAtomic(dir / "ca.crt", kCa, 0644);
  EXPECT_FALSE(InClusterCredentials(dir.path(), {}));
  auto c = InClusterCredentials(
      dir.path(), {{"KUBERNETES_SERVICE_HOST", "172.30.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server, "https://172.30.0.1:443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(BearerToken(*c), kToken);
  c = InClusterCredentials(dir.path(), {{"KUBERNETES_SERVICE_HOST", "fd00::1"}});
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
}

TEST(Mirror, MergeDiffIsTheMergePatchBetweenTwoObjects) {
  const Json from = {{"a", 1}, {"b", {{"x", 1}, {"y", 2}}}, {"c", Json::array({1})}};
  const Json to = {{"b", {{"x", 1}, {"z", 3}}}, {"c", Json::array({1, 2})}, {"d", "new"}};
  const Json diff = MergeDiff(from, to);
  EXPECT_EQ(diff, (Json{{"a", nullptr},
                        {"b", {{"y", nullptr}, {"z", 3}}},
                        {"c", Json::array({1, 2})},
                        {"d", "new"}}));
  Json applied = from;
  applied.merge_patch(diff);
  EXPECT_EQ(Canonical(applied), Canonical(to));
  EXPECT_EQ(MergeDiff(to, to), Json::object());
}

TEST(Mirror, MirroredPartAndObjectPatch) {
  const Json obj = {
      {"metadata", {{"name", "upgrade"}, {"labels", {{"l", "1"}}}, {"resourceVersion", "9"}}},
      {"spec", {{"stage", "Prep"}}},
      {"status", {{"observedGeneration", 1}}}};
  const Json m = MirroredPart(obj);
  EXPECT_EQ(m, (Json{{"spec", {{"stage", "Prep"}}},
                     {"labels", {{"l", "1"}}},
                     {"annotations", Json::object()}}));
  EXPECT_EQ(
      AsObjectPatch(Json{{"spec", {{"stage", "Idle"}}}, {"annotations", {{"a", nullptr}}}}),
      (Json{{"spec", {{"stage", "Idle"}}}, {"metadata", {{"annotations", {{"a", nullptr}}}}}}));
}

TEST(Mirror, WhichSideWins) {
  const Json a = {{"spec", {{"stage", "Idle"}}}};
  const Json b = {{"spec", {{"stage", "Prep"}}}};
  const Json c = {{"spec", {{"stage", "Upgrade"}}}};
  EXPECT_EQ(Decide(std::nullopt, "u1", a, a), Flow::kNone);
  EXPECT_EQ(Decide(std::nullopt, "u1", b, a), Flow::kToNode) << "no base: spec from the cluster";
  const Base base{"u1", a};
  EXPECT_EQ(Decide(base, "u1", b, a), Flow::kToNode) << "the cluster changed";
  EXPECT_EQ(Decide(base, "u1", a, b), Flow::kToCluster) << "the node changed";
  EXPECT_EQ(Decide(base, "u1", b, c), Flow::kToNode) << "both changed: the cluster wins";
  EXPECT_EQ(Decide(base, "u2", b, c), Flow::kToCluster) << "a recreated CR loses to the node";
}

api::ImageBasedUpgrade NodeObject(int64_t generation) {
  api::ImageBasedUpgrade o = api::NewDefault(TimePoint(std::chrono::seconds(1000)), "uid");
  o.metadata.generation = generation;
  o.spec.stage = api::Stage::kPrep;
  o.status = api::Status{};
  o.status->observed_generation = generation;
  api::ConditionWriter(*o.status, generation - 1, TimePoint(std::chrono::seconds(1000)))
      .PrepInProgress("older");
  api::ConditionWriter(*o.status, generation, TimePoint(std::chrono::seconds(1001)))
      .PrepCompleted("Prep stage completed successfully");
  return o;
}

TEST(Mirror, ObservedGenerationsAreTheClustersOnceInSync) {
  const auto node = NodeObject(3);
  Json s = StatusForCluster(node, 7, true);
  EXPECT_EQ(s["observedGeneration"], 7);
  for (const auto& c : s["conditions"]) {
    if (c["type"] == "PrepCompleted") {
      EXPECT_EQ(c["observedGeneration"], 7);
    }
  }
  s = StatusForCluster(node, 7, false);
  EXPECT_EQ(s["observedGeneration"], 6) << "not in sync: behind the cluster's generation";
  EXPECT_EQ(StatusForCluster(api::NewDefault(Now(), "u"), 2, true), Json::object());
}

TEST(Mirror, OneEventPerStageTransition) {
  api::Status before, after;
  api::ConditionWriter(before, 1, Now()).PrepInProgress("In progress");
  EXPECT_FALSE(StateEvent(before, before));
  EXPECT_FALSE(StateEvent(std::nullopt, std::nullopt));
  after = before;
  api::ConditionWriter(after, 1, Now()).PrepFailed("seed: not found");
  auto ev = StateEvent(before, after);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, "Warning");
  EXPECT_EQ(ev->reason, "Failed");
  EXPECT_EQ(ev->message, after.conditions.back().type + ": " + after.conditions.back().message);
  api::Status done = before;
  api::ConditionWriter(done, 1, Now()).PrepCompleted("ok");
  EXPECT_EQ(StateEvent(before, done)->type, "Normal");
  const Json cr = {{"metadata", {{"uid", "abc"}, {"resourceVersion", "5"}}}};
  const Json e = EventObject(*ev, cr, "default", "node1", TimePoint(std::chrono::seconds(0)));
  EXPECT_EQ(e["involvedObject"]["uid"], "abc");
  EXPECT_EQ(e["involvedObject"]["kind"], "ImageBasedUpgrade");
  EXPECT_EQ(e["metadata"]["namespace"], "default");
  EXPECT_EQ(e["source"]["host"], "node1");
  EXPECT_EQ(e["firstTimestamp"], "1970-01-01T00:00:00Z");
}

Json Event(const std::string& type, const std::string& name, const std::string& rv) {
  return {
      {"type", type},
      {"object",
       {{"kind", "ImageBasedUpgrade"}, {"metadata", {{"name", name}, {"resourceVersion", rv}}}}}};
}

TEST(WatchCursor, VersionsBookmarksGoneAndDeletion) {
  WatchCursor cur("upgrade");
  EXPECT_FALSE(cur.CanWatch());
  cur.Listed("10");
  EXPECT_EQ(cur.WatchQuery(300),
            "?fieldSelector=metadata.name%3Dupgrade&watch=true&allowWatchBookmarks=true&"
            "resourceVersion=10&timeoutSeconds=300");
  EXPECT_EQ(cur.OnEvent(Event("MODIFIED", "upgrade", "11")).kind, WatchStep::kObject);
  EXPECT_EQ(cur.resource_version(), "11");
  EXPECT_EQ(cur.OnEvent(Event("BOOKMARK", "", "15")).kind, WatchStep::kContinue);
  EXPECT_EQ(cur.resource_version(), "15") << "a bookmark moves the watch on";
  EXPECT_EQ(cur.OnEvent(Event("ADDED", "other", "16")).kind, WatchStep::kContinue);
  EXPECT_EQ(cur.resource_version(), "16");
  EXPECT_EQ(cur.OnEvent(Event("DELETED", "upgrade", "17")).kind, WatchStep::kDeleted);
  const Json gone = {{"type", "ERROR"},
                     {"object",
                      {{"kind", "Status"},
                       {"code", 410},
                       {"reason", "Expired"},
                       {"message", "too old resource version: 5 (10)"}}}};
  const auto step = cur.OnEvent(gone);
  EXPECT_EQ(step.kind, WatchStep::kRelist);
  EXPECT_FALSE(cur.CanWatch()) << "after 410 the next call lists";
  EXPECT_EQ(step.message, "watch ERROR 410 Expired: too old resource version: 5 (10)");
  const Json other = {{"type", "ERROR"}, {"object", {{"code", 500}, {"reason", "InternalError"}}}};
  EXPECT_EQ(cur.OnEvent(other).kind, WatchStep::kError);
  EXPECT_EQ(cur.OnEvent(Json{{"type", "WHAT"}, {"object", Json::object()}}).kind,
            WatchStep::kError);
  EXPECT_EQ(cur.OnEvent(Json::array()).kind, WatchStep::kError);
}

TEST(Backoff, DoublesWithJitterUpToTheCap) {
  Backoff b(std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 42);
  int64_t expect_max = 100;
  std::set<int64_t> seen;
  for (int i = 0; i < 40; ++i) {
    const auto d = b.Next().count();
    EXPECT_GE(d, expect_max / 2);
    EXPECT_LE(d, expect_max);
    seen.insert(d);
    expect_max = std::min<int64_t>(1000, expect_max * 2);
  }
  EXPECT_GT(seen.size(), 10u) << "jittered, not a fixed sequence";
  b.Reset();
  EXPECT_LE(b.Next().count(), 100);
}

// The schema's property names under `node`, recursively, as dotted paths.
void SchemaPaths(const Json& node, const std::string& prefix, std::set<std::string>& out) {
  if (node.contains("items")) return SchemaPaths(node["items"], prefix + "[]", out);
  if (!node.contains("properties")) return;
  for (const auto& [name, sub] : node["properties"].items()) {
    out.insert(prefix + name);
    SchemaPaths(sub, prefix + name + ".", out);
  }
}
void JsonPaths(const Json& node, const std::string& prefix, std::set<std::string>& out) {
  if (node.is_array()) {
    if (!node.empty()) JsonPaths(node[0], prefix + "[]", out);
    return;
  }
  if (!node.is_object()) return;
  for (const auto& [name, sub] : node.items()) {
    out.insert(prefix + name);
    JsonPaths(sub, prefix + name + ".", out);
  }
}

TEST(Manifests, ParseAndTheCrdHasTheModelsFields) {
  std::vector<Json> docs = ParseYamlDocuments(manifests::Concatenated(), "lcactl manifests");
  std::set<std::string> kinds;
  Json crd;
  for (const auto& d : docs) {
    kinds.insert(d.value("kind", ""));
    if (d.value("kind", "") == "CustomResourceDefinition") crd = d;
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"CustomResourceDefinition", "Namespace", "ServiceAccount",
                                          "ClusterRole", "ClusterRoleBinding"}));
  ASSERT_TRUE(crd.is_object());
  EXPECT_EQ(crd["metadata"]["name"], "imagebasedupgrades.lca.openshift.io");
  EXPECT_EQ(crd["spec"]["scope"], "Cluster");
  const Json& v1 = crd["spec"]["versions"][0];
  EXPECT_EQ(v1["subresources"], (Json{{"status", Json::object()}}));
  std::vector<std::string> columns;
  for (const auto& c : v1["additionalPrinterColumns"]) columns.push_back(c["name"]);
  EXPECT_EQ(columns, (std::vector<std::string>{"Age", "Desired Stage", "State", "Details"}));
  EXPECT_EQ(v1["schema"]["openAPIV3Schema"]["x-kubernetes-validations"].size(), 6u);

  // A model object with every field set, through the model's own JSON.
  api::ImageBasedUpgrade o = NodeObject(2);
  o.spec.seed_image_ref = {"4.15.2", "quay.io/x/seed:4.15.2", api::PullSecretRef{"ps"}};
  o.spec.oadp_content = {{"a", "ns"}};
  o.spec.extra_manifests = {{"b", "ns"}};
  o.spec.auto_rollback_on_failure = api::AutoRollbackOnFailure{60};
  o.status->valid_next_stages = {api::Stage::kIdle};
  o.status->rollback_availability_expiration = Now();
  o.status->history = {api::StageHistory{api::Stage::kPrep, Now(), Now(), {{"p", Now(), Now()}}}};
  std::set<std::string> model, schema;
  JsonPaths(api::SpecToJson(o.spec), "spec.", model);
  JsonPaths(api::StatusToJson(*o.status), "status.", model);
  const Json& props = v1["schema"]["openAPIV3Schema"]["properties"];
  SchemaPaths(props["spec"], "spec.", schema);
  SchemaPaths(props["status"], "status.", schema);
  EXPECT_EQ(model, schema);
  std::vector<std::string> stages;
  for (const auto& s : props["spec"]["properties"]["stage"]["enum"]) stages.push_back(s);
  EXPECT_EQ(stages, (std::vector<std::string>{"Idle", "Prep", "Upgrade", "Rollback"}));
}

TEST(Connection, MetricsRoundTripAndTheStatusLine) {
  metrics::ClusterConnection c;
  c.server = "https://127.0.0.1:6443";
  c.connected = false;
  c.last_sync = 1000;
  c.errors = {{"Unauthorized", 3}, {"Unreachable", 1}};
  c.last_error_reason = "Unauthorized";
  c.last_error = 1060;
  metrics::MetricsInput in;
  in.object = api::NewDefault(TimePoint(std::chrono::seconds(1)), "u");
  in.cluster = c;
  const std::string text = metrics::RenderMetrics(in);
  EXPECT_NE(text.find("lca_kube_connected{server=\"https://127.0.0.1:6443\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lca_kube_errors_total{reason=\"Unauthorized\"} 3\n"), std::string::npos);
  const auto back = metrics::ClusterFromSamples(metrics::ParseExposition(text));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, c);
  in.cluster.reset();
  EXPECT_FALSE(metrics::ClusterFromSamples(metrics::ParseExposition(metrics::RenderMetrics(in))))
      << "not in Kubernetes mode: no line";

  const TimePoint now(std::chrono::seconds(1120));
  EXPECT_EQ(ClusterLine(c, now),
            "not connected to https://127.0.0.1:6443: Unauthorized 60s ago (4 errors), last "
            "sync 2m ago");
  c.connected = true;
  c.last_sync = 1115;
  EXPECT_EQ(ClusterLine(c, now), "connected to https://127.0.0.1:6443, last sync 5s ago");
  c.last_sync = 0;
  EXPECT_EQ(ClusterLine(c, now), "connected to https://127.0.0.1:6443, last sync never");
  const std::string page = RenderHuman(in.object, now, c);
  EXPECT_NE(page.find("Cluster:"), std::string::npos) << page;
  EXPECT_EQ(RenderHuman(in.object, now).find("Cluster:"), std::string::npos);
}

}  // namespace
}  // namespace lca::kube
