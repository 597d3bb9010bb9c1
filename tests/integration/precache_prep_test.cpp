// Prep's Precache phase end to end: the real lifecycle-agent on a throwaway ostree host, a seed
// made by the real `lcactl seed create` whose containers.list names 20 images the test pushed to
// a real registry with auth, and real podman pulling into its own root (vfs).
//
// The test process moves into a private mount namespace with a tmpfs over /var/lib first (podman
// and skopeo run as root write /var/lib/containers); the daemon and every tool inherit it.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/progress.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/image_factory.hpp"
#include "tests/support/podman_bed.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/shared_bed.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kDaemon = std::string(LCA_TEST_BINARY_DIR) + "/agent/daemon/lifecycle-agent";
const std::string kCtl = std::string(LCA_TEST_BINARY_DIR) + "/agent/cli/lcactl";
constexpr const char* kSeedVersion = "4.15.2";
constexpr const char* kHostVersion = "4.14.1";
constexpr const char* kSecret = "seed-pull-secret";
constexpr const char* kUser = "precache";
constexpr const char* kPassword = "pr3-c4che";

bool Contains(const std::string& h, const std::string& n) { return h.find(n) != std::string::npos; }

ProcessResult RunOk(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env = {}) {
  SystemProcessRunner runner;
  return RunChecked(runner, ProcessSpec{.argv = argv,
                                        .env = env,
                                        .timeout = std::chrono::seconds(180),
                                        .stderr_tail_bytes = 1 << 16});
}

struct Bed {
  test::TempDir root{"lca-precache-prep-bed"};
  std::unique_ptr<test::LocalRegistry> registry;
  std::vector<std::string> images;  // the seed's containers.list (20)
  std::string missing;              // an image the registry does not have
  std::string seed;                 // seed with `images`
  std::string seed_missing;         // seed with 3 of them and `missing`

  Bed() {
    registry = std::make_unique<test::LocalRegistry>(
        test::RegistryCredentials{.user = kUser, .password = kPassword});
    test::ImagePusher push(registry->address(), std::make_pair(kUser, kPassword));
    // 1 MiB shared base: the space test's 2 MiB filesystem cannot take it x 2.5.
    const std::string base = test::TarOf({{"base/blob", test::RandomBytes(1 << 20, 7)}});
    for (int i = 0; i < 20; ++i) {
      const auto p = push.Push(
          "ocp4/component" + std::to_string(i), "4.15.2",
          {base,
           test::TarOf({{"bin/c" + std::to_string(i), test::RandomBytes(2048 + 31 * i, 50 + i)}})});
      // Real lists pin by digest; a few by tag as CRI-O lists tagged images.
      images.push_back(i % 4 == 0 ? p.ref : p.pinned);
    }
    missing = registry->address() + "/ocp4/not-mirrored:4.15.2";
    const auto env = test::ContainerToolEnv(root / "home");
    const TestSysrootHolder host(root / "seedhost");
    seed = Create(host, images, registry->address() + "/ibu/seed:4.15.2", env);
    seed_missing = Create(host, {images[0], images[1], missing, images[2]},
                          registry->address() + "/ibu/seed:4.15.2-missing", env);
  }

  struct TestSysrootHolder {
    std::unique_ptr<test::TestSysroot> s;
    explicit TestSysrootHolder(const fs::path& dir)
        : s(std::make_unique<test::TestSysroot>(dir, kSeedVersion)) {}
  };

  std::string Create(const TestSysrootHolder& host, const std::vector<std::string>& list,
                     const std::string& image, const std::map<std::string, std::string>& env) {
    std::string text;
    for (const auto& l : list) text += l + "\n";
    const fs::path list_file = root / ("containers-" + std::to_string(++n_) + ".list");
    WriteFileAtomic(list_file, text, 0644);
    fs::create_directories(root / "seed-work");
    RunOk(
        {kCtl, "seed", "create", "--sysroot", host.s->sysroot().string(), "--version", kSeedVersion,
         "--containers-list", list_file.string(), "--work-dir", (root / "seed-work").string(),
         "--image", image, "--authfile", registry->auth_json().string(), "--registries-conf",
         registry->registries_conf().string(), "--policy", registry->policy_json().string()},
        env);
    return image;
  }
  int n_ = 0;
};

class PrecachePrepTest : public test::SharedBedSuite<Bed, test::EnterPrivateVarLib> {
 protected:
  void SetUp() override {
    SharedBedSuite::SetUp();
    if (HasFatalFailure()) return;
    fs::create_directories(tmp_ / "etc/secrets" / kSecret);
    WriteFileAtomic(tmp_ / "etc/secrets" / kSecret / ".dockerconfigjson",
                    ReadFile(bed->registry->auth_json()), 0600);
    WriteFileAtomic(tmp_ / "none.yaml", "", 0644);
    host_ = std::make_unique<test::TestSysroot>(tmp_ / "host", kHostVersion);
    // The host's container storage partition, shared by both stateroots (Prep refuses storage
    // on the stateroot's /var): a tmpfs, private to this test's mount namespace.
    fs::create_directories(tmp_ / "containers");
    ASSERT_EQ(::mount("lca-test-containers", (tmp_ / "containers").c_str(), "tmpfs", 0, nullptr), 0)
        << std::strerror(errno);
    partition_mounted_ = true;
    podman_ = test::IsolatedPodman(tmp_ / "containers", bed->registry->registries_conf(),
                                   bed->registry->policy_json());
  }

  void TearDown() override {
    StopDaemon();
    if (HasFailure()) {
      std::cerr << "---- daemon log ----\n"
                << ReadFileIfExists(tmp_ / "daemon.log").value_or("(none)") << "---- end ----\n";
    }
    if (!small_mount_.empty()) ::umount2(small_mount_.c_str(), MNT_DETACH);
    if (partition_mounted_) ::umount2((tmp_ / "containers").c_str(), MNT_DETACH);
  }

  std::string Socket() const { return (tmp_ / "run/lca.sock").string(); }
  fs::path Workspace() const { return tmp_ / "state/workspace"; }

  void StartDaemon(const std::vector<std::string>& extra = {},
                   const std::map<std::string, std::string>& extra_env = {}) {
    std::vector<std::string> argv = {kDaemon,
                                     "--state-dir",
                                     (tmp_ / "state").string(),
                                     "--socket",
                                     Socket(),
                                     "--sysroot",
                                     host_->sysroot().string(),
                                     "--proc-cmdline",
                                     host_->cmdline_file().string(),
                                     "--config-dir",
                                     (tmp_ / "etc").string(),
                                     "--registries-conf",
                                     bed->registry->registries_conf().string(),
                                     "--signature-policy",
                                     bed->registry->policy_json().string(),
                                     "--node-pull-secret",
                                     (tmp_ / "no-node-pull-secret.json").string(),
                                     "--config",
                                     (tmp_ / "none.yaml").string(),
                                     "--containers-root",
                                     podman_.root.string(),
                                     "--containers-runroot",
                                     podman_.runroot.string(),
                                     "--containers-storage-driver",
                                     "vfs",
                                     "--log-level",
                                     "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto env = test::ContainerToolEnv(tmp_ / "home");
    env["OSTREE_SYSROOT_DEBUG"] = "mutable-deployments";
    env.insert(extra_env.begin(), extra_env.end());
    daemon_ = std::make_unique<test::ChildProcess>();
    daemon_->Start(argv, env, (tmp_ / "daemon.log").string());
    for (int i = 0; i < 500; ++i) {
      if (Ctl({"get", "ibu", "-o", "name"}).code == 0) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "daemon did not come up";
  }
  void StopDaemon() {
    if (!daemon_) return;
    daemon_->Signal(SIGTERM);
    if (!daemon_->Wait(std::chrono::seconds(30))) ADD_FAILURE() << "daemon ignored SIGTERM";
    daemon_.reset();
  }

  struct CtlResult {
    int code;
    std::string out, err;
  };
  CtlResult Ctl(std::vector<std::string> args) {
    ProcessSpec spec;
    spec.argv = {kCtl, "--socket", Socket()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.timeout = std::chrono::seconds(400);
    spec.stderr_tail_bytes = 1 << 16;
    auto r = runner_.Run(spec);
    return CtlResult{r.exit_code, r.stdout_data, r.stderr_tail};
  }
  Json Object() {
    auto r = Ctl({"get", "ibu", "upgrade", "-o", "json"});
    return r.code == 0 ? Json::parse(r.out) : Json::object();
  }
  static Json Condition(const Json& o, const std::string& type) {
    for (const auto& c : o["status"]["conditions"]) {
      if (c["type"] == type) return c;
    }
    return Json::object();
  }
  void Prep(const std::string& image) {
    const std::string patch = Json{{"spec",
                                    {{"stage", "Prep"},
                                     {"seedImageRef",
                                      {{"version", kSeedVersion},
                                       {"image", image},
                                       {"pullSecretRef", {{"name", kSecret}}}}}}}}
                                  .dump();
    auto r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", patch});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  void Wait(const std::string& cond, const std::string& timeout = "300s") {
    auto r = Ctl({"wait", "ibu", "--for=condition=" + cond, "--timeout=" + timeout});
    ASSERT_EQ(r.code, 0) << "waiting for " << cond << ": " << r.err << "\n" << Object().dump(2);
  }
  void Abort() {
    auto r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Idle"}})"});
    ASSERT_EQ(r.code, 0) << r.err;
    Wait("Idle");
  }
  std::string FailureMessage() {
    Wait("PrepCompleted=False");
    const Json o = Object();
    EXPECT_EQ(Condition(o, "PrepInProgress").value("reason", ""), "Failed") << o.dump(2);
    return Condition(o, "PrepInProgress").value("message", "");
  }
  precache::LocalImages Local() { return precache::ListLocalImages(runner_, podman_); }

  test::TempDir tmp_{"lca-precache-prep"};
  SystemProcessRunner runner_;
  std::unique_ptr<test::TestSysroot> host_;
  std::unique_ptr<test::ChildProcess> daemon_;
  precache::PodmanConfig podman_;
  fs::path small_mount_;
  bool partition_mounted_ = false;
};

TEST_F(PrecachePrepTest, PrepPreCachesTheSeedsImagesAndAbortKeepsThemForTheNextPrep) {
  StartDaemon();
  Prep(bed->seed);
  Wait("PrepCompleted");
  const Json o = Object();
  EXPECT_EQ(Condition(o, "PrepCompleted").value("message", ""),
            "Prep stage completed successfully");
  const Json phases = o["status"]["history"][0]["phases"];
  ASSERT_EQ(phases.size(), 2u) << o.dump(2);
  EXPECT_EQ(phases[0].value("phase", ""), "Stateroot");
  EXPECT_EQ(phases[1].value("phase", ""), "Precache");
  EXPECT_TRUE(phases[1].contains("completionTime")) << phases.dump();

  // The progress file, exactly as the reference's, 0600; no pull secret left behind.
  const fs::path status = Workspace() / "precache_status.json";
  EXPECT_EQ(ReadFileIfExists(status).value_or("<missing>"),
            R"({"total":20,"pulled":20,"failed":0,"failed_pulls":null})");
  struct stat st {};
  ASSERT_EQ(::stat(status.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_FALSE(fs::exists(Workspace() / "precache-pull-secret"));
  const auto local = Local();
  for (const auto& img : bed->images) EXPECT_TRUE(local.Contains(img)) << img;
  EXPECT_TRUE(Contains(ReadFile(tmp_ / "daemon.log"), "20 images, 0 already present, 20 to pull"));

  // Abort: the status file and the workspace go, the pulled images stay.
  Abort();
  EXPECT_FALSE(fs::exists(status));
  EXPECT_FALSE(fs::exists(Workspace()));
  EXPECT_EQ(Local().images().size(), local.images().size());

  // Prep again: every image is already here, none is pulled.
  Prep(bed->seed);
  Wait("PrepCompleted");
  EXPECT_TRUE(Contains(ReadFile(tmp_ / "daemon.log"), "20 images, 20 already present, 0 to pull"));
  EXPECT_EQ(ReadFileIfExists(status).value_or("<missing>"),
            R"({"total":20,"pulled":20,"failed":0,"failed_pulls":null})");
  Abort();
}

// The daemon killed after the 5th image finished: started again, Prep resumes at its journaled
// Precache step, skips what is already here and completes with the full count.
TEST_F(PrecachePrepTest, DaemonKilledWhilePreCachingResumesAndSkipsWhatWasPulled) {
  StartDaemon({}, {{"LCA_FAILPOINTS", "precache.image-done=5*crash"}});
  Prep(bed->seed);
  ASSERT_TRUE(daemon_->Wait(std::chrono::seconds(300)).has_value()) << "the failpoint did not fire";
  daemon_.reset();
  const std::string before = ReadFile(tmp_ / "daemon.log");
  StartDaemon();
  Wait("PrepCompleted");
  EXPECT_EQ(Condition(Object(), "PrepCompleted").value("message", ""),
            "Prep stage completed successfully");
  const std::string log = ReadFile(tmp_ / "daemon.log").substr(before.size());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(20 images, (\d+) already present)"))) << log;
  EXPECT_GE(std::stoi(m[1]), 5) << log;
  EXPECT_EQ(ReadFileIfExists(Workspace() / "precache_status.json").value_or("<missing>"),
            R"({"total":20,"pulled":20,"failed":0,"failed_pulls":null})");
  const Json phases = Object()["status"]["history"][0]["phases"];
  ASSERT_EQ(phases.size(), 2u) << phases.dump();
  EXPECT_TRUE(phases[1].contains("completionTime")) << phases.dump();
  Abort();
}

TEST_F(PrecachePrepTest, MissingImageFailsPrepByNameAndBestEffortCompletesWithoutIt) {
  StartDaemon();
  Prep(bed->seed_missing);
  const std::string msg = FailureMessage();
  EXPECT_TRUE(Contains(msg, "precache job failed to complete: failed to pre-cache 1 of 4 images: " +
                                bed->missing + " ("))
      << msg;
  EXPECT_TRUE(Contains(msg, "manifest unknown")) << msg;
  EXPECT_EQ(ReadFileIfExists(Workspace() / "precache_status.json").value_or("<missing>"),
            R"({"total":4,"pulled":3,"failed":1,"failed_pulls":[")" + bed->missing + R"("]})");
  Abort();

  StopDaemon();
  StartDaemon({"--precache-best-effort"});
  Prep(bed->seed_missing);
  Wait("PrepCompleted");
  EXPECT_EQ(Condition(Object(), "PrepCompleted").value("message", ""),
            "Prep stage completed successfully");
  EXPECT_EQ(ReadFileIfExists(Workspace() / "precache_status.json").value_or("<missing>"),
            R"({"total":4,"pulled":3,"failed":1,"failed_pulls":[")" + bed->missing + R"("]})");
  Abort();
}

TEST_F(PrecachePrepTest, NotEnoughSpaceFailsBeforeAnyPullWithBothNumbers) {
  // containers-storage on a 2 MiB filesystem: the seed's 20 images need about 2.6 MiB.
  small_mount_ = tmp_ / "containers";
  fs::create_directories(small_mount_);
  ASSERT_EQ(::mount("lca-test-small", small_mount_.c_str(), "tmpfs", 0, "size=2m"), 0)
      << std::strerror(errno);
  StartDaemon();
  Prep(bed->seed);
  const std::string msg = FailureMessage();
  EXPECT_TRUE(Contains(msg,
                       "precache job failed to complete: not enough space for precaching: "
                       "need "))
      << msg;
  EXPECT_TRUE(Contains(msg, "20 images, ")) << msg;
  EXPECT_TRUE(
      Contains(msg, "is available below the 85% image GC threshold on " + podman_.root.string()))
      << msg;
  // Before any pull: no status file, no image.
  EXPECT_FALSE(fs::exists(Workspace() / "precache_status.json"));
  EXPECT_TRUE(Local().images().empty());
  Abort();
}

}  // namespace
}  // namespace lca
