#pragma once
// A throwaway ostree sysroot "booted" at an OS release, built by scripts/testbed/make-sysroot.sh
// in a directory the caller owns (and removes). Tests only. Tests that deploy into it themselves
// must run with OSTREE_SYSROOT_DEBUG=mutable-deployments (scripts/test.sh sets it) or the
// deployment directories become immutable and cannot be removed.
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"
#include "tests/support/registry.hpp"  // TestbedScript, LastLine

namespace lca::test {

class TestSysroot {
 public:
  // Builds DIR/os-repo (release VERSION on branch rhcos/VERSION), DIR/sysroot with it deployed
  // in STATEROOT, and DIR/cmdline. size_mb > 0 adds that much filler under usr/share/doc.
  explicit TestSysroot(std::filesystem::path dir, std::string version = "4.14.1",
                       std::string stateroot = "rhcos", int size_mb = 0)
      : dir_(std::move(dir)), version_(std::move(version)), stateroot_(std::move(stateroot)) {
    std::vector<std::string> argv = {TestbedScript("make-sysroot.sh").string(),
                                     dir_.string(),
                                     "--version",
                                     version_,
                                     "--stateroot",
                                     stateroot_};
    if (size_mb > 0) {
      argv.push_back("--size-mb");
      argv.push_back(std::to_string(size_mb));
    }
    commit_ = Run(argv);
  }

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path sysroot() const { return dir_ / "sysroot"; }
  // The default BLS entry's options line, ostree= included: pass it as --proc-cmdline.
  std::filesystem::path cmdline_file() const { return dir_ / "cmdline"; }
  // Archive repo holding every release commit (pull-local from it).
  std::filesystem::path os_repo() const { return dir_ / "os-repo"; }
  // The stateroot's shared /var (var/lib/kubelet/config.json, var/lib/containers/).
  std::filesystem::path stateroot_var() const {
    return sysroot() / "ostree" / "deploy" / stateroot_ / "var";
  }
  const std::string& version() const { return version_; }
  const std::string& stateroot() const { return stateroot_; }
  // Checksum of the booted (deployed) commit.
  const std::string& commit() const { return commit_; }
  static std::string Branch(const std::string& version) { return "rhcos/" + version; }

  // Commits release VERSION on Branch(VERSION) into os_repo(), built from the newest release
  // there: the same tree with new metadata, or with tree_changes a changed /usr (usr/bin/release
  // prints VERSION, os-release VERSION_ID=VERSION, usr/etc/deprecated.conf removed). Returns the
  // commit checksum. Not deployed.
  std::string CommitRelease(const std::string& version, bool tree_changes) const {
    std::vector<std::string> argv = {TestbedScript("make-sysroot.sh").string(),
                                     "--commit-only",
                                     os_repo().string(),
                                     "--version",
                                     version,
                                     "--branch",
                                     Branch(version)};
    if (tree_changes) argv.push_back("--tree-changes");
    return Run(argv);
  }

 private:
  static std::string Run(const std::vector<std::string>& argv) {
    SystemProcessRunner runner;
    const ProcessResult r =
        RunChecked(runner, ProcessSpec{.argv = argv,
                                       .env = {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}},
                                       .timeout = std::chrono::milliseconds(300000)});
    const std::string csum = LastLine(r.stdout_data);
    if (csum.size() != 64) {
      throw Error(Errc::kInternal, "make-sysroot.sh printed no checksum: " + r.stdout_data);
    }
    return csum;
  }

  std::filesystem::path dir_;
  std::string version_;
  std::string stateroot_;
  std::string commit_;
};

}  // namespace lca::test
