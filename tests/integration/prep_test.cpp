// Prep end to end: the real lifecycle-agent on a throwaway ostree host, driven with the real
// lcactl, against a seed built with the real `lcactl seed create` from a throwaway seed host and
// pushed to a real registry with auth on loopback. Checks what lands on the host (the new
// stateroot, its /etc and /var, the boot entries) and that every rejection leaves nothing behind.
//
// skopeo 1.9 run as root writes a blob-info cache into /var/lib/containers (no flag moves it),
// so the daemon and `lcactl seed create` run in a private mount namespace with a tmpfs over
// /var/lib, with HOME/XDG_*/DOCKER_CONFIG/TMPDIR in a temp dir.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/controller/handlers/prep_handler.hpp"
#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "formats/archive.hpp"
#include "formats/oci_layout.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/seed_format.hpp"
#include "stateroot/stateroot_setup.hpp"
#include "tests/support/agent_host.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/small_fs.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
namespace sr = stateroot;

const std::string& kDaemon = test::kDaemonBin;
const std::string& kCtl = test::kCtlBin;

constexpr const char* kSeedVersion = "4.15.2";
constexpr const char* kHostVersion = "4.14.1";
constexpr const char* kTarget = "rhcos_4.15.2";
constexpr const char* kSecret = "seed-pull-secret";
constexpr const char* kUser = "seed";
constexpr const char* kPassword = "pr3p-s33d-pass";
constexpr const char* kWrongPassword = "not-the-password";
constexpr const char* kSeedKarg = "console=ttyS0,115200";
const std::vector<std::string> kContainers = {
    "quay.io/openshift/release@sha256:" + std::string(64, 'a'),
    "quay.io/openshift/etcd@sha256:" + std::string(64, 'b')};

struct CtlResult {
  int code;
  std::string out, err;
};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Shared with the Upgrade tests: argv in a private mount namespace with a tmpfs over /var/lib,
// and an environment in which nothing of the machine's user config is found.
using test::Isolated;
using test::IsolatedEnv;

ProcessResult RunOk(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env = {}) {
  SystemProcessRunner runner;
  return RunChecked(runner, ProcessSpec{.argv = argv,
                                        .env = env,
                                        .timeout = std::chrono::seconds(120),
                                        .stderr_tail_bytes = 1 << 16});
}

// Bytes gzip cannot shrink, so what a seed unpacks to is what it weighs.
std::string Incompressible(std::size_t n) {
  std::mt19937 gen(7);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start) out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hostile nested archives, written with libarchive (whose writer, unlike its reader, checks
// nothing).

struct TarSpec {
  enum Kind { kFile, kDir, kSymlink, kCharDevice };
  Kind kind;
  std::string name;
  std::string data;  // file content, or symlink target
};

void WriteTarGz(const fs::path& out, const std::vector<TarSpec>& entries) {
  archive* a = archive_write_new();
  auto check = [&](int r, const std::string& what) {
    if (r != ARCHIVE_OK) {
      const std::string msg = archive_error_string(a) != nullptr ? archive_error_string(a) : "?";
      archive_write_free(a);
      throw Error(Errc::kIo, "writing " + out.string() + ": " + what + ": " + msg);
    }
  };
  check(archive_write_add_filter_gzip(a), "gzip");
  check(archive_write_set_format_pax_restricted(a), "format");
  check(archive_write_open_filename(a, out.c_str()), "open");
  for (const auto& e : entries) {
    archive_entry* en = archive_entry_new();
    archive_entry_set_pathname(en, e.name.c_str());
    archive_entry_set_uid(en, 0);
    archive_entry_set_gid(en, 0);
    archive_entry_set_mtime(en, 1700000000, 0);
    switch (e.kind) {
      case TarSpec::kFile:
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_perm(en, 0644);
        archive_entry_set_size(en, static_cast<la_int64_t>(e.data.size()));
        break;
      case TarSpec::kDir:
        archive_entry_set_filetype(en, AE_IFDIR);
        archive_entry_set_perm(en, 0755);
        break;
      case TarSpec::kSymlink:
        archive_entry_set_filetype(en, AE_IFLNK);
        archive_entry_set_perm(en, 0777);
        archive_entry_set_symlink(en, e.data.c_str());
        break;
      case TarSpec::kCharDevice:
        archive_entry_set_filetype(en, AE_IFCHR);
        archive_entry_set_perm(en, 0666);
        archive_entry_set_rdevmajor(en, 1);
        archive_entry_set_rdevminor(en, 3);
        break;
    }
    const int r = archive_write_header(a, en);
    archive_entry_free(en);
    check(r, "header of " + e.name);
    if (e.kind == TarSpec::kFile && !e.data.empty()) {
      if (archive_write_data(a, e.data.data(), e.data.size()) !=
          static_cast<la_ssize_t>(e.data.size())) {
        check(ARCHIVE_FATAL, "data of " + e.name);
      }
    }
  }
  check(archive_write_close(a), "close");
  archive_write_free(a);
}

// ---------------------------------------------------------------------------------------------
// The bed shared by the suite: the registry, the seed host, the seed (pushed and as a layout).

struct Bed {
  test::TempDir root{"lca-prep-bed"};
  std::unique_ptr<test::LocalRegistry> registry;
  std::unique_ptr<test::TestSysroot> seed_host;
  fs::path home;        // HOME etc. for skopeo and seed create
  fs::path layout;      // the seed as an OCI layout, tag "seed"
  fs::path seed_files;  // the seed layer's root files, extracted
  std::map<std::string, std::string> labels;
  std::string image;          // <registry>/ibu/seed:4.15.2
  std::string format3_image;  // the same seed labelled format 3
  std::string seed_checksum;  // the commit the seed host booted
  int64_t layer_bytes = 0;    // the seed's one layer, as stored
  bool machine_evil_existed = false;
  int variants = 0;

  std::string address() const { return registry->address(); }
  std::string auth() const { return registry->auth_json().string(); }

  Bed() {
    machine_evil_existed = fs::exists("/evil") || fs::exists("/outside");
    home = root / "home";
    const auto env = IsolatedEnv(home);
    registry = std::make_unique<test::LocalRegistry>(
        test::RegistryCredentials{.user = kUser, .password = kPassword});
    image = registry->address() + "/ibu/seed:" + kSeedVersion;
    format3_image = registry->address() + "/ibu/seed:4.15.2-format3";

    // The seed host: 4.15.2 with local changes to /etc and /var.
    seed_host = std::make_unique<test::TestSysroot>(root / "seedhost", kSeedVersion);
    seed_checksum = seed_host->commit();
    const fs::path dep =
        seed_host->sysroot() / "ostree/deploy/rhcos/deploy" / (seed_checksum + ".0");
    WriteFileAtomic(dep / "etc/seed-added.conf", "added on the seed host\n", 0644);
    WriteFileAtomic(dep / "etc/motd", "Seed host 4.15.2, changed motd\n", 0644);
    if (!fs::remove(dep / "etc/deprecated.conf")) {
      throw Error(Errc::kInternal, "make-sysroot.sh made no etc/deprecated.conf");
    }
    const fs::path var = seed_host->stateroot_var();
    fs::create_directories(var / "lib/seeddata");
    fs::create_directories(var / "tmp");
    WriteFileAtomic(var / "lib/seeddata/x", "seed data\n", 0644);
    WriteFileAtomic(var / "tmp/junk", "must not travel\n", 0644);

    std::string list;
    for (const auto& c : kContainers) list += c + "\n";
    WriteFileAtomic(root / "containers.list", list, 0644);
    fs::create_directories(root / "seed-work");
    const std::vector<std::string> create = {kCtl,
                                             "seed",
                                             "create",
                                             "--sysroot",
                                             seed_host->sysroot().string(),
                                             "--version",
                                             kSeedVersion,
                                             "--containers-list",
                                             (root / "containers.list").string(),
                                             "--karg",
                                             kSeedKarg,
                                             "--work-dir",
                                             (root / "seed-work").string(),
                                             "--image"};
    auto push = create;
    push.insert(push.end(), {image, "--authfile", auth(), "--registries-conf",
                             registry->registries_conf().string(), "--policy",
                             registry->policy_json().string()});
    const ProcessResult pushed = RunOk(Isolated(push), env);
    if (!Contains(pushed.stdout_data, "seed 4.15.2 created: " + image)) {
      throw Error(Errc::kInternal, "seed create printed: " + pushed.stdout_data);
    }
    layout = root / "seed-oci";
    auto to_layout = create;
    to_layout.push_back("oci:" + layout.string() + ":seed");
    RunOk(Isolated(to_layout), env);

    const sr::OciImage img = sr::ReadOciImage(layout, "seed");
    labels = img.labels;
    if (img.layers.size() != 1) throw Error(Errc::kInternal, "the seed has not one layer");
    // What Prep counts is what it fetches: the pushed manifest's layer sizes (skopeo
    // compresses the layout's uncompressed layer on the way to the registry).
    {
      SystemProcessRunner runner;
      const ProcessResult raw = RunChecked(
          runner,
          registry->SkopeoSpec({"inspect", "--raw", "--authfile", auth(), "docker://" + image}));
      layer_bytes = 0;
      const Json manifest = ParseJson(raw.stdout_data, "manifest");
      for (const auto& l : manifest["layers"]) {
        layer_bytes += l.value("size", int64_t{0});
      }
    }
    seed_files = root / "seed-files";
    fs::create_directories(seed_files);
    RunOk({"tar", "-xf", sr::BlobPath(layout, img.layers[0].digest).string(), "-C",
           seed_files.string()});

    // The same seed labelled format 3, pushed under another tag.
    auto labels3 = labels;
    labels3[std::string(sr::kSeedFormatVersionLabel)] = "3";
    const std::string layout3 = BuildVariant({}, labels3);
    RunOk(Isolated({"skopeo", "--policy", registry->policy_json().string(), "copy",
                    "--registries-conf", registry->registries_conf().string(), "--dest-authfile",
                    auth(), "--quiet", layout3, "docker://" + format3_image}),
          env);
  }

  // An OCI layout of the seed with root files replaced (name -> file) and `labels`; returns
  // "oci:<dir>:seed".
  std::string BuildVariant(
      const std::map<std::string, fs::path>& replace,
      std::optional<std::map<std::string, std::string>> with_labels = std::nullopt) {
    const fs::path dir = root / ("variant-" + std::to_string(++variants));
    fs::create_directories(dir);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(seed_files)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    const fs::path layer = dir / "layer.tar";
    {
      sr::TarWriter w(layer, sr::Compression::kNone);
      for (const auto& n : names) {
        auto it = replace.find(n);
        w.AddFile(n, it != replace.end() ? it->second : seed_files / n);
      }
      w.Close();
    }
    sr::OciLayoutWriter writer(dir / "oci");
    const sr::OciLayer l = writer.AddLayerFile(layer, sr::kOciLayerTarMediaType, /*move=*/true);
    writer.AddImage("seed", {l}, with_labels.value_or(labels));
    return "oci:" + (dir / "oci").string() + ":seed";
  }
};

Bed* bed = nullptr;
std::string bed_error;

// ---------------------------------------------------------------------------------------------
// What a Prep may or may not change on the host.

// Every entry under `dir`: type, mode, owner, size and content or link target.
std::map<std::string, std::string> TreeSnapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw SystemError("lstat " + p.string(), errno);
    std::string v = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
                    std::to_string(st.st_gid);
    if (S_ISREG(st.st_mode)) v += " " + ReadFile(p);
    if (S_ISLNK(st.st_mode)) v += " -> " + fs::read_symlink(p).string();
    out[fs::relative(p, dir).string()] = v;
  }
  return out;
}

// The BLS entries (file name -> content), in the order of their names.
std::map<std::string, std::string> BlsEntries(const fs::path& sysroot) {
  std::map<std::string, std::string> out;
  const fs::path dir = sysroot / "boot/loader/entries";
  for (const auto& e : fs::directory_iterator(dir)) {
    out[e.path().filename().string()] = ReadFile(e.path());
  }
  return out;
}

std::string OptionsLine(const std::string& entry) {
  for (const auto& line : Lines(entry)) {
    if (line.rfind("options ", 0) == 0) return line.substr(8);
  }
  return "";
}

// ostree= names /ostree/boot.<bootversion>/…, and every write of the deployment list flips the
// bootversion: an options line is the same when equal up to that digit.
std::string WithoutBootversion(const std::string& s) {
  return std::regex_replace(s, std::regex(R"(/ostree/boot\.[01]/)"), "/ostree/boot.N/");
}

// The default entry: the highest N of ostree-N-*.conf.
std::string DefaultEntry(const std::map<std::string, std::string>& entries) {
  int best = -1;
  std::string content;
  for (const auto& [name, text] : entries) {
    std::smatch m;
    if (std::regex_match(name, m, std::regex(R"(ostree-(\d+)-.*\.conf)")) &&
        std::stoi(m[1]) > best) {
      best = std::stoi(m[1]);
      content = text;
    }
  }
  return content;
}

struct HostSnapshot {
  std::string status;  // ostree admin status
  std::map<std::string, std::string> entries;
  std::map<std::string, std::string> booted_tree;
  std::vector<std::string> stateroots;
};

// Files and directories named evil or outside under `root` (symlinks not followed).
std::vector<std::string> EscapedFiles(const fs::path& root) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == "evil" || name == "outside" || name == "x-through-link") {
      found.push_back(it->path().string());
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------

class PrepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1);
    try {
      bed = new Bed();
    } catch (const std::exception& e) {
      bed_error = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete bed;
    bed = nullptr;
  }

  void SetUp() override {
    if (bed == nullptr) GTEST_FAIL() << "building the test bed failed: " << bed_error;
    ::chmod(tmp_.path().c_str(), 0755);
    // The pull secrets the daemon can be pointed at.
    fs::create_directories(tmp_ / "etc/secrets" / kSecret);
    fs::create_directories(tmp_ / "etc/secrets/wrong-password");
    WriteFileAtomic(tmp_ / ("etc/secrets/" + std::string(kSecret) + "/.dockerconfigjson"),
                    ReadFile(bed->auth()), 0600);
    WriteFileAtomic(tmp_ / "etc/secrets/wrong-password/.dockerconfigjson",
                    "{\"auths\":{\"" + bed->address() + "\":{\"auth\":\"" +
                        Base64Encode(std::string(kUser) + ":" + kWrongPassword) + "\"}}}\n",
                    0600);
    WriteFileAtomic(tmp_ / "none.yaml", "", 0644);
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->Signal(SIGTERM);
      if (!daemon_->Wait(std::chrono::seconds(20))) ADD_FAILURE() << "daemon ignored SIGTERM";
      daemon_.reset();
    }
    if (HasFailure()) {
      std::cerr << "---- daemon log ----\n"
                << ReadFileIfExists(tmp_ / "daemon.log").value_or("(none)") << "---- end ----\n";
    }
    if (!small_mount_.empty()) {
      host_.reset();
      if (::umount2(small_mount_.c_str(), MNT_DETACH) != 0) {
        ADD_FAILURE() << "umount " << small_mount_ << ": " << std::strerror(errno);
      }
    }
  }

  // A fresh host at 4.14.1 (stateroot rhcos) under `dir`, and the daemon on it.
  void Boot(std::vector<std::string> extra_flags = {}, fs::path dir = {}) {
    if (dir.empty()) dir = tmp_ / "host";
    host_ = std::make_unique<test::TestSysroot>(dir, kHostVersion);
    booted_ = sr::ResolveBooted(host_->sysroot(), ReadFile(host_->cmdline_file())).value();
    cmdline_ = ReadFile(host_->cmdline_file());
    StartDaemon(std::move(extra_flags));
  }

  std::string Socket() const { return (tmp_ / "run/lca.sock").string(); }
  fs::path StateDir() const { return tmp_ / "state"; }
  fs::path Sysroot() const { return host_->sysroot(); }
  fs::path TargetDir() const { return Sysroot() / "ostree/deploy" / kTarget; }

  void StartDaemon(const std::vector<std::string>& extra,
                   const std::map<std::string, std::string>& extra_env = {}) {
    std::vector<std::string> argv = {
        kDaemon, "--state-dir", StateDir().string(), "--socket", Socket(), "--sysroot",
        Sysroot().string(), "--proc-cmdline", host_->cmdline_file().string(), "--config-dir",
        (tmp_ / "etc").string(), "--registries-conf", bed->registry->registries_conf().string(),
        "--signature-policy", bed->registry->policy_json().string(), "--node-pull-secret",
        (tmp_ / "no-node-pull-secret.json").string(), "--config", (tmp_ / "none.yaml").string(),
        "--log-level", "debug",
        // The seed's images are not in the bed's registry: the
        // Precache phase is tested in precache_prep_test.cpp.
        "--precache-disabled"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<test::ChildProcess>();
    auto env = IsolatedEnv(tmp_ / "home");
    env.insert(extra_env.begin(), extra_env.end());
    daemon_->Start(Isolated(argv), env, (tmp_ / "daemon.log").string());
    for (int i = 0; i < 500; ++i) {
      if (Ctl({"get", "ibu", "-o", "name"}).code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "daemon did not come up; log:\n"
           << ReadFileIfExists(tmp_ / "daemon.log").value_or("");
  }

  CtlResult Ctl(std::vector<std::string> args) {
    ProcessSpec spec;
    spec.argv = {kCtl, "--socket", Socket()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.timeout = std::chrono::seconds(180);
    spec.stderr_tail_bytes = 1 << 16;
    auto r = runner_.Run(spec);
    return CtlResult{r.exit_code, r.stdout_data, r.stderr_tail};
  }

  Json Object() {
    auto r = Ctl({"get", "ibu", "upgrade", "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? Json::parse(r.out) : Json::object();
  }

  Json Settled() {
    for (int i = 0; i < 500; ++i) {
      Json o = Object();
      if (o.contains("status") &&
          o["status"].value("observedGeneration", 0) == o["metadata"].value("generation", 0)) {
        return o;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "agent did not catch up";
    return Object();
  }

  static Json Condition(const Json& o, const std::string& type) {
    for (const auto& c : o["status"]["conditions"]) {
      if (c["type"] == type) return c;
    }
    return Json::object();
  }

  static std::string PrepPatch(const std::string& image, const std::string& version,
                               const std::string& secret) {
    return Json{
        {"spec",
         {{"stage", "Prep"},
          {"seedImageRef",
           {{"version", version}, {"image", image}, {"pullSecretRef", {{"name", secret}}}}}}}}
        .dump();
  }

  void Patch(const std::string& patch) {
    auto r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", patch});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade patched\n");
  }

  void Wait(const std::string& condition, const std::string& timeout = "120s") {
    auto r = Ctl({"wait", "ibu", "--for=condition=" + condition, "--timeout=" + timeout});
    ASSERT_EQ(r.code, 0) << "waiting for " << condition << ": " << r.err
                         << "\nobject: " << Object().dump(2);
  }

  HostSnapshot Snapshot() {
    HostSnapshot s;
    s.status = RunOk({"ostree", "admin", "status", "--sysroot=" + Sysroot().string()},
                     {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}})
                   .stdout_data;
    s.entries = BlsEntries(Sysroot());
    s.booted_tree = TreeSnapshot(booted_.deployment_dir);
    for (const auto& e : fs::directory_iterator(Sysroot() / "ostree/deploy")) {
      s.stateroots.push_back(e.path().filename().string());
    }
    std::sort(s.stateroots.begin(), s.stateroots.end());
    return s;
  }

  // The booted deployment is exactly as it was, and the original kernel command line still
  // resolves to it.
  void ExpectBootedIntact(const HostSnapshot& before) {
    EXPECT_TRUE(TreeSnapshot(booted_.deployment_dir) == before.booted_tree)
        << "the booted deployment's tree changed";
    std::optional<sr::BootedDeployment> again;
    EXPECT_NO_THROW(again = sr::ResolveBooted(Sysroot(), cmdline_)) << cmdline_;
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->deployment_dir, booted_.deployment_dir);
  }

  // Nothing of a failed Prep is left on the host or in the workspace.
  void ExpectNothingLeftBehind(const HostSnapshot& before) {
    EXPECT_FALSE(fs::exists(TargetDir())) << TargetDir();
    EXPECT_FALSE(fs::exists(Sysroot() / "ostree/lca-prep"));
    EXPECT_FALSE(fs::exists(StateDir() / "workspace/seed-pull-secret"));
    const HostSnapshot now = Snapshot();
    EXPECT_EQ(now.status, before.status);
    EXPECT_TRUE(now.entries == before.entries) << "BLS entries changed";
    EXPECT_EQ(now.stateroots, before.stateroots);
    ExpectBootedIntact(before);
  }

  void Abort() {
    Patch(R"({"spec":{"stage":"Idle"}})");
    Wait("Idle");
    const Json o = Settled();
    EXPECT_EQ(o["status"]["conditions"].size(), 1u) << o.dump(2);
    EXPECT_EQ(o["status"]["validNextStages"], Json::parse(R"(["Prep"])"));
  }

  // Prep with `image`/`version`/`secret` fails, its PrepInProgress message contains every one
  // of `want` (ASCII case-insensitively when `icase`), nothing is left behind, and an abort
  // returns to Idle with the host as it was. Returns the message.
  std::string ExpectRejected(const std::string& image, const std::string& version,
                             const std::string& secret, const std::vector<std::string>& want,
                             bool icase = false) {
    const HostSnapshot before = Snapshot();
    Patch(PrepPatch(image, version, secret));
    Wait("PrepCompleted=False");
    const Json o = Settled();
    const Json completed = Condition(o, "PrepCompleted");
    EXPECT_EQ(completed.value("status", ""), "False");
    EXPECT_EQ(completed.value("reason", ""), "Failed");
    EXPECT_EQ(completed.value("message", ""), "Prep failed");
    const Json in_progress = Condition(o, "PrepInProgress");
    EXPECT_EQ(in_progress.value("status", ""), "False");
    EXPECT_EQ(in_progress.value("reason", ""), "Failed");
    const std::string message = in_progress.value("message", "");
    RecordProperty("message", message);
    for (const auto& w : want) {
      EXPECT_TRUE(icase ? Contains(Lower(message), Lower(w)) : Contains(message, w))
          << "want \"" << w << "\" in:\n"
          << message;
    }
    EXPECT_EQ(o["status"]["validNextStages"], Json::parse(R"(["Idle"])"));
    ExpectNothingLeftBehind(before);
    Abort();
    ExpectNothingLeftBehind(before);
    return message;
  }

  // A hostile seed: `file` (etc.tgz or var.tgz) replaced by a tar.gz of `entries`. Prep fails
  // naming `entry` (with `why`), and nothing named evil/outside appears anywhere.
  void ExpectHostileRejected(const std::string& file, const std::vector<TarSpec>& entries,
                             const std::string& entry, const std::string& why) {
    const fs::path tgz = tmp_ / ("hostile-" + file);
    WriteTarGz(tgz, entries);
    const std::string image = bed->BuildVariant({{file, tgz}});
    Boot();
    const std::string message = ExpectRejected(
        image, kSeedVersion, kSecret,
        {"stateroot setup failed: extracting the seed: ", file + ": entry \"" + entry + "\" " + why,
         "refusing to extract the archive"});
    EXPECT_EQ(EscapedFiles(tmp_.path()), std::vector<std::string>{});
    EXPECT_EQ(EscapedFiles(bed->root.path()), std::vector<std::string>{});
    if (!bed->machine_evil_existed) {
      EXPECT_FALSE(fs::exists("/evil"));
      EXPECT_FALSE(fs::exists("/outside"));
    }
  }

  // A hostile seed (root files replaced, name -> file) that reaches a host directory through a
  // symlink it planted: Prep fails with every one of `want` in its message, the host directory
  // `victim` is exactly as it was (nothing deleted, written or moved out of it), and nothing of
  // the Prep is left behind after the abort.
  void ExpectSymlinkRefused(const std::map<std::string, fs::path>& replace, const fs::path& victim,
                            const std::vector<std::string>& want) {
    const auto before = TreeSnapshot(victim);
    ASSERT_FALSE(before.empty());
    const std::string image = bed->BuildVariant(replace);
    Boot();
    const std::string message = ExpectRejected(image, kSeedVersion, kSecret, want);
    EXPECT_TRUE(Contains(message, "refused")) << message;
    EXPECT_TRUE(TreeSnapshot(victim) == before) << "the host directory " << victim << " changed";
  }

  // A host directory outside the sysroot with files a hostile seed would like to reach.
  fs::path Victim() {
    const fs::path v = tmp_ / "host-dir";
    fs::create_directories(v / "sub");
    WriteFileAtomic(v / "victim", "host file\n", 0644);
    WriteFileAtomic(v / "sub/inner", "host inner file\n", 0644);
    return v;
  }

  fs::path File(const std::string& name, const std::string& content) {
    const fs::path p = tmp_ / name;
    WriteFileAtomic(p, content, 0644);
    return p;
  }

  test::TempDir tmp_{"lca-prep-it"};
  SystemProcessRunner runner_;
  std::unique_ptr<test::TestSysroot> host_;
  sr::BootedDeployment booted_;
  std::string cmdline_;
  std::unique_ptr<test::ChildProcess> daemon_;
  fs::path small_mount_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(PrepTest, PrepBuildsTheNewStaterootBesideTheBootedOneAndAbortRemovesIt) {
  Boot();
  const HostSnapshot before = Snapshot();
  ASSERT_EQ(before.entries.size(), 1u);
  ASSERT_EQ(before.stateroots, std::vector<std::string>{"rhcos"});
  const std::string booted_options_before = OptionsLine(before.entries.begin()->second);
  ASSERT_TRUE(Contains(booted_options_before, "ostree=/ostree/boot.")) << booted_options_before;

  Patch(PrepPatch(bed->image, kSeedVersion, kSecret));
  Wait("PrepCompleted");
  const Json o = Settled();

  // The object.
  const Json completed = Condition(o, "PrepCompleted");
  EXPECT_EQ(completed.value("status", ""), "True");
  EXPECT_EQ(completed.value("reason", ""), "Completed");
  EXPECT_EQ(completed.value("message", ""),
            "Prep stage completed successfully (stateroot ready; container images were not "
            "pre-cached: pre-caching is disabled in the lifecycle-agent configuration)");
  const Json in_progress = Condition(o, "PrepInProgress");
  EXPECT_EQ(in_progress.value("status", ""), "False");
  EXPECT_EQ(in_progress.value("reason", ""), "Completed");
  EXPECT_EQ(in_progress.value("message", ""), "Prep completed");
  EXPECT_EQ(o["status"]["validNextStages"], Json::parse(R"(["Idle","Upgrade"])"));
  ASSERT_EQ(o["status"]["history"].size(), 1u) << o.dump(2);
  const Json h = o["status"]["history"][0];
  EXPECT_EQ(h.value("stage", ""), "Prep");
  EXPECT_TRUE(h.contains("completionTime")) << h.dump();
  ASSERT_EQ(h["phases"].size(), 1u) << h.dump();
  EXPECT_EQ(h["phases"][0].value("phase", ""), "Stateroot");
  EXPECT_TRUE(h["phases"][0].contains("startTime")) << h.dump();
  EXPECT_TRUE(h["phases"][0].contains("completionTime")) << h.dump();

  // The deployments: rhcos first (the default), then the new stateroot.
  const std::string status = RunOk({"ostree", "admin", "status", "--sysroot=" + Sysroot().string()},
                                   {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}})
                                 .stdout_data;
  std::vector<std::string> deployments;
  for (const auto& line : Lines(status)) {
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"(^[ *]+(\S+) ([0-9a-f]{64}\.\d+)\s*$)"))) {
      deployments.push_back(m[1].str() + " " + m[2].str());
    }
  }
  EXPECT_EQ(deployments, (std::vector<std::string>{
                             "rhcos " + booted_.checksum + "." + std::to_string(booted_.serial),
                             std::string(kTarget) + " " + bed->seed_checksum + ".0"}))
      << status;
  const fs::path dep = TargetDir() / "deploy" / (bed->seed_checksum + ".0");
  EXPECT_TRUE(fs::is_directory(dep)) << dep;

  // The boot entries: the default still boots rhcos; the new one carries the seed's kargs and
  // ibu=4.15.2; the booted one's options are as they were (up to the bootversion digit).
  const auto entries = BlsEntries(Sysroot());
  ASSERT_EQ(entries.size(), 2u);
  const std::string def = OptionsLine(DefaultEntry(entries));
  EXPECT_TRUE(Contains(def, "/rhcos/")) << def;
  EXPECT_FALSE(Contains(def, kTarget)) << def;
  EXPECT_EQ(WithoutBootversion(def), WithoutBootversion(booted_options_before));
  std::string new_options;
  for (const auto& [name, text] : entries) {
    if (Contains(name, kTarget)) new_options = OptionsLine(text);
  }
  EXPECT_TRUE(Contains(" " + new_options + " ", " ibu=4.15.2 ")) << new_options;
  EXPECT_TRUE(Contains(" " + new_options + " ", std::string(" ") + kSeedKarg + " ")) << new_options;
  EXPECT_TRUE(Contains(new_options, "ostree=/ostree/boot.")) << new_options;
  EXPECT_TRUE(Contains(new_options, std::string("/") + kTarget + "/")) << new_options;
  ExpectBootedIntact(before);

  // /etc from the seed.
  EXPECT_EQ(ReadFileIfExists(dep / "etc/seed-added.conf").value_or("<missing>"),
            "added on the seed host\n");
  EXPECT_EQ(ReadFileIfExists(dep / "etc/motd").value_or("<missing>"),
            "Seed host 4.15.2, changed motd\n");
  EXPECT_FALSE(fs::exists(dep / "etc/deprecated.conf"));
  EXPECT_TRUE(fs::exists(dep / "usr/etc/deprecated.conf"));  // /usr is the commit's
  EXPECT_EQ(ReadFile(dep / "etc/passwd"), ReadFile(dep / "usr/etc/passwd"));

  // /var from the seed, without what var.tgz excludes.
  const fs::path var = TargetDir() / "var";
  EXPECT_EQ(ReadFileIfExists(var / "lib/seeddata/x").value_or("<missing>"), "seed data\n");
  EXPECT_FALSE(fs::exists(var / "tmp/junk"));
  const fs::path rollback = var / "lib/lca/autorollback_config.json";
  struct stat st {};
  ASSERT_EQ(::stat(rollback.c_str(), &st), 0) << rollback;
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const Json rb = ParseJson(ReadFile(rollback), rollback.string());
  EXPECT_EQ(rb.value("monitor_timeout", 0), 1800) << rb.dump();
  EXPECT_EQ(rb.value("monitor_enabled", false), true) << rb.dump();

  // Scratch and secrets gone; the pre-cache inputs kept.
  EXPECT_FALSE(fs::exists(Sysroot() / "ostree/lca-prep"));
  EXPECT_FALSE(fs::exists(StateDir() / "workspace/seed-pull-secret"));
  std::string want_list;
  for (const auto& c : kContainers) want_list += c + "\n";
  EXPECT_EQ(ReadFileIfExists(StateDir() / "workspace/containers.list").value_or("<missing>"),
            want_list);
  // The registry password is nowhere in the object or the log.
  const std::string log = ReadFileIfExists(tmp_ / "daemon.log").value_or("");
  for (const std::string& secret :
       {std::string(kPassword), Base64Encode(std::string(kUser) + ":" + kPassword)}) {
    EXPECT_FALSE(Contains(log, secret));
    EXPECT_FALSE(Contains(Object().dump(), secret));
  }

  // Abort: the new stateroot goes, dir and boot entry; the booted one is as it was.
  Abort();
  EXPECT_FALSE(fs::exists(TargetDir()));
  const HostSnapshot after = Snapshot();
  EXPECT_EQ(after.stateroots, std::vector<std::string>{"rhcos"});
  ASSERT_EQ(after.entries.size(), 1u);
  for (const auto& [name, text] : after.entries) {
    EXPECT_FALSE(Contains(name + text, kTarget)) << name << ":\n" << text;
    EXPECT_EQ(WithoutBootversion(OptionsLine(text)), WithoutBootversion(booted_options_before));
  }
  EXPECT_EQ(after.status, before.status);
  EXPECT_FALSE(fs::exists(Sysroot() / "ostree/lca-prep"));
  ExpectBootedIntact(before);
}

// Any `ostree admin cleanup` (rpm-ostree runs one in most transactions) after Prep removes the
// ostree/boot.<old bootversion> link that the booted kernel's ostree= argument names, since
// Prep's deploy flipped the bootversion. The booted deployment is still the same and abort
// must still work.
TEST_F(PrepTest, AbortAfterAnOstreeCleanupOnTheHostStillRemovesTheNewStateroot) {
  Boot();
  const HostSnapshot before = Snapshot();
  Patch(PrepPatch(bed->image, kSeedVersion, kSecret));
  Wait("PrepCompleted");
  ASSERT_TRUE(fs::exists(TargetDir()));
  RunOk({"ostree", "admin", "cleanup", "--sysroot=" + Sysroot().string()},
        {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}});
  Patch(R"({"spec":{"stage":"Idle"}})");
  // The agent retries a failed reconcile every 30 s: a working abort is done long before 20 s.
  Wait("Idle", "20s");
  EXPECT_FALSE(fs::exists(TargetDir()));
  EXPECT_EQ(BlsEntries(Sysroot()).size(), 1u);
  EXPECT_TRUE(TreeSnapshot(booted_.deployment_dir) == before.booted_tree);
}

TEST_F(PrepTest, SeedOfAnotherFormatVersionIsRejected) {
  Boot();
  ExpectRejected(bed->format3_image, kSeedVersion, kSecret,
                 {"failed to validate seed image info: seed image format version mismatch: "
                  "expected 4, got 3"});
}

TEST_F(PrepTest, SpecVersionDifferentFromTheSeedsIsRejected) {
  Boot();
  ExpectRejected(bed->image, "4.15.3", kSecret,
                 {"failed to validate seed image info: version specified in seed image (4.15.2) "
                  "differs from version in spec (4.15.3)"});
}

TEST_F(PrepTest, SeedNotNewerThanTheRunningReleaseIsRejected) {
  Boot({"--running-version", "4.16.0"});
  ExpectRejected(bed->image, kSeedVersion, kSecret,
                 {"failed to validate IBU spec: seed OCP version (4.15.2) must be higher than "
                  "current OCP version (4.16.0)"});
}

TEST_F(PrepTest, MissingPullSecretIsRejected) {
  Boot();
  ExpectRejected(bed->image, kSeedVersion, "nope",
                 {"failed to validate IBU spec: pull secret 'nope' not found: expected " +
                  (tmp_ / "etc/secrets/nope/.dockerconfigjson").string()});
}

TEST_F(PrepTest, WrongRegistryPasswordIsRejected) {
  Boot();
  const std::string message =
      ExpectRejected(bed->image, kSeedVersion, "wrong-password",
                     {"failed to validate seed image info: ", "unauthorized"});
  for (const std::string& secret :
       {std::string(kWrongPassword), Base64Encode(std::string(kUser) + ":" + kWrongPassword)}) {
    EXPECT_FALSE(Contains(message, secret));
    EXPECT_FALSE(Contains(ReadFileIfExists(tmp_ / "daemon.log").value_or(""), secret));
  }
}

TEST_F(PrepTest, MissingImageIsRejected) {
  Boot();
  const std::string message =
      ExpectRejected(bed->address() + "/ibu/seed:never-pushed", kSeedVersion, kSecret,
                     {"failed to validate seed image info: "});
  EXPECT_TRUE(Contains(message, "manifest unknown") || Contains(message, "not found")) << message;
}

TEST_F(PrepTest, CorruptedSeedBlobIsRejected) {
  // A copy of the seed layout with one byte of the layer flipped.
  const fs::path layout = tmp_ / "corrupt-oci";
  fs::copy(bed->layout, layout, fs::copy_options::recursive);
  const sr::OciImage img = sr::ReadOciImage(layout, "seed");
  const fs::path blob = sr::BlobPath(layout, img.layers[0].digest);
  std::string data = ReadFile(blob);
  ASSERT_GT(data.size(), 1000u);
  data[data.size() / 2] = static_cast<char>(data[data.size() / 2] ^ 0x5a);
  WriteFileAtomic(blob, data, 0644);
  Boot();
  ExpectRejected("oci:" + layout.string() + ":seed", kSeedVersion, kSecret,
                 {"stateroot setup failed: fetching seed image oci:" + layout.string(), "digest",
                  img.layers[0].digest},
                 /*icase=*/true);
}

TEST_F(PrepTest, HostileSeedEntryWithDotDotIsRejected) {
  ExpectHostileRejected("var.tgz",
                        {{TarSpec::kDir, "var", ""},
                         {TarSpec::kDir, "var/lib", ""},
                         {TarSpec::kFile, "../evil", "escaped\n"}},
                        "../evil", "has a \"..\" component");
}

TEST_F(PrepTest, HostileSeedEntryWithAbsolutePathIsRejected) {
  ExpectHostileRejected("etc.tgz",
                        {{TarSpec::kDir, "etc", ""}, {TarSpec::kFile, "/evil", "escaped\n"}},
                        "/evil", "has an absolute");
}

TEST_F(PrepTest, HostileSeedSymlinkEscapeIsRejected) {
  ExpectHostileRejected("etc.tgz",
                        {{TarSpec::kDir, "etc", ""},
                         {TarSpec::kSymlink, "etc/link", "../../../../../outside"},
                         {TarSpec::kFile, "etc/link/x-through-link", "escaped\n"}},
                        "etc/link",
                        "is a symlink to \"../../../../../outside\", which points outside the "
                        "destination");
}

TEST_F(PrepTest, HostileSeedCharacterDeviceIsRejected) {
  ExpectHostileRejected("var.tgz",
                        {{TarSpec::kDir, "var", ""},
                         {TarSpec::kDir, "var/lib", ""},
                         {TarSpec::kCharDevice, "var/lib/evil", ""}},
                        "var/lib/evil", "is a character device");
}

TEST_F(PrepTest, TooLittleSpaceIsRejectedBeforeAnythingIsFetched) {
  const fs::path small = tmp_ / "small";
  fs::create_directories(small);
  ASSERT_EQ(::mount("lca-prep-small", small.c_str(), "tmpfs", 0, "size=48m,mode=0755"), 0)
      << std::strerror(errno);
  small_mount_ = small;
  Boot({}, small / "host");
  const std::string message = ExpectRejected(
      bed->image, kSeedVersion, kSecret,
      {"failed to validate seed image info: not enough space on " + Sysroot().string() +
           " for the new stateroot: need ",
       "margin 512.0 MiB", ", available ", "free space there, then abort and retry"});
  // need … available …, in that order, with the numbers: the seed's layer bytes (the daemon's
  // defaults: unpacked = layers x 3, margin 512 MiB) and what the 48 MiB tmpfs has left.
  EXPECT_TRUE(std::regex_search(
      message,
      std::regex(R"(need [0-9.]+ MiB \(seed layers [0-9.]+ [KM]?i?B \+ unpacked estimate )"
                 R"([0-9.]+ [KM]?i?B \+ margin 512\.0 MiB\), available 4[0-9]\.[0-9] MiB: )")))
      << message;
  const uint64_t layer = static_cast<uint64_t>(bed->layer_bytes);
  const uint64_t margin = 512ull << 20;
  EXPECT_TRUE(Contains(message, "need " + sr::HumanBytes(layer + 3 * layer + margin) +
                                    " (seed layers " + sr::HumanBytes(layer) +
                                    " + unpacked estimate " + sr::HumanBytes(3 * layer) +
                                    " + margin 512.0 MiB), available "))
      << "the estimate must count the seed's " << layer << " layer bytes:\n"
      << message;
}

// ---------------------------------------------------------------------------------------------
// Hostile seeds that plant a symlink to a host directory and then name a path through it: every
// seed-controlled path operation (etc.deletions, the /etc merge, /var placement, the import of
// ostree.tgz's objects) resolves beneath its root without following it. (The extra-manifests
// export through a planted var/opt is in pivot_test: it runs at Upgrade.)

TEST_F(PrepTest, HostileSeedEtcDeletionThroughASymlinkIsRefused) {
  const fs::path victim = Victim();
  const fs::path etc = tmp_ / "hostile-etc.tgz";
  WriteTarGz(etc, {{TarSpec::kDir, "etc", ""}, {TarSpec::kSymlink, "etc/dl", victim.string()}});
  ExpectSymlinkRefused(
      {{"etc.tgz", etc},
       {"etc.deletions", File("hostile-etc.deletions", "/etc/dl/victim\n/etc/dl/sub\n")}},
      victim,
      {"stateroot setup failed: applying the seed's /etc: applying etc.deletions: removing "
       "/etc/dl/victim: path \"etc/dl/victim\" beneath ",
       "refused: it goes through the symlink \"etc/dl\""});
}

TEST_F(PrepTest, HostileSeedEtcThatIsASymlinkIsNotMergedOverTheDeployment) {
  const fs::path victim = Victim();
  const fs::path etc = tmp_ / "hostile-etc.tgz";
  WriteTarGz(etc, {{TarSpec::kSymlink, "etc", victim.string()}});
  ExpectSymlinkRefused(
      {{"etc.tgz", etc}, {"etc.deletions", File("hostile-etc.deletions", "/etc/victim\n")}}, victim,
      {"stateroot setup failed: applying the seed's /etc: etc.tgz: entry \"etc\" is a symlink: "
       "refused"});
}

TEST_F(PrepTest, HostileSeedVarThroughASymlinkIsNeverWrittenThrough) {
  const fs::path victim = Victim();
  const fs::path var = tmp_ / "hostile-var.tgz";
  WriteTarGz(var, {{TarSpec::kDir, "var", ""}, {TarSpec::kSymlink, "var/lib", victim.string()}});
  ExpectSymlinkRefused({{"var.tgz", var}}, victim,
                       {"stateroot setup failed: writing the rollback config and the pre-cache "
                        "inputs: writing the rollback config into ",
                        "refused: it is a symlink"});
}

TEST_F(PrepTest, HostileSeedVarThatIsASymlinkIsNotPlaced) {
  const fs::path victim = Victim();
  const fs::path var = tmp_ / "hostile-var.tgz";
  WriteTarGz(var, {{TarSpec::kSymlink, "var", victim.string()}});
  ExpectSymlinkRefused({{"var.tgz", var}}, victim,
                       {"stateroot setup failed: extracting the seed: var.tgz: entry \"var\" is a "
                        "symlink: refused"});
}

TEST_F(PrepTest, HostileSeedOstreeObjectsThroughASymlinkAreNotImported) {
  // The victim holds a copy of the seed's own objects, so an import that followed the link
  // would find a complete commit there and move the host's files into the sysroot's repo.
  const fs::path repo = tmp_ / "seed-repo";
  fs::create_directories(repo);
  RunOk({"tar", "-xzf", (bed->seed_files / "ostree.tgz").string(), "-C", repo.string()});
  const fs::path victim = tmp_ / "host-objects";
  fs::copy(repo / "objects", victim, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  std::vector<TarSpec> entries;
  for (const auto& e : fs::directory_iterator(repo)) {
    const std::string name = e.path().filename().string();
    if (name == "objects") continue;
    if (e.is_directory()) {
      entries.push_back({TarSpec::kDir, name, ""});
    } else if (e.is_regular_file()) {
      entries.push_back({TarSpec::kFile, name, ReadFile(e.path())});
    }
  }
  entries.push_back({TarSpec::kSymlink, "objects", victim.string()});
  const fs::path ostree = tmp_ / "hostile-ostree.tgz";
  WriteTarGz(ostree, entries);
  ExpectSymlinkRefused({{"ostree.tgz", ostree}}, victim,
                       {"stateroot setup failed: importing the seed's ostree commit: ostree.tgz: "
                        "entry \"objects\" is a symlink: refused"});
}

TEST_F(PrepTest, HostileSeedOstreeEntryThroughAnArchiveSymlinkIsRefused) {
  ExpectHostileRejected("ostree.tgz",
                        {{TarSpec::kDir, "objects", ""},
                         {TarSpec::kSymlink, "objects/ab", "/"},
                         {TarSpec::kFile, "objects/ab/evil", "escaped\n"}},
                        "objects/ab/evil", "would be written through the symlink \"objects/ab\"");
}

// The sysroot's filesystem fills up during extraction (the scratch dir is a small filesystem of
// its own, sized to hold the fetched seed but not what it unpacks to): the step fails at once
// naming the entry, ENOSPC, what it needed and what was free, and nothing is imported. Before,
// each failed write was a "Write failed" warning and the extraction reported success.
TEST_F(PrepTest, AFullFilesystemDuringExtractionFailsTheStepNamingTheEntry) {
  const fs::path var = tmp_ / "big-var.tgz";
  WriteTarGz(var, {{TarSpec::kDir, "var", ""},
                   {TarSpec::kDir, "var/lib", ""},
                   {TarSpec::kFile, "var/lib/big", Incompressible(std::size_t{64} << 20)}});
  const std::string image = bed->BuildVariant({{"var.tgz", var}});
  std::uintmax_t layout_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(image.substr(4, image.size() - 9))) {
    if (e.is_regular_file()) layout_bytes += e.file_size();
  }
  host_ = std::make_unique<test::TestSysroot>(tmp_ / "host", kHostVersion);
  booted_ = sr::ResolveBooted(host_->sysroot(), ReadFile(host_->cmdline_file())).value();
  cmdline_ = ReadFile(host_->cmdline_file());
  const int size_mb = static_cast<int>(layout_bytes >> 20) + 40;
  std::unique_ptr<test::SmallFs> small;
  std::string why_not;
  for (auto kind : {test::SmallFs::Kind::kExt4Loop, test::SmallFs::Kind::kTmpfs}) {
    small = std::make_unique<test::SmallFs>(kind, Sysroot() / "ostree/lca-prep", tmp_ / "small.img",
                                            size_mb);
    if (small->mounted()) break;
    why_not += std::string(test::SmallFs::Name(kind)) + ": " + small->why_not() + "; ";
  }
  if (!small->mounted()) GTEST_SKIP() << "no small filesystem: " << why_not;
  StartDaemon({});
  const std::string status_before = Snapshot().status;

  Patch(PrepPatch(image, kSeedVersion, kSecret));
  Wait("PrepCompleted=False");
  const Json o = Settled();
  const std::string message = Condition(o, "PrepInProgress").value("message", "");
  EXPECT_TRUE(Contains(message, "stateroot setup failed: extracting the seed: ")) << message;
  EXPECT_TRUE(Contains(message,
                       "var.tgz: writing entry \"var/lib/big\": No space left on device "
                       "(the entry needs 64.0 MiB, "))
      << message;
  EXPECT_TRUE(std::regex_search(
      message, std::regex(R"(still unwritten; [0-9.]+ (B|KiB|MiB) free on the filesystem of )" +
                          (Sysroot() / "ostree/lca-prep").string())))
      << message;
  // Nothing imported or deployed: the step stopped the Prep where it failed.
  EXPECT_FALSE(sr::OstreeSysroot(Sysroot()).HasCommit(bed->seed_checksum));
  EXPECT_EQ(Snapshot().status, status_before);
  const std::string log = ReadFileIfExists(tmp_ / "daemon.log").value_or("");
  EXPECT_FALSE(Contains(log, "Write failed")) << "a failed write was only a warning";
}

TEST_F(PrepTest, PushedSeedHasTheFormat4ContentsAndExclusions) {
  // Read the seed back from the registry, as a node would.
  const fs::path pulled = tmp_ / "pulled";
  SystemProcessRunner runner;
  RunChecked(runner, bed->registry->SkopeoSpec({"copy", "--src-authfile", bed->auth(), "--quiet",
                                                "docker://" + bed->image,
                                                "oci:" + pulled.string() + ":seed"}));
  const sr::OciImage img = sr::ReadOciImage(pulled, "seed");
  EXPECT_EQ(img.labels.at(std::string(sr::kSeedFormatVersionLabel)), "4");
  const Json info = ParseJson(img.labels.at(std::string(sr::kSeedClusterInfoLabel)), "label");
  EXPECT_EQ(info.value("seed_cluster_ocp_version", ""), "4.15.2") << info.dump();
  const ProcessResult inspect = RunChecked(
      runner,
      bed->registry->SkopeoSpec({"inspect", "--authfile", bed->auth(), "docker://" + bed->image}));
  const Json inspected = ParseJson(inspect.stdout_data, "skopeo inspect");
  EXPECT_EQ(inspected["Labels"][std::string(sr::kSeedFormatVersionLabel)], "4");

  ASSERT_EQ(img.layers.size(), 1u);
  const fs::path files = tmp_ / "files";
  fs::create_directories(files);
  RunOk({"tar", "-xf", sr::BlobPath(pulled, img.layers[0].digest).string(), "-C", files.string()});
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(files)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"containers.list", "etc.deletions", "etc.tgz",
                                          "manifest.json", "mco-currentconfig.json",
                                          "ostree-" + bed->seed_checksum + ".0.origin",
                                          "ostree.tgz", "rpm-ostree.json", "var.tgz"}));

  EXPECT_EQ(ReadFile(files / "etc.deletions"), "/etc/deprecated.conf\n");
  const Json manifest = ParseJson(ReadFile(files / "manifest.json"), "manifest.json");
  EXPECT_EQ(manifest.value("seed_cluster_ocp_version", ""), "4.15.2");
  const Json rpm = ParseJson(ReadFile(files / "rpm-ostree.json"), "rpm-ostree.json");
  EXPECT_EQ(rpm["deployments"][0].value("id", ""), "rhcos-" + bed->seed_checksum + ".0");
  EXPECT_EQ(rpm["deployments"][0].value("booted", false), true);
  const Json mc = ParseJson(ReadFile(files / "mco-currentconfig.json"), "mco");
  EXPECT_EQ(mc["spec"]["kernelArguments"], Json::array({kSeedKarg}));
  std::string want_list;
  for (const auto& c : kContainers) want_list += c + "\n";
  EXPECT_EQ(ReadFile(files / "containers.list"), want_list);

  auto listing = [&](const std::string& tgz) {
    std::set<std::string> out;
    for (auto line : Lines(RunOk({"tar", "-tzf", (files / tgz).string()}).stdout_data)) {
      if (line.rfind("./", 0) == 0) line = line.substr(2);
      while (!line.empty() && line.back() == '/') line.pop_back();
      out.insert(line);
    }
    return out;
  };
  const auto var = listing("var.tgz");
  EXPECT_EQ(var.count("var/lib/seeddata/x"), 1u);
  EXPECT_EQ(var.count("var/lib/kubelet/config.json"), 1u);
  EXPECT_EQ(var.count("var/tmp/junk"), 0u);
  for (const auto& e : var) {
    EXPECT_NE(e.rfind("var/tmp/", 0), 0u) << e;
    EXPECT_NE(e.rfind("var/lib/containers/", 0), 0u) << e;
  }
  const auto etc = listing("etc.tgz");
  EXPECT_EQ(etc.count("etc/seed-added.conf"), 1u);
  EXPECT_EQ(etc.count("etc/motd"), 1u);
  EXPECT_EQ(etc.count("etc/deprecated.conf"), 0u);
  EXPECT_EQ(etc.count("etc/hostname"), 0u);  // excluded
  EXPECT_EQ(etc.count("etc/passwd"), 0u);    // unchanged from usr/etc
}

// The daemon killed right after each host step is journaled (before the step runs: the
// moment a power loss does the most harm) comes back, finds the step unfinished in the
// journal, redoes it and completes Prep with the same end state as an uninterrupted run; the
// booted deployment is the default throughout.
class PrepCrashTest : public PrepTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(PrepCrashTest, KilledAtAStepResumesToTheSameEndState) {
  const std::string step = GetParam();
  Boot();
  daemon_->Signal(SIGTERM);
  ASSERT_TRUE(daemon_->Wait(std::chrono::seconds(10)).has_value());
  StartDaemon({}, {{"LCA_FAILPOINTS", "step." + step + "=crash"}});
  Patch(PrepPatch(bed->image, kSeedVersion, kSecret));
  const auto status = daemon_->Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status.has_value()) << "the failpoint at " << step << " never fired";
  EXPECT_EQ(WEXITSTATUS(*status), 137);
  // The booted deployment is still the default (its entry has the highest number).
  EXPECT_NE(OptionsLine(Snapshot().entries.rbegin()->second).find("root=LABEL=root"),
            std::string::npos)
      << "after a kill at " << step << " the default entry is not the booted deployment's";
  StartDaemon({});
  Wait("PrepCompleted");
  const Json o = Settled();
  EXPECT_EQ(Condition(o, "PrepCompleted").value("status", ""), "True") << step;
  ASSERT_EQ(o["status"]["history"].size(), 1u) << "the resumed Prep is the same run";
  std::vector<fs::path> deployments;
  for (const auto& e : fs::directory_iterator(TargetDir() / "deploy")) {
    if (e.is_directory()) deployments.push_back(e.path());
  }
  ASSERT_EQ(deployments.size(), 1u) << "one deployment in " << kTarget << " after " << step;
  EXPECT_TRUE(fs::exists(deployments[0] / "etc/seed-added.conf")) << step;
  EXPECT_FALSE(fs::exists(deployments[0] / "etc/deprecated.conf")) << step;
  EXPECT_TRUE(fs::exists(TargetDir() / "var/lib/lca/autorollback_config.json")) << step;
  EXPECT_FALSE(fs::exists(Sysroot() / "ostree/lca-prep")) << step;
  EXPECT_FALSE(fs::exists(StateDir() / "workspace/seed-pull-secret")) << step;
}

INSTANTIATE_TEST_SUITE_P(Steps, PrepCrashTest,
                         // Every row of Prep's step table (prep_steps.cpp).
                         ::testing::ValuesIn(PrepHandler::StepNames()), [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace lca
