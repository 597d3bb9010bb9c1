#include "agent/daemon/kube_mode.hpp"

#include <unistd.h>

#include "agent/store/object_store.hpp"

extern char** environ;

namespace lca {
namespace {

std::map<std::string, std::string> Environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

// The Events' source host: the node name the downward API gives a pod, else the host name.
std::string NodeName(const std::map<std::string, std::string>& env) {
  if (auto it = env.find("NODE_NAME"); it != env.end() && !it->second.empty()) return it->second;
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) == 0) return buf;
  return "localhost";
}

}  // namespace

std::unique_ptr<kube::ClusterSync> MakeClusterSync(const DaemonConfig& cfg, ObjectStore& store) {
  const auto env = Environment();
  std::optional<kube::Credentials> creds;
  if (!cfg.kubeconfig.empty()) {
    creds = kube::LoadKubeconfig(cfg.kubeconfig);
  } else {
    creds = WithContext("in-cluster credentials",
                        [&] { return kube::InClusterCredentials(cfg.service_account_dir, env); });
  }
  if (!creds) return nullptr;
  kube::SyncOptions opts;
  opts.server = creds->server;
  opts.identity = creds->source;
  opts.host = NodeName(env);
  opts.base_file = cfg.state_dir / "kube-sync.json";
  kube::ClientOptions client_opts;
  client_opts.user_agent = std::string("lifecycle-agent/") + LCA_VERSION;
  return std::make_unique<kube::ClusterSync>(
      store, kube::MakeCurlClient(std::move(*creds), client_opts), std::move(opts));
}

}  // namespace lca
