#pragma once
// `lcactl must-gather`: one .tar.gz with what a support engineer asks for first. Members, under
// "must-gather-<UTC stamp>/":
//   summary.txt            what was collected from where, and what could not be and why
//   object.json            the ImageBasedUpgrade: from the daemon, else <state-dir>/ibu.json
//   step-journal.json      <state-dir>/journal.json (the journaled host steps)
//   state-files/<name>     autorollback_config.json, pinned.json, metrics.json when present
//   state-dir.txt          the state dir's and workspace's file names, sizes and modes
//   precache-status.json   <state-dir>/workspace/precache_status.json; containers.list too
//   daemon.log             journalctl -u lifecycle-agent -n 2000, else the tail of --log-file
//   deployments.txt        ostree admin status --sysroot <sysroot>
//   disk-usage.txt         statvfs of the sysroot, the state dir and containers storage
//   metrics.txt            the daemon's /metrics, when it answers
//   config/<file name>     the daemon's config file
//   config-dir.txt         the config dir's file names and sizes (never contents of secrets/)
// Everything is redacted before it is written: JSON values of auth, password, token,
// identitytoken and registrytoken keys (any case), Authorization/Bearer header values, and the
// same keys in YAML or free text. Every entry is a regular file, mode 0600, with a relative name.
#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/process.hpp"

namespace lca::cli {

struct MustGatherOptions {
  std::filesystem::path output;  // empty: ./must-gather-<YYYYmmddTHHMMSSZ>.tar.gz
  std::filesystem::path socket = "/run/lca/lca.sock";
  std::filesystem::path state_dir = "/var/lib/lca";
  std::filesystem::path sysroot = "/";
  std::filesystem::path config_file = "/etc/lca/lifecycle-agent.yaml";
  std::filesystem::path config_dir = "/etc/lca";
  std::filesystem::path containers_root = "/var/lib/containers/storage";
  // The daemon's log when journalctl has none (a daemon run by hand with its stderr in a file).
  std::filesystem::path log_file;
  std::string journal_unit = "lifecycle-agent";
  size_t log_lines = 2000;
  std::vector<std::string> journalctl = {"journalctl"};
  std::vector<std::string> ostree = {"ostree"};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  // Where the paths above came from, for summary.txt ("lifecycle-agent's /lca/v1/paths").
  std::string paths_source = "lcactl's defaults and flags";
};

// The path options given on the command line: they win over what the daemon says.
struct MustGatherPathsGiven {
  bool state_dir = false, sysroot = false, config_file = false, config_dir = false,
       containers_root = false;
};

// Asks the running daemon (GET /lca/v1/paths) for its state dir, sysroot, config file, config
// dir and containers storage and uses them where `given` is false, so a daemon run with its
// own --state-dir is gathered from there. When it does not answer, the defaults stay and a
// warning saying so goes to `err`. An answer that is not an absolute path is not used.
void UseDaemonPaths(MustGatherOptions& opts, const MustGatherPathsGiven& given, std::ostream& err);

// Replaces the values of secret-bearing keys (see above) anywhere in the document.
void RedactJson(Json& j);
// The text-level pass applied to every member: JSON "key": "value" pairs, YAML key: value
// lines, Authorization headers and Bearer tokens.
std::string RedactText(std::string text);
// A member name we write: relative, "/"-separated, [A-Za-z0-9._-] components, no "." or "..".
bool SafeMemberName(const std::string& name);

// Writes the archive; returns its path. Throws lca::Error only when the archive itself cannot
// be written: everything else missing is noted in summary.txt.
std::filesystem::path MustGather(ProcessRunner& runner, const MustGatherOptions& opts);

int MustGatherCommand(const MustGatherOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace lca::cli
