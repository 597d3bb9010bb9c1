// TALM job mode and mirrors on the real bed: `lcactl precache --config DIR` against a release
// image (release-manifests/image-references) and a file-based-catalog index image built by the
// test, pulling with real podman (own root, vfs); `lcactl mirrors render` with two registries,
// the source one stopped. The test process runs in a private mount namespace with a tmpfs over
// /var/lib, inherited by lcactl, podman and skopeo.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/puller.hpp"
#include "tests/support/image_factory.hpp"
#include "tests/support/podman_bed.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/shared_bed.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::precache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCtl = std::string(LCA_TEST_BINARY_DIR) + "/agent/cli/lcactl";
constexpr const char* kUser = "talm";
constexpr const char* kPassword = "t4lm-pass";

struct Bed {
  std::unique_ptr<test::LocalRegistry> registry;
  std::string release;                         // the release image
  std::map<std::string, std::string> payload;  // tag -> pinned pull spec
  std::string index;                           // the catalog index image
  std::map<std::string, std::string> ops;      // name -> pull spec
  std::vector<std::string> additional;         // 2 images
  std::vector<std::string> many;               // 16 more, for the timeout

  Bed() {
    registry = std::make_unique<test::LocalRegistry>(
        test::RegistryCredentials{.user = kUser, .password = kPassword});
    const std::string a = registry->address();
    test::ImagePusher push(a, std::make_pair(kUser, kPassword));
    const std::string base = test::TarOf({{"base", test::RandomBytes(64 * 1024, 3)}});
    int seed = 10;
    auto small = [&](const std::string& repo, const std::string& tag) {
      return push.Push(repo, tag, {base, test::TarOf({{"f", test::RandomBytes(1500, ++seed)}})});
    };
    // The payload: two tags match the exclude pattern "aws".
    Json tags = Json::array();
    for (const std::string t : {"etcd", "aws-ebs-csi-driver", "kube-apiserver", "console",
                                "oauth-server", "cloud-aws-identity"}) {
      payload[t] = small("ocp/release-payload", t).pinned;
      tags.push_back({{"name", t}, {"from", {{"kind", "DockerImage"}, {"name", payload[t]}}}});
    }
    const Json is = {{"kind", "ImageStream"},
                     {"apiVersion", "image.openshift.io/v1"},
                     {"spec", {{"tags", tags}}}};
    release = push.Push("ocp/release", "4.15.2",
                        {test::TarOf({{"release-manifests/image-references", is.dump()},
                                      {"release-manifests/0000_00_x.yaml", "kind: X\n"}})})
                  .ref;
    // Operators: pkga stable v1 -> v2 -> v3 (head), pkgb fast b2 skips b1, pkgc not requested.
    for (const std::string n :
         {"a-bundle:v1", "a-bundle:v2", "a-bundle:v3", "a-operator:v1", "a-operator:v3",
          "a-operand:v3", "b-bundle:b1", "b-bundle:b2", "b-operator:2", "c-bundle:c1"}) {
      const auto colon = n.find(':');
      ops[n] = small("ops/" + n.substr(0, colon), n.substr(colon + 1)).ref;
    }
    auto bundle = [&](const std::string& pkg, const std::string& name, const std::string& img,
                      const std::vector<std::string>& related) {
      Json r = Json::array();
      for (const auto& x : related) r.push_back({{"name", "x"}, {"image", ops[x]}});
      return Json{{"schema", "olm.bundle"},
                  {"package", pkg},
                  {"name", name},
                  {"image", ops[img]},
                  {"relatedImages", r}}
          .dump();
    };
    const std::string pkga =
        Json{{"schema", "olm.package"}, {"name", "pkga"}, {"defaultChannel", "stable"}}.dump() +
        "\n" +
        Json::parse(R"({"schema":"olm.channel","package":"pkga","name":"stable","entries":[
            {"name":"a.v2","replaces":"a.v1"},{"name":"a.v1"},{"name":"a.v3","replaces":"a.v2"}]})")
            .dump() +
        "\n" + bundle("pkga", "a.v1", "a-bundle:v1", {"a-operator:v1"}) + "\n" +
        bundle("pkga", "a.v2", "a-bundle:v2", {"a-operator:v1"}) + "\n" +
        bundle("pkga", "a.v3", "a-bundle:v3", {"a-bundle:v3", "a-operator:v3", "a-operand:v3"});
    const std::string pkgb =
        "schema: olm.package\nname: pkgb\n---\nschema: olm.channel\npackage: pkgb\nname: fast\n"
        "entries:\n- name: b.b1\n- name: b.b2\n  skips: [b.b1]\n---\nschema: olm.bundle\n"
        "package: pkgb\nname: b.b2\nimage: " +
        ops["b-bundle:b2"] + "\nrelatedImages:\n- image: " + ops["b-operator:2"] +
        "\n---\nschema: olm.bundle\npackage: pkgb\nname: b.b1\nimage: " + ops["b-bundle:b1"] + "\n";
    const std::string pkgc =
        R"({"schema":"olm.channel","package":"pkgc","name":"stable","entries":[{"name":"c1"}]})" +
        bundle("pkgc", "c1", "c-bundle:c1", {});
    index = push.Push("ops/index", "v4.15",
                      {test::TarOf({{"configs/pkga/catalog.json", pkga},
                                    {"configs/pkgb/catalog.yaml", pkgb},
                                    {"configs/pkgc/catalog.json", pkgc},
                                    {"bin/opm", "not run"}})},
                      {{"operators.operatorframework.io.index.configs.v1", "/configs"}})
                .ref;
    additional = {small("apps/extra", "one").ref, small("apps/extra", "last").ref};
    for (int i = 0; i < 16; ++i) many.push_back(small("apps/many", "m" + std::to_string(i)).ref);
  }
};

class PrecacheJobTest : public test::SharedBedSuite<Bed, test::EnterPrivateVarLib> {
 protected:
  void SetUp() override {
    SharedBedSuite::SetUp();
    if (HasFatalFailure()) return;
    podman_ = test::IsolatedPodman(tmp_ / "c", bed->registry->registries_conf(),
                                   bed->registry->policy_json());
  }

  void Key(const std::string& k, const std::string& v) {
    fs::create_directories(tmp_ / "cfg");
    WriteFileAtomic(tmp_ / "cfg" / k, v, 0644);
  }

  struct Run {
    int code;
    std::string out, err;
    Json status;
  };
  Run Job(std::vector<std::string> extra = {}) {
    fs::create_directories(tmp_ / "cfg");
    std::vector<std::string> argv = {kCtl,
                                     "precache",
                                     "--config",
                                     (tmp_ / "cfg").string(),
                                     "--status-file",
                                     (tmp_ / "status.json").string(),
                                     "--work-dir",
                                     (tmp_ / "work").string(),
                                     "--authfile",
                                     bed->registry->auth_json().string(),
                                     "--registries-conf",
                                     bed->registry->registries_conf().string(),
                                     "--signature-policy",
                                     bed->registry->policy_json().string(),
                                     "--root",
                                     podman_.root.string(),
                                     "--runroot",
                                     podman_.runroot.string(),
                                     "--storage-driver",
                                     "vfs"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    SystemProcessRunner r;
    const auto res = r.Run(ProcessSpec{
        .argv = argv, .env = podman_.env, .timeout = 300s, .stderr_tail_bytes = 1 << 16});
    Run out{res.exit_code, res.stdout_data, res.stderr_tail, Json::object()};
    if (auto s = ReadFileIfExists(tmp_ / "status.json")) out.status = ParseJson(*s, "status");
    return out;
  }
  std::set<std::string> LocalRefs() {
    std::set<std::string> out;
    const auto local = ListLocalImages(runner_, podman_);
    for (const auto& i : local.images()) {
      out.insert(i.names.begin(), i.names.end());
      out.insert(i.repo_digests.begin(), i.repo_digests.end());
    }
    return out;
  }

  test::TempDir tmp_{"lca-precache-job"};
  SystemProcessRunner runner_;
  PodmanConfig podman_;
};

TEST_F(PrecacheJobTest, ReleaseCatalogAndAdditionalImagesArePreCachedWithExcludesApplied) {
  Key("platform.image", bed->release + "\n");
  Key("operators.indexes", bed->index + "\n" + bed->index);
  Key("operators.packagesAndChannels", "pkga: stable\npkgb:fast");  // no trailing newline
  Key("excludePrecachePatterns", "  aws  \n\n");
  Key("additionalImages", bed->additional[0] + "\n\n" + bed->additional[1]);  // last unterminated
  Key("spaceRequired", "1");
  const Run r = Job();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Succeeded\n");
  const std::vector<std::string> want = {bed->payload["etcd"],     bed->payload["kube-apiserver"],
                                         bed->payload["console"],  bed->payload["oauth-server"],
                                         bed->ops["a-bundle:v3"],  bed->ops["a-operator:v3"],
                                         bed->ops["a-operand:v3"], bed->ops["b-bundle:b2"],
                                         bed->ops["b-operator:2"], bed->additional[0],
                                         bed->additional[1]};
  EXPECT_EQ(r.status.value("state", ""), "Succeeded") << r.status.dump();
  EXPECT_EQ(r.status.value("total", 0), want.size()) << r.status.dump();
  EXPECT_EQ(r.status.value("pulled", 0), want.size());
  EXPECT_EQ(r.status.value("failed", 1), 0);
  const auto local = LocalRefs();
  for (const auto& w : want) EXPECT_EQ(local.count(w), 1u) << w;
  for (const auto& not_wanted :
       {bed->payload["aws-ebs-csi-driver"], bed->payload["cloud-aws-identity"],
        bed->ops["a-bundle:v1"], bed->ops["a-operator:v1"], bed->ops["b-bundle:b1"],
        bed->ops["c-bundle:c1"], bed->release, bed->index}) {
    EXPECT_EQ(local.count(not_wanted), 0u) << not_wanted;
  }
  EXPECT_EQ(ListLocalImages(runner_, podman_).images().size(), want.size());
  // TALM's log lines, the states in order, and nothing left behind in the scratch dir.
  EXPECT_NE(r.err.find("upgrades.pre-cache "), std::string::npos) << r.err;
  for (const std::string s :
       {"NotStarted", "PreparingToStart", "Starting", "Active", "Succeeded"}) {
    EXPECT_NE(r.err.find("[INFO]: " + s), std::string::npos) << s << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(tmp_ / "work/scratch"));

  // Again: everything is present.
  const Run again = Job();
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.status.value("message", "").find("11 already present"), std::string::npos)
      << again.status.dump();
}

TEST_F(PrecacheJobTest, InconsistentSpecAndMissingImagesAreUnrecoverableErrors) {
  Key("operators.indexes", bed->index);
  Run r = Job();
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.status.value("state", ""), "UnrecoverableError");
  EXPECT_NE(r.status.value("message", "").find("operators.packagesAndChannels is empty"),
            std::string::npos)
      << r.status.dump();

  Key("operators.packagesAndChannels", "pkga:stable\nnope:stable\n");
  r = Job();
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.status.value("message", "").find("nope:stable is in none of the operators.indexes"),
            std::string::npos)
      << r.status.dump();

  fs::remove(tmp_ / "cfg/operators.indexes");
  fs::remove(tmp_ / "cfg/operators.packagesAndChannels");
  const std::string missing = bed->registry->address() + "/apps/not-there:1";
  Key("additionalImages", bed->additional[0] + "\n" + missing);
  r = Job();
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.status.value("state", ""), "UnrecoverableError");
  EXPECT_EQ(r.status["failed_pulls"], Json::array({missing})) << r.status.dump();
  EXPECT_NE(r.status.value("message", "").find(missing), std::string::npos);
  // Best effort: the same run succeeds.
  r = Job({"--best-effort"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.status.value("state", ""), "Succeeded");
}

TEST_F(PrecacheJobTest, SpaceIsCheckedBeforeAnyPullForOperatorOnlyRunsToo) {
  Key("operators.indexes", bed->index);
  Key("operators.packagesAndChannels", "pkga:stable");
  Key("spaceRequired", "100000");  // GiB, as the hub writes it
  const Run r = Job();
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.status.value("state", ""), "UnrecoverableError");
  const std::string msg = r.status.value("message", "");
  EXPECT_NE(msg.find("not enough space for precaching: need 97.7 TiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is available below the 85% image GC threshold"), std::string::npos) << msg;
  EXPECT_TRUE(ListLocalImages(runner_, podman_).images().empty());
}

TEST_F(PrecacheJobTest, DeadlineGivesPrecacheTimeoutAndTheNextRunContinues) {
  std::string list;
  for (const auto& m : bed->many) list += m + "\n";
  Key("additionalImages", list);
  // The deadline passes while the list is inspected or the first chunk pulls: pulls in flight
  // are stopped (as a Job's activeDeadlineSeconds kills its pod) and none starts after it.
  Run r = Job({"--timeout", "1s", "--concurrency", "1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "PrecacheTimeout\n");
  EXPECT_EQ(r.status.value("state", ""), "PrecacheTimeout");
  EXPECT_GT(r.status.value("failed", 0), 0) << r.status.dump();
  const size_t have = ListLocalImages(runner_, podman_).images().size();
  EXPECT_LT(have, bed->many.size());
  r = Job();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.status.value("message", "").find(std::to_string(have) + " already present"),
            std::string::npos)
      << r.status.dump();
}

TEST_F(PrecacheJobTest, DigestPullGoesThroughTheMirrorWhenTheSourceIsDown) {
  test::LocalRegistry source;
  test::LocalRegistry mirror;
  test::ImagePusher to_source(source.address());
  test::ImagePusher to_mirror(mirror.address());
  const std::vector<std::string> layers = {test::TarOf({{"m", test::RandomBytes(4000, 99)}})};
  const auto original = to_source.Push("ocp/app", "1.0", layers);
  const auto copy = to_mirror.Push("mirror/ocp/app", "1.0", layers);
  ASSERT_EQ(original.digest, copy.digest);
  const fs::path icsp = tmp_ / "icsp.yaml";
  WriteFileAtomic(icsp,
                  "apiVersion: operator.openshift.io/v1alpha1\nkind: ImageContentSourcePolicy\n"
                  "metadata:\n  name: mirror\nspec:\n  repositoryDigestMirrors:\n  - mirrors:\n"
                  "    - " +
                      mirror.address() + "/mirror/ocp\n    source: " + source.address() + "/ocp\n",
                  0644);
  const fs::path conf = tmp_ / "mirrors.conf";
  const ProcessResult rendered = RunChecked(
      runner_, ProcessSpec{.argv = {kCtl, "mirrors", "render", "-f", icsp.string(), "-o",
                                    conf.string(), "--insecure-registry", source.address(),
                                    "--insecure-registry", mirror.address()}});
  EXPECT_NE(ReadFile(conf).find("location = \"" + mirror.address() +
                                "/mirror/ocp\"\n    insecure = true"),
            std::string::npos)
      << ReadFile(conf);
  source.Stop();

  PodmanConfig p = podman_;
  p.registries_conf = conf;
  p.signature_policy = mirror.policy_json();
  PullOptions opts;
  opts.attempts = 1;
  // By digest: served by the mirror.
  PullResult r = PullImages(runner_, p, {PullItem{original.pinned, {}, {}, 0}}, opts, nullptr);
  EXPECT_TRUE(r.failed.empty()) << r.DescribeFailures();
  EXPECT_TRUE(ListLocalImages(runner_, p).Contains(original.pinned));
  // By tag: mirrors serve digests only, and the source is down.
  r = PullImages(runner_, p, {PullItem{original.ref, {}, {}, 0}}, opts, nullptr);
  EXPECT_EQ(r.failed, std::vector<std::string>{original.ref});
}

}  // namespace
}  // namespace lca::precache
