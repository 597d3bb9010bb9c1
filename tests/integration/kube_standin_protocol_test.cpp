// The stand-in's protocol checked over HTTPS (curl): what the agent's client relies on and
// kubectl does not exercise — watch replay and bookmarks, 410 Gone after a compaction, 409 on a
// stale resourceVersion, status subresource isolation, dryRun, restarts that keep state, and
// Status objects shaped as a real API server sends them.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/support/kube_standin.hpp"

namespace lca::test {
namespace {

using nlohmann::json;

const std::string kIbus = "/apis/lca.openshift.io/v1/imagebasedupgrades";
const std::string kCms = "/api/v1/namespaces/default/configmaps";

json Ibu(const std::string& stage) {
  return {{"apiVersion", "lca.openshift.io/v1"},
          {"kind", "ImageBasedUpgrade"},
          {"metadata", {{"name", "upgrade"}}},
          {"spec", {{"stage", stage}}}};
}

std::vector<json> Events(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(json::parse(l));
  }
  return out;
}

std::string Rv(const json& obj) { return obj["metadata"]["resourceVersion"]; }

class KubeProtocolTest : public ::testing::Test {
 protected:
  json Create(const std::string& path, const json& obj) {
    const auto r = kube_.Http("POST", path, obj.dump());
    EXPECT_EQ(r.code, 201) << r.body;
    return r.Json();
  }
  json MergePatch(const std::string& path, const json& patch, int want = 200) {
    const auto r = kube_.Http("PATCH", path, patch.dump(), "application/merge-patch+json");
    EXPECT_EQ(r.code, want) << r.body;
    return r.Json();
  }
  json Get(const std::string& path) {
    const auto r = kube_.Http("GET", path);
    EXPECT_EQ(r.code, 200) << r.body;
    return r.Json();
  }

  KubeStandin kube_{{.bookmark_interval_seconds = 1}};
};

TEST_F(KubeProtocolTest, CreateSetsServerMetadataAndADuplicateIsAlreadyExists) {
  const json a = Create(kIbus, Ibu("Idle"));
  EXPECT_EQ(a["metadata"]["generation"], 1);
  EXPECT_EQ(a["metadata"]["uid"].get<std::string>().size(), 36u);
  EXPECT_TRUE(a["metadata"].contains("creationTimestamp"));
  EXPECT_GT(std::stol(Rv(a)), 0);
  const auto dup = kube_.Http("POST", kIbus, Ibu("Idle").dump());
  EXPECT_EQ(dup.code, 409);
  EXPECT_EQ(dup.Json(), json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},
      "status":"Failure","message":"imagebasedupgrades.lca.openshift.io \"upgrade\" already exists",
      "reason":"AlreadyExists","details":{"name":"upgrade","group":"lca.openshift.io",
      "kind":"imagebasedupgrades"},"code":409})"));
  const auto missing = kube_.Http("GET", kIbus + "/other");
  EXPECT_EQ(missing.code, 404);
  EXPECT_EQ(missing.Json()["message"], "imagebasedupgrades.lca.openshift.io \"other\" not found");
  EXPECT_EQ(missing.Json()["reason"], "NotFound");
}

TEST_F(KubeProtocolTest, StaleResourceVersionIsConflictForPutAndPatch) {
  const json a = Create(kIbus, Ibu("Idle"));
  MergePatch(kIbus + "/upgrade", {{"spec", {{"stage", "Prep"}}}});
  json stale = a;
  stale["spec"]["stage"] = "Upgrade";
  const auto put = kube_.Http("PUT", kIbus + "/upgrade", stale.dump());
  EXPECT_EQ(put.code, 409);
  EXPECT_EQ(put.Json()["reason"], "Conflict");
  EXPECT_EQ(put.Json()["message"],
            "Operation cannot be fulfilled on imagebasedupgrades.lca.openshift.io \"upgrade\": "
            "the object has been modified; please apply your changes to the latest version and "
            "try again");
  const json patched =
      MergePatch(kIbus + "/upgrade",
                 {{"metadata", {{"resourceVersion", Rv(a)}}}, {"spec", {{"stage", "X"}}}}, 409);
  EXPECT_EQ(patched["code"], 409);
  // A custom resource's PUT must carry a resourceVersion.
  json unconditional = Ibu("Idle");
  const auto r = kube_.Http("PUT", kIbus + "/upgrade", unconditional.dump());
  EXPECT_EQ(r.code, 422) << r.body;
  // With the current one it goes through and bumps it.
  json current = Get(kIbus + "/upgrade");
  current["spec"]["stage"] = "Upgrade";
  const auto ok = kube_.Http("PUT", kIbus + "/upgrade", current.dump());
  ASSERT_EQ(ok.code, 200) << ok.body;
  EXPECT_GT(std::stol(Rv(ok.Json())), std::stol(Rv(current)));
}

TEST_F(KubeProtocolTest, StatusSubresourceIsolatesStatusFromSpecAndGenerationFollowsSpec) {
  Create(kIbus, Ibu("Idle"));
  // The main resource ignores status.
  json o = MergePatch(kIbus + "/upgrade",
                      {{"spec", {{"stage", "Prep"}}}, {"status", {{"observedGeneration", 7}}}});
  EXPECT_FALSE(o.contains("status"));
  EXPECT_EQ(o["metadata"]["generation"], 2);
  // /status ignores spec and metadata, and does not move generation.
  o = MergePatch(kIbus + "/upgrade/status", {{"spec", {{"stage", "Rollback"}}},
                                             {"metadata", {{"labels", {{"x", "y"}}}}},
                                             {"status", {{"observedGeneration", 2}}}});
  EXPECT_EQ(o["spec"]["stage"], "Prep");
  EXPECT_FALSE(o["metadata"].contains("labels"));
  EXPECT_EQ(o["status"]["observedGeneration"], 2);
  EXPECT_EQ(o["metadata"]["generation"], 2);
  // Metadata alone does not move generation either.
  o = MergePatch(kIbus + "/upgrade", {{"metadata", {{"labels", {{"x", "y"}}}}}});
  EXPECT_EQ(o["metadata"]["generation"], 2);
  // A write that changes nothing keeps the resourceVersion.
  const std::string rv = Rv(o);
  o = MergePatch(kIbus + "/upgrade/status", {{"status", {{"observedGeneration", 2}}}});
  EXPECT_EQ(Rv(o), rv);
  // PUT /status with a stale resourceVersion conflicts like the main resource.
  json st = Get(kIbus + "/upgrade");
  st["metadata"]["resourceVersion"] = "1";
  EXPECT_EQ(kube_.Http("PUT", kIbus + "/upgrade/status", st.dump()).code, 409);
}

TEST_F(KubeProtocolTest, DryRunAnswersWithoutPersisting) {
  const auto created = kube_.Http("POST", kIbus + "?dryRun=All", Ibu("Idle").dump());
  EXPECT_EQ(created.code, 201) << created.body;
  EXPECT_EQ(created.Json()["spec"]["stage"], "Idle");
  EXPECT_EQ(kube_.Http("GET", kIbus + "/upgrade").code, 404);
  const json a = Create(kIbus, Ibu("Idle"));
  const auto patched = kube_.Http("PATCH", kIbus + "/upgrade?dryRun=All",
                                  R"({"spec":{"stage":"Prep"}})", "application/merge-patch+json");
  EXPECT_EQ(patched.code, 200);
  EXPECT_EQ(patched.Json()["spec"]["stage"], "Prep");
  const json now = Get(kIbus + "/upgrade");
  EXPECT_EQ(now["spec"]["stage"], "Idle");
  EXPECT_EQ(Rv(now), Rv(a));
  EXPECT_EQ(kube_.Http("DELETE", kIbus + "/upgrade?dryRun=All").code, 200);
  EXPECT_EQ(kube_.Http("GET", kIbus + "/upgrade").code, 200);
  EXPECT_EQ(
      kube_.Http("PATCH", kIbus + "/upgrade?dryRun=Some", "{}", "application/merge-patch+json")
          .code,
      422);
}

TEST_F(KubeProtocolTest, WatchReplaysAddedModifiedDeletedAfterAResourceVersion) {
  const std::string start = Get(kIbus)["metadata"]["resourceVersion"];
  Create(kIbus, Ibu("Idle"));
  MergePatch(kIbus + "/upgrade", {{"spec", {{"stage", "Prep"}}}});
  ASSERT_EQ(kube_.Http("DELETE", kIbus + "/upgrade").code, 200);
  const auto w = kube_.Http("GET", kIbus + "?watch=true&timeoutSeconds=1&resourceVersion=" + start);
  ASSERT_EQ(w.code, 200) << w.body;
  const auto ev = Events(w.body);
  ASSERT_EQ(ev.size(), 3u) << w.body;
  EXPECT_EQ(ev[0]["type"], "ADDED");
  EXPECT_EQ(ev[1]["type"], "MODIFIED");
  EXPECT_EQ(ev[1]["object"]["spec"]["stage"], "Prep");
  EXPECT_EQ(ev[2]["type"], "DELETED");
  EXPECT_LT(std::stol(Rv(ev[0]["object"])), std::stol(Rv(ev[2]["object"])));
  // Without a resourceVersion a watch starts with the current objects as ADDED.
  Create(kIbus, Ibu("Idle"));
  const auto fresh = Events(kube_.Http("GET", kIbus + "?watch=1&timeoutSeconds=1").body);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0]["type"], "ADDED");
  // A watch-list (sendInitialEvents) marks the end of the initial objects with a bookmark.
  const auto wl =
      Events(kube_
                 .Http("GET", kIbus + "?watch=1&timeoutSeconds=1&sendInitialEvents=true&"
                                      "allowWatchBookmarks=true&"
                                      "resourceVersionMatch=NotOlderThan")
                 .body);
  ASSERT_GE(wl.size(), 2u);
  EXPECT_EQ(wl[0]["type"], "ADDED");
  EXPECT_EQ(wl[1]["type"], "BOOKMARK");
  EXPECT_EQ(wl[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
  // A selector narrows the stream; an object leaving it is DELETED for that watcher.
  const std::string rv = Get(kIbus)["metadata"]["resourceVersion"];
  MergePatch(kIbus + "/upgrade", {{"metadata", {{"labels", {{"pick", "me"}}}}}});
  MergePatch(kIbus + "/upgrade", {{"metadata", {{"labels", {{"pick", "other"}}}}}});
  const auto sel = Events(
      kube_
          .Http("GET",
                kIbus + "?watch=1&timeoutSeconds=1&labelSelector=pick%3Dme&resourceVersion=" + rv)
          .body);
  ASSERT_EQ(sel.size(), 2u);
  EXPECT_EQ(sel[0]["type"], "ADDED");
  EXPECT_EQ(sel[1]["type"], "DELETED");
}

TEST_F(KubeProtocolTest, IdleWatchGetsBookmarksOnlyWhenItAsks) {
  Create(kIbus, Ibu("Idle"));
  const std::string rv = Get(kIbus)["metadata"]["resourceVersion"];
  const auto w = kube_.Http(
      "GET", kIbus + "?watch=true&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion=" + rv);
  const auto ev = Events(w.body);
  ASSERT_GE(ev.size(), 2u) << w.body;
  for (const auto& e : ev) {
    EXPECT_EQ(e["type"], "BOOKMARK");
    EXPECT_EQ(e["object"]["kind"], "ImageBasedUpgrade");
    EXPECT_EQ(Rv(e["object"]), rv);
  }
  const auto plain =
      kube_.Http("GET", kIbus + "?watch=true&timeoutSeconds=2&resourceVersion=" + rv);
  EXPECT_EQ(plain.body, "");
}

TEST_F(KubeProtocolTest, CompactionMakesOldResourceVersionsGone) {
  const json a = Create(kIbus, Ibu("Idle"));
  MergePatch(kIbus + "/upgrade", {{"spec", {{"stage", "Prep"}}}});
  const long compacted = kube_.Compact();
  EXPECT_EQ(compacted, kube_.ResourceVersion());
  const auto w = kube_.Http("GET", kIbus + "?watch=true&timeoutSeconds=1&resourceVersion=" + Rv(a));
  ASSERT_EQ(w.code, 200);
  const auto ev = Events(w.body);
  ASSERT_EQ(ev.size(), 1u) << w.body;
  EXPECT_EQ(ev[0]["type"], "ERROR");
  EXPECT_EQ(ev[0]["object"]["code"], 410);
  EXPECT_EQ(ev[0]["object"]["reason"], "Expired");
  EXPECT_EQ(ev[0]["object"]["message"],
            "too old resource version: " + Rv(a) + " (" + std::to_string(compacted) + ")");
  const auto list =
      kube_.Http("GET", kIbus + "?resourceVersionMatch=Exact&resourceVersion=" + Rv(a));
  EXPECT_EQ(list.code, 410);
  // The compaction survives a restart.
  kube_.Restart();
  const auto after = Events(
      kube_.Http("GET", kIbus + "?watch=true&timeoutSeconds=1&resourceVersion=" + Rv(a)).body);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["object"]["code"], 410);
  // From the compacted revision on, watching works.
  const auto ok = kube_.Http(
      "GET", kIbus + "?watch=true&timeoutSeconds=1&resourceVersion=" + std::to_string(compacted));
  EXPECT_EQ(ok.body, "");
}

TEST_F(KubeProtocolTest, RestartKeepsObjectsAndResourceVersions) {
  const json a = Create(kIbus, Ibu("Idle"));
  kube_.Restart();
  const json b = Get(kIbus + "/upgrade");
  EXPECT_EQ(b["metadata"]["uid"], a["metadata"]["uid"]);
  EXPECT_EQ(Rv(b), Rv(a));
  const json c = MergePatch(kIbus + "/upgrade", {{"spec", {{"stage", "Prep"}}}});
  EXPECT_GT(std::stol(Rv(c)), std::stol(Rv(a)));
  const auto w = kube_.Http("GET", kIbus + "?watch=true&timeoutSeconds=1&resourceVersion=" + Rv(a));
  const auto ev = Events(w.body);
  ASSERT_EQ(ev.size(), 1u) << w.body;
  EXPECT_EQ(ev[0]["type"], "MODIFIED");
  // Stopped: nothing answers.
  kube_.Stop();
  EXPECT_EQ(kube_.Http("GET", kIbus, "", "", std::nullopt, 5).code, 0);
}

TEST_F(KubeProtocolTest, RestartThatForgetsHistoryMakesOldWatchesGoneAndFutureOnesTooLarge) {
  const json a = Create(kIbus, Ibu("Idle"));
  MergePatch(kIbus + "/upgrade", {{"spec", {{"stage", "Prep"}}}});
  kube_.Restart(/*forget_history=*/true);
  auto ev =
      Events(kube_.Http("GET", kIbus + "?watch=1&timeoutSeconds=1&resourceVersion=" + Rv(a)).body);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["object"]["code"], 410);
  const std::string now = Get(kIbus)["metadata"]["resourceVersion"];
  EXPECT_EQ(kube_.Http("GET", kIbus + "?watch=1&timeoutSeconds=1&resourceVersion=" + now).body, "");
  const std::string future = std::to_string(std::stol(now) + 100);
  ev =
      Events(kube_.Http("GET", kIbus + "?watch=1&timeoutSeconds=1&resourceVersion=" + future).body);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["type"], "ERROR");
  EXPECT_EQ(ev[0]["object"]["code"], 504);
  EXPECT_EQ(ev[0]["object"]["message"],
            "Too large resource version: " + future + ", current: " + now);
}

TEST_F(KubeProtocolTest, ApplyNeedsAFieldManagerAndTakesYaml) {
  const std::string yaml =
      "apiVersion: lca.openshift.io/v1\nkind: ImageBasedUpgrade\nmetadata:\n  name: upgrade\n"
      "spec:\n  stage: Idle\n";
  const auto none = kube_.Http("PATCH", kIbus + "/upgrade", yaml, "application/apply-patch+yaml");
  EXPECT_EQ(none.code, 422) << none.body;
  const auto created = kube_.Http("PATCH", kIbus + "/upgrade?fieldManager=agent", yaml,
                                  "application/apply-patch+yaml");
  EXPECT_EQ(created.code, 201) << created.body;
  EXPECT_EQ(created.Json()["metadata"]["managedFields"][0]["operation"], "Apply");
  const auto again = kube_.Http("PATCH", kIbus + "/upgrade?fieldManager=agent",
                                std::string(yaml).replace(yaml.find("Idle"), 4, "Prep"),
                                "application/apply-patch+yaml");
  EXPECT_EQ(again.code, 200) << again.body;
  EXPECT_EQ(again.Json()["spec"]["stage"], "Prep");
  // Create refuses a resourceVersion; apply takes it as a precondition.
  json with_rv = Ibu("Idle");
  with_rv["metadata"]["name"] = "other";
  with_rv["metadata"]["resourceVersion"] = "5";
  const auto bad = kube_.Http("POST", kIbus, with_rv.dump());
  EXPECT_EQ(bad.code, 400);
  EXPECT_EQ(bad.Json()["message"], "resourceVersion should not be set on objects to be created");
}

// Applying a CRD for a kind the resource files already define (the IBU) gives it the CRD's
// schema; deleting the CRD takes its objects and brings the plain kind back.
TEST_F(KubeProtocolTest, CrdForAConfiguredKindTakesOverUntilDeleted) {
  const json crd = json::parse(R"({"apiVersion":"apiextensions.k8s.io/v1",
    "kind":"CustomResourceDefinition","metadata":{"name":"imagebasedupgrades.lca.openshift.io"},
    "spec":{"group":"lca.openshift.io","scope":"Cluster",
      "names":{"kind":"ImageBasedUpgrade","plural":"imagebasedupgrades","singular":"imagebasedupgrade",
               "shortNames":["ibu"]},
      "versions":[{"name":"v1","served":true,"storage":true,"subresources":{"status":{}},
        "schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object",
          "properties":{"stage":{"type":"string","enum":["Idle","Prep","Upgrade","Rollback"]}}}}}}}]}})");
  const std::string crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  const json made = Create(crds, crd);
  EXPECT_EQ(made["status"]["conditions"][1]["type"], "Established");
  Create(kIbus, Ibu("Idle"));
  const auto bad = kube_.Http("PATCH", kIbus + "/upgrade", R"({"spec":{"stage":"Foo"}})",
                              "application/merge-patch+json");
  EXPECT_EQ(bad.code, 422);
  EXPECT_EQ(bad.Json()["message"],
            "ImageBasedUpgrade.lca.openshift.io \"upgrade\" is invalid: spec.stage: Unsupported "
            "value: \"Foo\": supported values: \"Idle\", \"Prep\", \"Upgrade\", \"Rollback\"");
  ASSERT_EQ(kube_.Http("DELETE", crds + "/imagebasedupgrades.lca.openshift.io").code, 200);
  EXPECT_EQ(kube_.Http("GET", kIbus + "/upgrade").code, 404);
  Create(kIbus, Ibu("Foo"));  // the resource file's kind has no schema
}

TEST_F(KubeProtocolTest, NamespacedObjectsSelectorsAndMissingNamespace) {
  auto cm = [](const std::string& name, const std::string& app) {
    return json{{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
                {"data", {{"k", "v"}}}};
  };
  Create(kCms, cm("a", "x"));
  Create(kCms, cm("b", "y"));
  const auto missing =
      kube_.Http("POST", "/api/v1/namespaces/nope/configmaps", cm("c", "x").dump());
  EXPECT_EQ(missing.code, 404);
  EXPECT_EQ(missing.Json()["message"], "namespaces \"nope\" not found");
  const json all = Get("/api/v1/configmaps");
  EXPECT_EQ(all["kind"], "ConfigMapList");
  EXPECT_EQ(all["items"].size(), 2u);
  EXPECT_EQ(Get(kCms + "?labelSelector=app%3Dx")["items"].size(), 1u);
  EXPECT_EQ(Get(kCms + "?labelSelector=app%20in%20(x,y)")["items"].size(), 2u);
  EXPECT_EQ(Get(kCms + "?fieldSelector=metadata.name%3Db")["items"][0]["metadata"]["name"], "b");
  const json page = Get(kCms + "?limit=1");
  EXPECT_EQ(page["items"].size(), 1u);
  const std::string cont = page["metadata"]["continue"];
  EXPECT_EQ(Get(kCms + "?limit=1&continue=" + cont)["items"][0]["metadata"]["name"], "b");
  EXPECT_EQ(
      kube_.Http("GET", "/api/v1/namespaces/default/configmaps/a").Json()["metadata"]["namespace"],
      "default");
}

TEST_F(KubeProtocolTest, JsonPatchAndUnsupportedMediaType) {
  Create(kIbus, Ibu("Idle"));
  const auto r = kube_.Http("PATCH", kIbus + "/upgrade",
                            R"([{"op":"replace","path":"/spec/stage","value":"Prep"}])",
                            "application/json-patch+json");
  ASSERT_EQ(r.code, 200) << r.body;
  EXPECT_EQ(r.Json()["spec"]["stage"], "Prep");
  const auto failed = kube_.Http("PATCH", kIbus + "/upgrade",
                                 R"([{"op":"test","path":"/spec/stage","value":"Idle"}])",
                                 "application/json-patch+json");
  EXPECT_EQ(failed.code, 422);
  const auto smp =
      kube_.Http("PATCH", kIbus + "/upgrade", "{}", "application/strategic-merge-patch+json");
  EXPECT_EQ(smp.code, 415);
  EXPECT_EQ(smp.Json()["reason"], "UnsupportedMediaType");
}

TEST_F(KubeProtocolTest, InjectedFaultsAnswerTheNextMatchingRequestsOnly) {
  kube_.InjectFault(503, 2, kIbus, "GET");
  EXPECT_EQ(kube_.Http("GET", kCms).code, 200);  // another path
  const auto first = kube_.Http("GET", kIbus);
  EXPECT_EQ(first.code, 503);
  EXPECT_EQ(first.Json()["reason"], "ServiceUnavailable");
  EXPECT_EQ(kube_.Http("GET", kIbus).code, 503);
  EXPECT_EQ(kube_.Http("GET", kIbus).code, 200);
  kube_.InjectFault(429, 1);
  const auto limited = kube_.Http("GET", kIbus);
  EXPECT_EQ(limited.code, 429);
  EXPECT_EQ(limited.Json()["details"]["retryAfterSeconds"], 1);
  kube_.InjectFault(0, 1);
  EXPECT_EQ(kube_.Http("GET", kIbus).code, 0);  // no answer at all
  EXPECT_EQ(kube_.Http("GET", kIbus).code, 200);
}

TEST_F(KubeProtocolTest, AuthStatusesAndTheRequestLog) {
  const auto none = kube_.Http("GET", kIbus, "", "", std::string());
  EXPECT_EQ(none.code, 401);
  EXPECT_EQ(none.Json(), json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},
      "status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})"));
  EXPECT_EQ(kube_.Http("GET", kIbus, "", "", std::string("wrong")).code, 401);
  // Health and version are public, as for system:public-info-viewer; a bad token is still 401.
  EXPECT_EQ(kube_.Http("GET", "/readyz", "", "", std::string()).code, 200);
  EXPECT_EQ(kube_.Http("GET", "/version", "", "", std::string()).Json()["major"], "1");
  EXPECT_EQ(kube_.Http("GET", "/readyz", "", "", std::string("wrong")).code, 401);
  EXPECT_EQ(kube_.Http("GET", "/api", "", "", std::string()).code, 401);
  const std::string reader = kube_.AddToken("reader");
  kube_.Deny(reader, {"*"}, {"configmaps"});
  const auto denied = kube_.Http("GET", kCms, "", "", reader);
  EXPECT_EQ(denied.code, 403);
  EXPECT_EQ(denied.Json()["message"],
            "configmaps is forbidden: User \"reader\" cannot list resource \"configmaps\" in API "
            "group \"\" in the namespace \"default\"");
  EXPECT_EQ(kube_.Http("GET", kIbus, "", "", reader).code, 200);
  const auto reqs = kube_.Requests();
  ASSERT_GE(reqs.size(), 4u);
  EXPECT_EQ(reqs.back().method, "GET");
  EXPECT_EQ(reqs.back().path, kIbus);
  EXPECT_EQ(reqs.back().user, "reader");
  EXPECT_EQ(reqs.back().code, 200);
  std::ifstream log(kube_.request_log());
  std::stringstream all;
  all << log.rdbuf();
  EXPECT_EQ(all.str().find(reader), std::string::npos) << "a token in the request log";
}

}  // namespace
}  // namespace lca::test
