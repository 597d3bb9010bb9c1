#include "recovery/host.hpp"

#include <spdlog/spdlog.h>

#include "common/error.hpp"

namespace lca::recovery {

namespace fs = std::filesystem;

fs::path HostConfig::Host(const fs::path& host_path) const {
  const fs::path rel = host_path.relative_path();
  return rel.empty() ? root : root / rel;
}

fs::path HostConfig::Sysroot() const { return sysroot.empty() ? Host("/sysroot") : sysroot; }

fs::path HostConfig::ProcCmdline() const {
  if (!proc_cmdline.empty()) return proc_cmdline;
  return Host("/proc/cmdline");
}

void ApplyHostConfigJson(const Json& j, const std::string& what, HostConfig* cfg) {
  if (!j.is_object()) throw Error(Errc::kInvalid, what + ": not a JSON object");
  auto str = [&](const std::string& key) {
    const Json& v = j.at(key);
    if (!v.is_string())
      throw Error(Errc::kInvalid, what + ": field \"" + key + "\" must be a string");
    return v.get<std::string>();
  };
  auto list = [&](const std::string& key) {
    const Json& v = j.at(key);
    std::vector<std::string> out;
    if (v.is_array()) {
      for (const auto& x : v) {
        if (!x.is_string()) break;
        out.push_back(x.get<std::string>());
      }
      if (out.size() == v.size()) return out;
    }
    throw Error(Errc::kInvalid, what + ": field \"" + key + "\" must be a list of strings");
  };
  for (const auto& [key, value] : j.items()) {
    if (key == "root") {
      cfg->root = str(key);
    } else if (key == "sysroot") {
      cfg->sysroot = str(key);
    } else if (key == "procCmdline") {
      cfg->proc_cmdline = str(key);
    } else if (key == "commandPrefix") {
      cfg->command_prefix = list(key);
    } else if (key == "etcdctl") {
      cfg->etcd.etcdctl = str(key);
    } else if (key == "etcdEndpoints") {
      cfg->etcd.endpoints = list(key);
    } else if (key == "etcdCacert") {
      cfg->etcd.cacert = str(key);
    } else if (key == "etcdCert") {
      cfg->etcd.cert = str(key);
    } else if (key == "etcdKey") {
      cfg->etcd.key = str(key);
    } else if (key == "etcdName") {
      cfg->etcd.name = str(key);
    } else if (key == "etcdPeerUrl") {
      cfg->etcd.peer_url = str(key);
    } else if (key.rfind("backup", 0) == 0 || key.rfind("restore", 0) == 0) {
      continue;  // the backup's and the restore's own settings, read by them
    } else {
      throw Error(Errc::kInvalid, what + ": unknown field \"" + key + "\"");
    }
  }
}

ProcessSpec HostCommands::Spec(std::vector<std::string> argv,
                               std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = cfg_.command_prefix;
  full.insert(full.end(), argv.begin(), argv.end());
  return ProcessSpec{.argv = std::move(full), .timeout = timeout};
}

ProcessResult HostCommands::Run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  return runner_.Run(Spec(std::move(argv), timeout));
}

ProcessResult HostCommands::Check(std::vector<std::string> argv,
                                  std::chrono::milliseconds timeout) {
  return RunChecked(runner_, Spec(std::move(argv), timeout));
}

void HostCommands::BestEffort(std::vector<std::string> argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  try {
    const ProcessResult r = Run(std::move(argv));
    if (!r.ok()) spdlog::warn("{}: {} (continuing)", cmd, r.Describe());
  } catch (const Error& e) {
    spdlog::warn("{}: {} (continuing)", cmd, e.what());
  }
}

}  // namespace lca::recovery
