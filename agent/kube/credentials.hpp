#pragma once
// Where the agent's identity on the API server comes from: a kubeconfig file (its current
// context) or, in a pod, the service account Kubernetes mounts. Everything secret stays in
// this struct and goes only to libcurl: never into a log line, an error message or a
// must-gather (nothing here has a printer on purpose).
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace lca::kube {

struct Credentials {
  std::string server;  // "https://host:port", no trailing slash
  std::string ca_pem;  // CA bundle; empty = the system's trust store
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  // Bearer token: a fixed one, or a file read again before each request (service-account
  // tokens are rotated by the kubelet; an operator replaces a revoked one the same way).
  std::string token;
  std::filesystem::path token_file;
  std::string client_cert_pem, client_key_pem;  // client certificate authentication
  std::string source;  // for messages: "kubeconfig /etc/lca/kubeconfig (context admin)"
};

// The current context of a kubeconfig (or `context` when given). Paths in the file are relative
// to its directory, as kubectl resolves them; *-data fields are base64. Throws lca::Error
// kInvalid naming the file and the field (never a field's value).
Credentials LoadKubeconfig(const std::filesystem::path& file,
                           const std::string& context = std::string());

// The in-cluster service account: KUBERNETES_SERVICE_HOST/PORT from `env` and
// <root>/{token,ca.crt} (root: /var/run/secrets/kubernetes.io/serviceaccount). nullopt when
// not in a pod (no KUBERNETES_SERVICE_HOST).
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
std::optional<Credentials> InClusterCredentials(const std::filesystem::path& root,
                                                const std::map<std::string, std::string>& env);

// The current bearer token (the file's content, trimmed, when token_file is set); empty = none.
std::string BearerToken(const Credentials& c);

}  // namespace lca::kube
