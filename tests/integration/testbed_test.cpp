// The test bed itself: a real registry with auth on loopback (scripts/testbed/registry.sh) and a
// throwaway ostree sysroot (scripts/testbed/make-sysroot.sh), checked with the real tools the
// agent's tests will use against them (skopeo, umoci, ostree).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "common/process.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ProcessResult RunOk(const std::vector<std::string>& argv) {
  SystemProcessRunner runner;
  return RunChecked(runner, ProcessSpec{.argv = argv, .timeout = std::chrono::seconds(120)});
}

// Exists and is not a zombie (an exited child of ours or of init that nobody reaped yet).
bool ProcessRunning(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

// A one-layer OCI image in an umoci layout: DIR:seed.
std::string BuildImage(const fs::path& dir) {
  const std::string layout = (dir / "oci").string();
  const std::string image = layout + ":seed";
  RunOk({"umoci", "init", "--layout", layout});
  RunOk({"umoci", "new", "--image", image});
  RunOk({"umoci", "unpack", "--image", image, (dir / "bundle").string()});
  std::ofstream(dir / "bundle/rootfs/hello.txt") << "hello from the seed\n";
  RunOk({"umoci", "repack", "--image", image, (dir / "bundle").string()});
  RunOk({"umoci", "config", "--image", image, "--config.label", "lca.test.release=4.15.2"});
  return image;
}

TEST(TestbedRegistry, AuthPushInspectAndStop) {
  const test::RegistryCredentials creds{.user = "lca", .password = "s3cret:with-colon"};
  auto reg = std::make_unique<test::LocalRegistry>(creds);
  ASSERT_TRUE(std::regex_match(reg->address(), std::regex(R"(127\.0\.0\.1:\d+)")))
      << reg->address();
  EXPECT_GT(reg->pid(), 0);
  EXPECT_TRUE(ProcessRunning(reg->pid()));

  // Client files.
  const std::string conf = ReadFile(reg->registries_conf());
  EXPECT_NE(conf.find("[[registry]]"), std::string::npos) << conf;
  EXPECT_NE(conf.find("location = \"" + reg->address() + "\""), std::string::npos) << conf;
  EXPECT_NE(conf.find("insecure = true"), std::string::npos) << conf;
  struct stat st {};
  ASSERT_EQ(::stat(reg->auth_json().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // base64("lca:s3cret:with-colon")
  EXPECT_EQ(ReadFile(reg->auth_json()), "{\"auths\":{\"" + reg->address() +
                                            "\":{\"auth\":\"bGNhOnMzY3JldDp3aXRoLWNvbG9u\"}}}\n");
  EXPECT_EQ(test::LastLine(
                RunOk({test::TestbedScript("registry.sh").string(), "url", reg->dir().string()})
                    .stdout_data),
            reg->address());

  // Push an umoci-built image with the auth file.
  test::TempDir work("lca-testbed-image");
  const std::string image = BuildImage(work.path());
  const std::string ref = "docker://" + reg->address() + "/seed:4.15.2";
  SystemProcessRunner runner;
  RunChecked(runner, reg->SkopeoSpec({"copy", "--authfile", reg->auth_json().string(),
                                      "--dest-tls-verify=false", "oci:" + image, ref}));

  // Inspect with the auth file: plain HTTP allowed by the flag...
  ProcessResult r =
      RunChecked(runner, reg->SkopeoSpec({"inspect", "--authfile", reg->auth_json().string(),
                                          "--tls-verify=false", ref}));
  EXPECT_NE(r.stdout_data.find("\"lca.test.release\": \"4.15.2\""), std::string::npos)
      << r.stdout_data;
  // ...and by registries.conf alone (SkopeoSpec passes it).
  r = RunChecked(runner,
                 reg->SkopeoSpec({"inspect", "--authfile", reg->auth_json().string(), ref}));
  EXPECT_NE(r.stdout_data.find("\"Digest\": \"sha256:"), std::string::npos) << r.stdout_data;

  // Without credentials the registry refuses.
  const fs::path no_auth = work / "empty-auth.json";
  std::ofstream(no_auth) << "{\"auths\":{}}\n";
  r = runner.Run(
      reg->SkopeoSpec({"inspect", "--authfile", no_auth.string(), "--tls-verify=false", ref}));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.stderr_tail.find("401") != std::string::npos ||
              r.stderr_tail.find("unauthorized") != std::string::npos)
      << r.stderr_tail;
  // The wrong password too.
  const fs::path bad_auth = work / "bad-auth.json";
  std::ofstream(bad_auth) << "{\"auths\":{\"" << reg->address()
                          << "\":{\"auth\":\"bGNhOndyb25n\"}}}\n";  // lca:wrong
  r = runner.Run(
      reg->SkopeoSpec({"inspect", "--authfile", bad_auth.string(), "--tls-verify=false", ref}));
  EXPECT_FALSE(r.ok());

  // skopeo ran in its own mount namespace; scripts/test.sh checks that the machine's
  // container storage never appears.

  // Stop: the process is gone, the port closed, the pid file removed; stopping again is fine.
  const pid_t pid = reg->pid();
  const std::string address = reg->address();
  const fs::path dir = reg->dir();
  reg->Stop();
  EXPECT_FALSE(ProcessRunning(pid));
  EXPECT_FALSE(fs::exists(dir / "registry.pid"));
  const ProcessResult curl = runner.Run(ProcessSpec{
      .argv = {"curl", "-s", "-o", "/dev/null", "--max-time", "2", "http://" + address + "/v2/"}});
  if (curl.exit_code != 7) {
    // registry.sh gives the first free port from 5000, so a registry of a test running in
    // parallel may already have taken the port ours freed. Then it must be someone else's.
    const std::string port = address.substr(address.rfind(':') + 1);
    const ProcessResult ss = runner.Run(ProcessSpec{.argv = {"ss", "-Hltnp", "sport = :" + port}});
    ASSERT_TRUE(ss.ok()) << ss.Describe();
    EXPECT_NE(ss.stdout_data.find("pid="), std::string::npos)
        << "curl connected (exit " << curl.exit_code << ") but nothing listens: " << ss.stdout_data;
    EXPECT_EQ(ss.stdout_data.find("pid=" + std::to_string(pid) + ","), std::string::npos)
        << "the stopped registry still listens: " << ss.stdout_data;
  }
  EXPECT_FALSE(runner
                   .Run(ProcessSpec{
                       .argv = {test::TestbedScript("registry.sh").string(), "url", dir.string()}})
                   .ok());
  reg->Stop();
  reg.reset();
  EXPECT_FALSE(fs::exists(dir)) << "the registry's temp dir is removed";
}

TEST(TestbedRegistry, WithoutAuthTwoAtOnceAndDestructorStops) {
  pid_t first_pid = -1;
  {
    test::LocalRegistry a;
    test::LocalRegistry b;
    first_pid = a.pid();
    EXPECT_NE(a.address(), b.address());
    EXPECT_FALSE(fs::exists(a.auth_json()));
    SystemProcessRunner runner;
    const ProcessResult r = RunChecked(
        runner, ProcessSpec{.argv = {"curl", "-s", "--max-time", "2", "-w", " %{http_code}",
                                     "http://" + a.address() + "/v2/"}});
    EXPECT_EQ(r.stdout_data, "{} 200");
  }
  EXPECT_FALSE(ProcessRunning(first_pid));
}

TEST(TestbedRegistry, StartFailsClearlyOnABusyPort) {
  test::LocalRegistry a;
  const std::string port = a.address().substr(a.address().find(':') + 1);
  test::TempDir other("lca-registry-busy");
  SystemProcessRunner runner;
  const ProcessResult r =
      runner.Run(ProcessSpec{.argv = {test::TestbedScript("registry.sh").string(), "start",
                                      other.path().string(), "--port", port}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_tail.find("already in use"), std::string::npos) << r.stderr_tail;
}

TEST(TestbedSysroot, BootedAtReleaseAndNewerCommit) {
  test::TempDir tmp("lca-testbed-sysroot");
  const auto start = std::chrono::steady_clock::now();
  const test::TestSysroot ts(tmp / "t");
  // About 0.5 s alone; the margin is for a loaded machine (ctest -j).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  ASSERT_EQ(ts.commit().size(), 64u);

  // One BLS entry whose options carry our kargs and ostree=.
  const fs::path entries = ts.sysroot() / "boot/loader/entries";
  std::vector<fs::path> confs;
  for (const auto& e : fs::directory_iterator(entries)) confs.push_back(e.path());
  ASSERT_EQ(confs.size(), 1u);
  EXPECT_EQ(confs[0].filename(), "ostree-1-rhcos.conf");
  const std::string entry = ReadFile(confs[0]);
  EXPECT_NE(entry.find("4.14.1"), std::string::npos) << entry;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(entry, m, std::regex(R"(\noptions ([^\n]*)\n)"))) << entry;
  const std::string options = m[1];
  EXPECT_EQ(options.rfind("root=LABEL=root rw ostree=/ostree/boot.", 0), 0u) << options;

  // DIR/cmdline is that options line; its ostree= resolves to the deployment.
  const std::string cmdline = ReadFile(ts.cmdline_file());
  EXPECT_EQ(cmdline, options + "\n");
  ASSERT_TRUE(std::regex_search(cmdline, m, std::regex(R"(ostree=/(\S+))"))) << cmdline;
  const fs::path boot_link = ts.sysroot() / std::string(m[1]);
  EXPECT_TRUE(fs::is_symlink(boot_link)) << boot_link;
  EXPECT_EQ(fs::canonical(boot_link),
            fs::canonical(ts.sysroot() / "ostree/deploy/rhcos/deploy" / (ts.commit() + ".0")));

  // ostree agrees: one deployment, stateroot rhcos, version 4.14.1.
  const std::string status =
      RunOk({"ostree", "admin", "status", "--sysroot=" + ts.sysroot().string()}).stdout_data;
  const std::regex deployment_line(R"((^|\n)[ *]*(\S+) ([0-9a-f]{64})\.(\d+)\n)");
  std::vector<std::string> roots;
  for (auto it = std::sregex_iterator(status.begin(), status.end(), deployment_line);
       it != std::sregex_iterator(); ++it) {
    roots.push_back((*it)[2]);
    EXPECT_EQ((*it)[3], ts.commit());
  }
  EXPECT_EQ(roots, std::vector<std::string>{"rhcos"}) << status;
  EXPECT_NE(status.find("Version: 4.14.1"), std::string::npos) << status;

  // The deployment's /etc came from usr/etc.
  const fs::path deploy = ts.sysroot() / "ostree/deploy/rhcos/deploy" / (ts.commit() + ".0");
  EXPECT_NE(ReadFile(deploy / "etc/os-release").find("VERSION_ID=\"4.14.1\""), std::string::npos);
  EXPECT_TRUE(fs::exists(deploy / "etc/deprecated.conf"));
  EXPECT_TRUE(fs::exists(deploy / "etc/containers/registries.conf"));

  // The stateroot's /var.
  const fs::path secret = ts.stateroot_var() / "lib/kubelet/config.json";
  EXPECT_NE(ReadFile(secret).find("\"auths\""), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(secret.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::is_directory(ts.stateroot_var() / "lib/containers"));

  // A newer release with tree changes.
  const std::string repo = "--repo=" + ts.os_repo().string();
  const std::string next = ts.CommitRelease("4.15.2", true);
  ASSERT_EQ(next.size(), 64u);
  EXPECT_NE(next, ts.commit());
  EXPECT_EQ(RunOk({"ostree", repo, "show", "--print-metadata-key=version", next}).stdout_data,
            "'4.15.2'\n");
  EXPECT_EQ(RunOk({"ostree", repo, "rev-parse", "rhcos/4.15.2"}).stdout_data, next + "\n");
  EXPECT_EQ(RunOk({"ostree", repo, "cat", next, "/usr/bin/release"}).stdout_data,
            "#!/bin/sh\necho \"4.15.2\"\n");
  const std::string diff = RunOk({"ostree", repo, "diff", ts.commit(), next}).stdout_data;
  EXPECT_NE(diff.find("D    /usr/etc/deprecated.conf"), std::string::npos) << diff;
  EXPECT_NE(diff.find("M    /usr/etc/os-release"), std::string::npos) << diff;
  EXPECT_NE(diff.find("M    /usr/bin/release"), std::string::npos) << diff;

  // Without tree changes: same tree as the newest release, new metadata.
  const std::string same = ts.CommitRelease("4.15.3", false);
  EXPECT_EQ(RunOk({"ostree", repo, "diff", next, same}).stdout_data, "");
  EXPECT_EQ(RunOk({"ostree", repo, "show", "--print-metadata-key=version", same}).stdout_data,
            "'4.15.3'\n");

  // Nothing was made immutable: the whole tree can be removed.
  std::error_code ec;
  fs::remove_all(tmp / "t", ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST(TestbedSysroot, OtherStaterootAndVersion) {
  test::TempDir tmp("lca-testbed-sysroot");
  const test::TestSysroot ts(tmp / "t", "4.13.7", "osA");
  EXPECT_TRUE(fs::exists(ts.sysroot() / "boot/loader/entries/ostree-1-osA.conf"));
  EXPECT_TRUE(fs::is_directory(ts.sysroot() / "ostree/deploy/osA/deploy" / (ts.commit() + ".0")));
  EXPECT_NE(ReadFile(ts.cmdline_file()).find("ostree=/ostree/boot.1/osA/"), std::string::npos);
  // An existing sysroot is not overwritten.
  SystemProcessRunner runner;
  const ProcessResult r = runner.Run(
      ProcessSpec{.argv = {test::TestbedScript("make-sysroot.sh").string(), (tmp / "t").string()}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_tail.find("already exists"), std::string::npos) << r.stderr_tail;
}

}  // namespace
}  // namespace lca
