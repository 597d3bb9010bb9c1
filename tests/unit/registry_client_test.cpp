// The in-process registry client against a small token-auth registry written for the test (a
// Python http.server: real HTTP, real challenges), for what the test bed's registry (htpasswd,
// Basic) does not show: the Bearer token flow, digest checks, size limits, and the cases it
// must leave to skopeo.
#include "precache/registry_client.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "formats/oci_layout.hpp"
#include "precache/registries_conf.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::precache {
namespace {

namespace fs = std::filesystem;

TEST(ParseImageRef, SplitsRegistryRepositoryTagAndDigest) {
  const std::string d = "sha256:" + std::string(64, 'a');
  auto r = ParseImageRef("quay.io/ocp/release:4.15");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->registry, "quay.io");
  EXPECT_EQ(r->repository, "ocp/release");
  EXPECT_EQ(r->tag, "4.15");
  EXPECT_EQ(r->Reference(), "4.15");
  r = ParseImageRef("127.0.0.1:5000/a/b/c@" + d);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "a/b/c");
  EXPECT_EQ(r->Reference(), d);
  r = ParseImageRef("localhost:5000/x:v1@" + d);  // the digest wins over the tag
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, d);
  r = ParseImageRef("registry.example.com:8443/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->Repo(), "registry.example.com:8443/x");
  r = ParseImageRef("docker.io/busybox");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repository, "library/busybox");
}

TEST(ParseImageRef, LeavesShortNamesTransportsAndOddReferencesAlone) {
  for (const std::string bad :
       {"busybox", "library/busybox:1", "docker://quay.io/x:1", "oci:/dir:tag", "",
        "quay.io/x@sha256:abc", "quay.io/X:1", "quay.io//x", "quay.io/x y:1"}) {
    EXPECT_FALSE(ParseImageRef(bad).has_value()) << bad;
  }
}

// A registry with a token service, one repository "ocp/app" and tag "v1".
class TokenRegistry {
 public:
  explicit TokenRegistry(const fs::path& dir, const std::string& manifest) {
    WriteFileAtomic(dir / "manifest.json", manifest, 0644);
    WriteFileAtomic(dir / "server.py", kServer, 0644);
    port_file_ = dir / "port";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("python3", "python3", (dir / "server.py").c_str(), dir.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !fs::exists(port_file_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    const auto port = ReadFileIfExists(port_file_);
    if (!port) throw Error(Errc::kInternal, "token registry did not start");
    address_ = "127.0.0.1:" + *port;
  }
  ~TokenRegistry() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  const std::string& address() const { return address_; }

 private:
  // Tokens only for Basic puller:s3cret and the scope repository:ocp/app:pull; the manifest only
  // with that token. Each request is logged to <dir>/log.
  static constexpr const char* kServer = R"PY(
import base64, http.server, json, os, sys, urllib.parse
d = sys.argv[1]
manifest = open(os.path.join(d, "manifest.json"), "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body=b"", headers={}):
        self.send_response(code)
        for k, v in headers.items(): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        with open(os.path.join(d, "log"), "a") as f: f.write(self.path + "\n")
        u = urllib.parse.urlparse(self.path)
        if u.path == "/token":
            q = urllib.parse.parse_qs(u.query)
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"puller:s3cret").decode()
            if ok and q.get("scope") == ["repository:ocp/app:pull"] and q.get("service") == ["test registry"]:
                return self.send(200, json.dumps({"token": "tok-123"}).encode())
            return self.send(401)
        if u.path.startswith("/v2/ocp/app/manifests/"):
            if self.headers.get("Authorization") != "Bearer tok-123":
                realm = "http://%s/token" % self.headers.get("Host")
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate":
                    'Bearer realm="%s",service="test registry",scope="repository:ocp/app:pull"' % realm})
            ref = u.path.rsplit("/", 1)[1]
            if ref in ("v1",) or ref.startswith("sha256:"):
                return self.send(200, manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(os.path.join(d, "port.tmp"), "w").write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
)PY";

  fs::path port_file_;
  pid_t pid_ = -1;
  std::string address_;
};

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFileAtomic(tmp_ / "auth.json",
                    R"({"auths":{"127.0.0.1":{"auth":"bm9wZTpub3Bl"},)"
                    R"("http://)" +
                        reg_.address() +
                        R"(/v1/":{"auth":"cHVsbGVyOnMzY3JldA=="}}})",  // puller:s3cret, legacy key
                    0600);
    conf_ = ParseRegistriesConf(
        "[[registry]]\nlocation = \"" + reg_.address() + "\"\ninsecure = true\n", "test.conf");
  }
  RegistryClientOptions Opts() {
    RegistryClientOptions o;
    o.authfile = tmp_ / "auth.json";
    o.certs_dirs = {tmp_ / "certs.d"};
    return o;
  }
  std::string Log() { return ReadFileIfExists(tmp_ / "log").value_or(""); }

  static constexpr const char* kManifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"digest":"sha256:c","size":7},"layers":[{"digest":"sha256:l","size":9}]})";
  test::TempDir tmp_{"lca-registry-client"};
  TokenRegistry reg_{tmp_.path(), kManifest};
  RegistriesConf conf_;
};

TEST_F(RegistryClientTest, BearerTokenFlowWithCredentialsFromALegacyAuthKey) {
  RegistryClient client(conf_, Opts());
  const std::string image = reg_.address() + "/ocp/app:v1";
  ASSERT_TRUE(client.Handles(image));
  const auto ref = ParseImageRef(image);
  EXPECT_EQ(client.GetManifest(*ref, "v1"), kManifest);
  // The token is kept for the repository: the second read asks the token service no more.
  EXPECT_EQ(client.GetManifest(*ref, "v1"), kManifest);
  const std::string log = Log();
  size_t tokens = 0;
  for (size_t at = log.find("/token"); at != std::string::npos; at = log.find("/token", at + 1))
    ++tokens;
  EXPECT_EQ(tokens, 1u) << log;
  const auto rtt = client.RoundTrips();
  ASSERT_EQ(rtt.size(), 1u) << "token requests are not the registry's round trip";
  EXPECT_EQ(rtt.begin()->first, reg_.address());
}

TEST_F(RegistryClientTest, DigestMustMatchAndMissingManifestsAreNotFound) {
  RegistryClient client(conf_, Opts());
  stateroot::Sha256 sha;
  sha.Update(std::string(kManifest));
  const std::string good = sha.Digest();
  const auto ref = ParseImageRef(reg_.address() + "/ocp/app@" + good);
  ASSERT_TRUE(ref);
  EXPECT_EQ(client.GetManifest(*ref, good), kManifest);
  const std::string bad = "sha256:" + std::string(64, '0');
  try {
    client.GetManifest(*ref, bad);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match its digest (got " + good + ")"),
              std::string::npos)
        << e.what();
  }
  try {
    client.GetManifest(*ref, "v2");
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
  }
}

TEST_F(RegistryClientTest, WithoutCredentialsTheTokenIsRefused) {
  RegistryClientOptions o = Opts();
  o.authfile.reset();
  RegistryClient client(conf_, o);
  try {
    client.GetManifest(*ParseImageRef(reg_.address() + "/ocp/app:v1"), "v1");
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kForbidden) << e.what();
  }
}

TEST_F(RegistryClientTest, LeavesMirrorsCertsDirsCredentialHelpersAndDeadHostsToSkopeo) {
  const std::string image = reg_.address() + "/ocp/app:v1";
  {
    const RegistriesConf mirrored =
        ParseRegistriesConf("[[registry]]\nlocation = \"" + reg_.address() +
                                "\"\n[[registry.mirror]]\nlocation = \"mirror.example.com\"\n",
                            "m.conf");
    EXPECT_FALSE(RegistryClient(mirrored, Opts()).Handles(image));
    const RegistriesConf blocked = ParseRegistriesConf(
        "[[registry]]\nlocation = \"" + reg_.address() + "\"\nblocked = true\n", "b.conf");
    EXPECT_FALSE(RegistryClient(blocked, Opts()).Handles(image));
  }
  {
    fs::create_directories(tmp_ / "certs.d" / reg_.address());
    EXPECT_FALSE(RegistryClient(conf_, Opts()).Handles(image));
    fs::remove_all(tmp_ / "certs.d");
    EXPECT_TRUE(RegistryClient(conf_, Opts()).Handles(image));
  }
  {
    WriteFileAtomic(tmp_ / "helper.json",
                    R"({"auths":{},"credHelpers":{")" + reg_.address() + R"(":"ecr-login"}})",
                    0600);
    RegistryClientOptions o = Opts();
    o.authfile = tmp_ / "helper.json";
    RegistryClient client(conf_, o);
    EXPECT_THROW(client.GetManifest(*ParseImageRef(image), "v1"), Error);
  }
  {
    // Nothing listens on port 1: the first failure marks the host, later images skip it.
    const std::string dead = "127.0.0.1:1/x/y:1";
    RegistryClient client(ParseRegistriesConf("", "empty.conf"), Opts());
    ASSERT_TRUE(client.Handles(dead));
    EXPECT_THROW(client.GetManifest(*ParseImageRef(dead), "1"), Error);
    EXPECT_FALSE(client.Handles(dead));
    EXPECT_TRUE(client.Handles(image)) << "other hosts are not affected";
  }
  EXPECT_FALSE(RegistryClient(conf_, Opts()).Handles("app:v1")) << "short names";
}

}  // namespace
}  // namespace lca::precache
