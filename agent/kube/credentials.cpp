#include "agent/kube/credentials.hpp"

#include <yaml-cpp/yaml.h>

#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "common/error.hpp"

namespace lca::kube {
namespace fs = std::filesystem;
namespace {

// Reads what a kubeconfig's file field names. The error names the field and the path, never
// the content.
std::string ReadReferenced(const fs::path& base, const std::string& file, const std::string& what) {
  const fs::path p = fs::path(file).is_absolute() ? fs::path(file) : base / file;
  try {
    return ReadFile(p);
  } catch (const Error& e) {
    throw Error(Errc::kInvalid, what + ": cannot read " + p.string() + ": " + e.what());
  }
}

std::string DecodeData(const std::string& data, const std::string& what) {
  try {
    return Base64Decode(data);
  } catch (const Error&) {
    throw Error(Errc::kInvalid, what + ": is not valid base64 (the value is not shown)");
  }
}

std::string Scalar(const YAML::Node& map, const char* key) {
  const YAML::Node n = map[key];
  if (!n || n.IsNull()) return "";
  if (!n.IsScalar()) throw Error(Errc::kInvalid, std::string(key) + ": must be a string");
  return n.Scalar();
}

// The `cluster`/`user`/`context` body of the entry named `name` in a kubeconfig list.
YAML::Node Named(const YAML::Node& root, const char* list, const char* body,
                 const std::string& name) {
  const YAML::Node items = root[list];
  if (items && items.IsSequence()) {
    for (const auto& item : items) {
      if (item.IsMap() && Scalar(item, "name") == name) {
        const YAML::Node b = item[body];
        if (!b || !b.IsMap()) {
          throw Error(Errc::kInvalid, std::string(list) + ": entry '" + name + "' has no " + body);
        }
        return b;
      }
    }
  }
  throw Error(Errc::kInvalid, std::string(list) + ": no entry named '" + name + "'");
}

// `<field>-data` (base64) or `<field>` (a file) from a kubeconfig map.
std::string DataOrFile(const YAML::Node& map, const std::string& field, const fs::path& base,
                       const std::string& where) {
  const std::string data = Scalar(map, (field + "-data").c_str());
  if (!data.empty()) return DecodeData(data, where + "." + field + "-data");
  const std::string file = Scalar(map, field.c_str());
  if (!file.empty()) return ReadReferenced(base, file, where + "." + field);
  return "";
}

void FillCluster(const YAML::Node& cluster, const fs::path& base, const std::string& name,
                 Credentials& c) {
  const std::string where = "clusters[" + name + "].cluster";
  c.server = Scalar(cluster, "server");
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0) {
    throw Error(Errc::kInvalid,
                where + ".server: must be an http(s):// URL, got '" + c.server + "'");
  }
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  c.ca_pem = DataOrFile(cluster, "certificate-authority", base, where);
  c.insecure_skip_tls_verify = Scalar(cluster, "insecure-skip-tls-verify") == "true";
  c.tls_server_name = Scalar(cluster, "tls-server-name");
}

void FillUser(const YAML::Node& user, const fs::path& base, const std::string& name,
              Credentials& c) {
  const std::string where = "users[" + name + "].user";
  c.token = Scalar(user, "token");
  const std::string token_file = Scalar(user, "tokenFile");
  if (!token_file.empty()) {
    c.token_file = fs::path(token_file).is_absolute() ? fs::path(token_file) : base / token_file;
  }
  c.client_cert_pem = DataOrFile(user, "client-certificate", base, where);
  c.client_key_pem = DataOrFile(user, "client-key", base, where);
  if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
    throw Error(Errc::kInvalid,
                where + ": client-certificate and client-key go together; one is missing");
  }
  for (const char* unsupported : {"exec", "auth-provider", "username"}) {
    if (user[unsupported]) {
      throw Error(Errc::kInvalid, where + "." + unsupported +
                                      ": not supported by lifecycle-agent; use a token, "
                                      "tokenFile or a client certificate");
    }
  }
}

}  // namespace

Credentials LoadKubeconfig(const fs::path& file, const std::string& context) {
  return WithContext("kubeconfig " + file.string(), [&] {
    YAML::Node root;
    try {
      root = YAML::Load(ReadFile(file));
    } catch (const YAML::Exception& e) {
      // yaml-cpp's message names the line and column, not the content.
      throw Error(Errc::kInvalid, std::string("not YAML: ") + e.what());
    }
    if (!root.IsMap()) throw Error(Errc::kInvalid, "must be a YAML mapping (kind: Config)");
    const std::string ctx_name = context.empty() ? Scalar(root, "current-context") : context;
    if (ctx_name.empty()) {
      throw Error(Errc::kInvalid, "current-context: is not set (and no context was given)");
    }
    const YAML::Node ctx = Named(root, "contexts", "context", ctx_name);
    const fs::path base = file.parent_path();
    Credentials c;
    const std::string cluster = Scalar(ctx, "cluster");
    FillCluster(Named(root, "clusters", "cluster", cluster), base, cluster, c);
    const std::string user = Scalar(ctx, "user");
    if (!user.empty()) FillUser(Named(root, "users", "user", user), base, user, c);
    c.source = "kubeconfig " + file.string() + " (context " + ctx_name + ")";
    return c;
  });
}

std::optional<Credentials> InClusterCredentials(const fs::path& root,
                                                const std::map<std::string, std::string>& env) {
  const auto host = env.find("KUBERNETES_SERVICE_HOST");
  if (host == env.end() || host->second.empty()) return std::nullopt;
  const auto port = env.find("KUBERNETES_SERVICE_PORT");
  Credentials c;
  // An IPv6 service address needs brackets in a URL.
  const bool v6 = host->second.find(':') != std::string::npos;
  c.server = "https://" + (v6 ? "[" + host->second + "]" : host->second) + ":" +
             (port == env.end() || port->second.empty() ? "443" : port->second);
  c.token_file = root / "token";
  c.ca_pem = ReadReferenced(root, "ca.crt", "in-cluster service account");
  c.source = "in-cluster service account (" + root.string() + ")";
  return c;
}

std::string BearerToken(const Credentials& c) {
  if (c.token_file.empty()) return c.token;
  std::string t = ReadReferenced(fs::path(), c.token_file.string(), "tokenFile");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace lca::kube
