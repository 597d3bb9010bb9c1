// The libcurl KubeClient against the API server stand-in over TLS: the kubeconfig's CA (file
// and -data), a bearer token and a client certificate; get/create/merge patch/status/events;
// a watch with bookmarks that a compaction answers with 410 Gone; 401 and 409 as ApiErrors whose
// messages carry no credential; a server with a CA the kubeconfig does not trust is refused.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "agent/kube/client.hpp"
#include "agent/kube/watch_cursor.hpp"
#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "tests/support/kube_standin.hpp"

namespace lca::kube {
namespace {

const std::string kIbus = "/apis/lca.openshift.io/v1/imagebasedupgrades";

Json NewIbu() {
  return {{"apiVersion", "lca.openshift.io/v1"},
          {"kind", "ImageBasedUpgrade"},
          {"metadata", {{"name", "upgrade"}}},
          {"spec", {{"stage", "Idle"}}}};
}

// The exception an API call throws (fails the test when it throws none).
ApiError Refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError";
  return ApiError(Errc::kInternal, 0, "", "");
}

TEST(KubeClient, TokenAndCaFromTheKubeconfig) {
  test::KubeStandin kube({.bookmark_interval_seconds = 0.2});
  auto client = MakeCurlClient(LoadKubeconfig(kube.kubeconfig()));
  const Json created = client->Create(kIbus, NewIbu());
  EXPECT_EQ(created["spec"]["stage"], "Idle");
  const Json got = client->Get(kIbus + "/upgrade");
  EXPECT_EQ(got["metadata"]["uid"], created["metadata"]["uid"]);

  // Status through the subresource with a resourceVersion precondition; a stale one is 409.
  const std::string rv = got["metadata"]["resourceVersion"];
  const Json patched = client->PatchStatus(
      kIbus + "/upgrade",
      {{"metadata", {{"resourceVersion", rv}}}, {"status", {{"observedGeneration", 1}}}});
  EXPECT_EQ(patched["status"]["observedGeneration"], 1);
  const ApiError conflict = Refusal([&] {
    client->PatchStatus(kIbus + "/upgrade", {{"metadata", {{"resourceVersion", rv}}},
                                             {"status", {{"observedGeneration", 2}}}});
  });
  EXPECT_EQ(conflict.http_status(), 409);
  EXPECT_EQ(conflict.reason(), "Conflict");
  const ApiError exists = Refusal([&] { client->Create(kIbus, NewIbu()); });
  EXPECT_EQ(exists.http_status(), 409);
  EXPECT_EQ(exists.reason(), "AlreadyExists");
  client->CreateEvent("default", {{"apiVersion", "v1"},
                                  {"kind", "Event"},
                                  {"metadata", {{"generateName", "upgrade."}}},
                                  {"involvedObject", {{"kind", "ImageBasedUpgrade"}}},
                                  {"reason", "Test"},
                                  {"message", "m"}});
  EXPECT_EQ(kube.Kubectl({"get", "events", "-n", "default", "-o", "name"}).code, 0);

  // A revoked token: 401, and neither the message nor the reason shows it.
  kube.RevokeToken(kube.token());
  const ApiError denied = Refusal([&] { client->Get(kIbus); });
  EXPECT_EQ(denied.http_status(), 401);
  EXPECT_EQ(denied.reason(), "Unauthorized");
  EXPECT_EQ(std::string(denied.what()).find(kube.token()), std::string::npos) << denied.what();
  EXPECT_NE(std::string(denied.what()).find("GET " + kube.server() + kIbus + ": HTTP 401"),
            std::string::npos)
      << denied.what();
}

TEST(KubeClient, WatchBookmarksAndGoneAfterACompaction) {
  test::KubeStandin kube({.bookmark_interval_seconds = 0.2});
  auto client = MakeCurlClient(LoadKubeconfig(kube.kubeconfig()));
  client->Create(kIbus, NewIbu());
  WatchCursor cursor("upgrade");
  const Json list = client->Get(kIbus + cursor.ListQuery());
  ASSERT_EQ(list["items"].size(), 1u);
  cursor.Listed(list["metadata"]["resourceVersion"]);

  // Bookmarks move the cursor; a change arrives as MODIFIED; `stop` ends the stream.
  std::atomic<bool> stop{false};
  int bookmarks = 0, objects = 0;
  std::thread changer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    kube.Kubectl({"label", "ibu", "upgrade", "x=y"});
  });
  client->Watch(
      kIbus + cursor.WatchQuery(30),
      [&](const Json& ev) {
        const auto step = cursor.OnEvent(ev);
        if (ev["type"] == "BOOKMARK") ++bookmarks;
        if (step.kind == WatchStep::kObject) {
          ++objects;
          EXPECT_EQ(step.object["metadata"]["labels"]["x"], "y");
        }
        if (objects > 0 && bookmarks >= 2) stop = true;
        return true;
      },
      stop);
  changer.join();
  EXPECT_EQ(objects, 1);
  EXPECT_GE(bookmarks, 2);

  // Compacted past the cursor: the watch answers 410 Gone (an ERROR event) and the cursor
  // asks for a list.
  const std::string old_rv = list["metadata"]["resourceVersion"];
  kube.Kubectl({"label", "ibu", "upgrade", "x=z", "--overwrite"});
  kube.Compact();
  cursor.Listed(old_rv);
  WatchStep last;
  stop = false;
  try {
    client->Watch(
        kIbus + cursor.WatchQuery(30),
        [&](const Json& ev) {
          last = cursor.OnEvent(ev);
          return last.kind == WatchStep::kContinue;
        },
        stop);
    EXPECT_EQ(last.kind, WatchStep::kRelist) << last.message;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.http_status(), 410) << e.what();  // some servers answer the request with 410
  }
  EXPECT_FALSE(cursor.CanWatch());
}

TEST(KubeClient, ClientCertificateDataAndAnUntrustedServer) {
  test::KubeStandin kube({.bookmark_interval_seconds = 1, .client_certs = true});
  // The cert kubeconfig with everything inline (-data), as oc login writes it.
  Credentials c = LoadKubeconfig(kube.kubeconfig_cert());
  test::TempDir dir;
  WriteFileAtomic(dir / "kc",
                  "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                  "clusters:\n- name: x\n  cluster:\n    server: " +
                      kube.server() +
                      "\n    certificate-authority-data: " + Base64Encode(c.ca_pem) +
                      "\nusers:\n- name: x\n  user:\n    client-certificate-data: " +
                      Base64Encode(c.client_cert_pem) +
                      "\n    client-key-data: " + Base64Encode(c.client_key_pem) +
                      "\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\n",
                  0600);
  auto client = MakeCurlClient(LoadKubeconfig(dir / "kc"));
  EXPECT_EQ(client->Create(kIbus, NewIbu())["spec"]["stage"], "Idle");

  // Another CA: the TLS handshake fails, reported as unreachable, no key material in it.
  test::TempDir other("lca-other-ca");
  test::TestCa ca(other / "pki");
  c.ca_pem = ReadFile(ca.ca());
  auto untrusting = MakeCurlClient(c);
  const ApiError tls = Refusal([&] { untrusting->Get(kIbus); });
  EXPECT_EQ(tls.http_status(), 0);
  EXPECT_EQ(tls.reason(), "Unreachable");
  EXPECT_EQ(std::string(tls.what()).find("PRIVATE KEY"), std::string::npos);
}

}  // namespace
}  // namespace lca::kube
