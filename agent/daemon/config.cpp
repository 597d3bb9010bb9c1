#include "agent/daemon/config.hpp"

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/logging.hpp"

namespace lca {

mode_t ParseMode(const std::string& text, const std::string& what) {
  std::string digits = text;
  if (digits.rfind("0o", 0) == 0) digits = digits.substr(2);
  if (digits.empty() || digits.size() > 4 ||
      digits.find_first_not_of("01234567") != std::string::npos) {
    throw Error(Errc::kInvalid, what + ": '" + text + "' is not an octal mode like 0600");
  }
  return static_cast<mode_t>(std::stoul(digits, nullptr, 8));
}

DaemonConfig LoadConfigFile(const std::filesystem::path& file, DaemonConfig cfg) {
  const std::string where = file.string();
  const Json j = ParseYaml(ReadFile(file), where);
  if (j.is_null()) return cfg;  // an empty file
  if (!j.is_object()) throw Error(Errc::kInvalid, where + ": must be a YAML mapping");
  for (const auto& [key, v] : j.items()) {
    auto str = [&]() -> std::string {
      if (v.is_string()) return v.get<std::string>();
      if (v.is_number_integer()) return std::to_string(v.get<long long>());
      throw Error(Errc::kInvalid, where + ": " + key + ": must be a string");
    };
    if (key == "sysroot") {
      cfg.sysroot = str();
    } else if (key == "stateDir") {
      cfg.state_dir = str();
    } else if (key == "socket") {
      cfg.socket = str();
    } else if (key == "socketMode") {
      cfg.socket_mode = ParseMode(str(), where + ": socketMode");
    } else if (key == "procCmdline") {
      cfg.proc_cmdline = str();
    } else if (key == "configDir") {
      cfg.config_dir = str();
    } else if (key == "containersRoot") {
      cfg.containers_root = str();
    } else if (key == "logLevel") {
      cfg.log_level = str();
    } else if (key == "logFormat") {
      cfg.log_format = str();
      WithContext(where + ": logFormat", [&] { ParseLogTarget(cfg.log_format); });
    } else if (key == "registriesConf") {
      cfg.registries_conf = str();
    } else if (key == "signaturePolicy") {
      cfg.signature_policy = str();
    } else if (key == "runningVersion") {
      cfg.running_version = str();
    } else if (key == "nodePullSecret") {
      cfg.node_pull_secret = str();
    } else if (key == "containersRunroot") {
      cfg.containers_runroot = str();
    } else if (key == "containersStorageDriver") {
      cfg.containers_storage_driver = str();
    } else if (key == "metricsAddress") {
      cfg.metrics_address = str();
    } else if (key == "kubeconfig") {
      cfg.kubeconfig = str();
    } else if (key == "serviceAccountDir") {
      cfg.service_account_dir = str();
    } else if (key == "releaseRegistry") {
      cfg.release_registry = str();
    } else if (key == "precacheConcurrency" || key == "precacheTimeoutSeconds") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1000000)
        throw Error(Errc::kInvalid, where + ": " + key + ": must be a positive integer");
      (key == "precacheConcurrency" ? cfg.precache_concurrency : cfg.precache_timeout_seconds) =
          static_cast<int>(v.get<int64_t>());
    } else if (key == "precacheBestEffort" || key == "precacheDisabled") {
      if (!v.is_boolean())
        throw Error(Errc::kInvalid, where + ": " + key + ": must be true or false");
      (key == "precacheBestEffort" ? cfg.precache_best_effort : cfg.precache_disabled) =
          v.get<bool>();
    } else if (key == "hasProxy") {
      if (!v.is_boolean()) {
        throw Error(Errc::kInvalid, where + ": " + key + ": must be true or false");
      }
      cfg.has_proxy = v.get<bool>();
    } else if (key == "selinuxfs") {
      cfg.selinuxfs = str();
    } else if (key == "maxStepAttempts") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1000)
        throw Error(Errc::kInvalid, where + ": maxStepAttempts: must be an integer from 1 to 1000");
      cfg.max_step_attempts = static_cast<int>(v.get<int64_t>());
    } else if (key == "recoveryBackup") {
      if (!v.is_boolean())
        throw Error(Errc::kInvalid, where + ": " + key + ": must be true or false");
      cfg.recovery_backup = v.get<bool>();
    } else if (key == "recoveryConfig") {
      cfg.recovery_config = str();
    } else if (key == "hooksDir") {
      cfg.hooks_dir = str();
    } else if (key == "hookTimeoutSeconds") {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        throw Error(Errc::kInvalid, where + ": hookTimeoutSeconds: must be a positive integer");
      cfg.hook_timeout_seconds = v.get<int64_t>();
    } else if (key == "rebootCommand" || key == "systemctlCommand") {
      if (!v.is_array() || v.empty())
        throw Error(Errc::kInvalid, where + ": " + key + ": must be a non-empty list of strings");
      std::vector<std::string> argv;
      for (const auto& a : v) {
        if (!a.is_string())
          throw Error(Errc::kInvalid, where + ": " + key + ": must be a list of strings");
        argv.push_back(a.get<std::string>());
      }
      (key == "rebootCommand" ? cfg.reboot_command : cfg.systemctl_command) = std::move(argv);
    } else {
      throw Error(
          Errc::kInvalid,
          where + ": unknown key '" + key +
              "' (known: sysroot, stateDir, socket, socketMode, procCmdline, configDir, "
              "containersRoot, logLevel, logFormat, registriesConf, signaturePolicy, "
              "runningVersion, nodePullSecret, containersRunroot, containersStorageDriver, "
              "precacheConcurrency, precacheTimeoutSeconds, precacheBestEffort, "
              "precacheDisabled, releaseRegistry, hooksDir, hookTimeoutSeconds, rebootCommand, "
              "systemctlCommand, recoveryBackup, recoveryConfig, metricsAddress, hasProxy, "
              "selinuxfs, maxStepAttempts, kubeconfig, serviceAccountDir)");
    }
  }
  return cfg;
}

}  // namespace lca
