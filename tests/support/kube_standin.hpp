#pragma once
// The Kubernetes API server stand-in (tests/support/kube_apiserver, Python) for one test: its
// own CA and server certificate, a bearer token, a kubeconfig, a free port and a data dir, torn
// down with the object. See docs/kubernetes-standin.md for what it covers and what it cannot
// prove. Tests only.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/kube_certs.hpp"
#include "tests/support/run_cmd.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::test {

struct KubeStandinOptions {
  // Resource-type files (tests/support/kube_apiserver/resources/*.json shape) besides the
  // defaults: core v1, events.k8s.io, CRDs, config.openshift.io and lca.openshift.io.
  std::vector<std::filesystem::path> extra_resources{};
  bool default_resources = true;
  double bookmark_interval_seconds = 60;  // how often an idle watch gets a BOOKMARK
  int watch_timeout_seconds = 1800;       // a watch's length when it gives no timeoutSeconds
  bool client_certs = false;              // also accept client certificates (kubeconfig_cert())
};

// One line of the request log (discovery, resources; not the /_standin/ control calls).
struct KubeRequest {
  double time = 0;
  std::string method, path, query, user, user_agent;
  int code = 0;
  bool watch = false;
};

struct HttpResult {
  int code = 0;  // HTTP status; 0 when curl got no answer
  std::string body;
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

inline std::filesystem::path KubeApiserverDir() {
  return std::filesystem::path(LCA_TEST_SOURCE_DIR) / "tests" / "support" / "kube_apiserver";
}

inline std::string RandomToken() {
  std::random_device rd;
  std::ostringstream s;
  for (int i = 0; i < 4; ++i) s << std::hex << rd();
  return s.str();
}

class KubeStandin {
 public:
  explicit KubeStandin(KubeStandinOptions opts = {}) : opts_(std::move(opts)), ca_(dir_ / "pki") {
    server_cert_ = ca_.IssueServer();
    if (opts_.client_certs) client_cert_ = ca_.IssueClient("lca-agent", "lca");
    token_ = AddToken("system:serviceaccount:openshift-lifecycle-agent:lifecycle-agent");
    admin_token_ = RandomToken();
    tokens_["tokens"][admin_token_] = {{"user", "standin-admin"}, {"admin", true}};
    WriteTokens();
    std::filesystem::create_directories(dir_ / "data");
    std::filesystem::create_directories(dir_ / "home");
    Start();  // the first start binds a port the kernel picks; restarts reuse it
    WriteKubeconfig(kubeconfig(), token_);
    if (opts_.client_certs) WriteKubeconfig(kubeconfig_cert(), "");
  }
  ~KubeStandin() { Stop(); }
  KubeStandin(const KubeStandin&) = delete;
  KubeStandin& operator=(const KubeStandin&) = delete;

  uint16_t port() const { return port_; }
  std::string server() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path ca_file() const { return ca_.ca(); }
  const std::string& token() const { return token_; }
  // server, certificate-authority and token(); kubeconfig_cert() uses the client certificate.
  std::filesystem::path kubeconfig() const { return dir_ / "kubeconfig"; }
  std::filesystem::path kubeconfig_cert() const { return dir_ / "kubeconfig-cert"; }
  std::filesystem::path data_dir() const { return dir_ / "data"; }
  std::filesystem::path request_log() const { return dir_ / "requests.jsonl"; }
  std::filesystem::path server_log() const { return dir_ / "server.log"; }
  const TestCa& ca() const { return ca_; }
  bool running() const { return proc_ != nullptr; }

  // Starts the stand-in on port() (again after Stop: same data, same resourceVersions). With
  // forget_history it starts as a restarted API server's watch cache does: a watch from a
  // resourceVersion older than now gets 410 Gone.
  void Start(bool forget_history = false) {
    if (proc_) return;
    std::filesystem::remove(dir_ / "ready");
    auto argv = Argv();
    if (forget_history) argv.push_back("--compact-at-start");
    proc_ = std::make_unique<ChildProcess>();
    proc_->Start(argv, {}, server_log().string());
    WaitReady();
  }

  // SIGTERM (the process exits at once: open watches see their connection end), then SIGKILL.
  void Stop() {
    if (!proc_) return;
    proc_->Signal(SIGTERM);
    if (!proc_->Wait(std::chrono::seconds(5))) {
      proc_->Signal(SIGKILL);
      proc_->Wait(std::chrono::seconds(5));
    }
    proc_.reset();
  }
  void Restart(bool forget_history = false) {
    Stop();
    Start(forget_history);
  }

  // A new token for `user`; every token may do everything until Deny()/RevokeToken().
  std::string AddToken(const std::string& user) {
    const std::string t = RandomToken();
    tokens_["tokens"][t] = {{"user", user}};
    WriteTokens();
    return t;
  }
  // The next request with `token` gets 401 Unauthorized.
  void RevokeToken(const std::string& token) {
    tokens_["tokens"].erase(token);
    WriteTokens();
  }
  // Requests with `token` for these verbs on these resources ("plural" or "plural/status";
  // "*" for all) get 403 Forbidden. An empty api_group list means any group.
  void Deny(const std::string& token, const std::vector<std::string>& verbs,
            const std::vector<std::string>& resources,
            const std::vector<std::string>& api_groups = {}) {
    nlohmann::json rule = {{"verbs", verbs}, {"resources", resources}};
    if (!api_groups.empty()) rule["apiGroups"] = api_groups;
    tokens_["tokens"][token]["deny"].push_back(rule);
    WriteTokens();
  }
  void RevokeClientCert(const std::string& user = "lca-agent") {
    tokens_["revokedCertUsers"].push_back(user);
    WriteTokens();
  }

  // Drops the watch history up to the current resourceVersion (or `rv`): watches and lists
  // from an older one get 410 Gone. Returns the compacted revision.
  long Compact(long rv = 0) {
    const auto r = Control("POST", "/_standin/compact",
                           rv > 0 ? nlohmann::json{{"resourceVersion", rv}}.dump() : "{}");
    return r.Json().at("compacted").get<long>();
  }
  // The next `count` requests whose path starts with `path_prefix` (and whose method is
  // `method`, if given) get HTTP `code` with the API server's Status for it (429 with
  // Retry-After: 1, 500, 503, 504); code 0 drops the connection without an answer.
  void InjectFault(int code, int count, const std::string& path_prefix = "",
                   const std::string& method = "") {
    nlohmann::json f = {{"code", code}, {"count", count}, {"path", path_prefix}};
    if (!method.empty()) f["method"] = method;
    Control("POST", "/_standin/faults", f.dump());
  }
  // Ends every open watch (with a final BOOKMARK where bookmarks were asked for).
  void CloseWatches() { Control("POST", "/_standin/close-watches", "{}"); }
  long ResourceVersion() const {
    return Control("GET", "/_standin/state", "").Json().at("resourceVersion").get<long>();
  }

  std::vector<KubeRequest> Requests() const {
    std::vector<KubeRequest> out;
    std::ifstream in(request_log());
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;  // a line being written right now
      out.push_back({j.value("time", 0.0), j.value("method", ""), j.value("path", ""),
                     j.value("query", ""), j.value("user", ""), j.value("userAgent", ""),
                     j.value("code", 0), j.value("watch", false)});
    }
    return out;
  }

  // The log's requests at or after `since` (seconds since the epoch, as NowSeconds()), watches
  // left out unless asked for: the load a client puts on the server besides its watch.
  std::vector<KubeRequest> RequestsSince(double since, bool with_watches = false) const {
    std::vector<KubeRequest> out;
    for (auto& r : Requests()) {
      if (r.time >= since && (with_watches || !r.watch)) out.push_back(std::move(r));
    }
    return out;
  }
  static double NowSeconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // The real kubectl with kubeconfig() (or `kubeconfig`), its discovery cache in our dir.
  CmdResult Kubectl(std::vector<std::string> args, std::filesystem::path kubeconfig = {}) const {
    if (kubeconfig.empty()) kubeconfig = this->kubeconfig();
    args.insert(args.begin(), {"/usr/bin/kubectl", "--kubeconfig", kubeconfig.string(),
                               "--cache-dir", (dir_ / "home" / "cache").string()});
    return RunCmd(args, {{"HOME", (dir_ / "home").string()}});
  }
  // kubectl's client minor version (32 for 1.32); 0 if it cannot tell.
  int KubectlMinor() const {
    const CmdResult r =
        RunCmd({"/usr/bin/kubectl", "version", "--client", "-o", "json"}, KubectlEnv());
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("clientVersion")) return 0;
    return std::atoi(j["clientVersion"].value("minor", "0").c_str());
  }
  std::map<std::string, std::string> KubectlEnv() const {
    return {{"HOME", (dir_ / "home").string()}};
  }

  // One HTTPS request with the token (or `token`; "" for none) through curl.
  HttpResult Http(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::string& content_type = "application/json",
                  std::optional<std::string> token = std::nullopt, int max_seconds = 60) const {
    const std::string tok = token.value_or(token_);
    std::vector<std::string> argv = {"/usr/bin/curl",
                                     "-sS",
                                     "--cacert",
                                     ca_.ca().string(),
                                     "-X",
                                     method,
                                     "-o",
                                     "-",
                                     "-w",
                                     "\n%{http_code}",
                                     "--max-time",
                                     std::to_string(max_seconds)};
    if (!tok.empty()) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + tok});
    if (!body.empty()) {
      argv.insert(argv.end(), {"-H", "Content-Type: " + content_type, "--data-binary", "@-"});
    }
    argv.push_back(server() + path);
    const CmdResult r = RunCmd(argv, {}, body.empty() ? std::nullopt : std::optional(body));
    const auto nl = r.out.rfind('\n');
    HttpResult h;
    h.body = nl == std::string::npos ? "" : r.out.substr(0, nl);
    h.code = std::atoi(r.out.substr(nl == std::string::npos ? 0 : nl + 1).c_str());
    return h;
  }

 private:
  std::vector<std::string> Argv() const {
    std::vector<std::string> a = {"/usr/bin/python3",
                                  KubeApiserverDir().string(),
                                  "--port",
                                  std::to_string(port_),
                                  "--cert",
                                  server_cert_.cert.string(),
                                  "--key",
                                  server_cert_.key.string(),
                                  "--tokens",
                                  (dir_ / "tokens.json").string(),
                                  "--data-dir",
                                  data_dir().string(),
                                  "--request-log",
                                  request_log().string(),
                                  "--ready-file",
                                  (dir_ / "ready").string(),
                                  "--bookmark-interval",
                                  std::to_string(opts_.bookmark_interval_seconds),
                                  "--watch-timeout",
                                  std::to_string(opts_.watch_timeout_seconds)};
    if (opts_.client_certs) a.insert(a.end(), {"--client-ca", ca_.ca().string()});
    if (opts_.default_resources) {
      for (const char* f : {"core.json", "openshift.json", "lca.json"}) {
        a.insert(a.end(), {"--resources", (KubeApiserverDir() / "resources" / f).string()});
      }
    }
    for (const auto& f : opts_.extra_resources) a.insert(a.end(), {"--resources", f.string()});
    return a;
  }

  void WaitReady() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!ReadPort()) {
      if (const auto st = proc_->Wait(std::chrono::milliseconds(0)); st) {
        proc_.reset();
        throw std::runtime_error("kube stand-in exited at start: " + ReadLog());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("kube stand-in not ready in 30 s: " + ReadLog());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // The ready file holds the port once the server listens.
  bool ReadPort() {
    std::ifstream in(dir_ / "ready");
    int port = 0;
    if (!(in >> port) || port <= 0) return false;
    port_ = static_cast<uint16_t>(port);
    return true;
  }

  std::string ReadLog() const {
    std::ifstream in(server_log());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Atomic: the server re-reads the file whenever it changes.
  void WriteTokens() const {
    const auto tmp = dir_ / "tokens.json.tmp";
    {
      std::ofstream out(tmp);
      out << tokens_.dump();
    }
    ::chmod(tmp.c_str(), 0600);
    std::filesystem::rename(tmp, dir_ / "tokens.json");
  }

  void WriteKubeconfig(const std::filesystem::path& path, const std::string& token) const {
    std::ofstream out(path);
    out << "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n"
        << "    server: " << server() << "\n    certificate-authority: " << ca_.ca().string()
        << "\nusers:\n- name: standin-user\n  user:\n";
    if (!token.empty()) {
      out << "    token: " << token << "\n";
    } else {
      out << "    client-certificate: " << client_cert_.cert.string()
          << "\n    client-key: " << client_cert_.key.string() << "\n";
    }
    out << "contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin-user\n"
        << "current-context: standin\n";
    out.close();
    ::chmod(path.c_str(), 0600);
  }

  HttpResult Control(const std::string& method, const std::string& path,
                     const std::string& body) const {
    const HttpResult r = Http(method, path, body, "application/json", admin_token_);
    if (r.code != 200) {
      throw std::runtime_error("kube stand-in " + path + ": HTTP " + std::to_string(r.code) + " " +
                               r.body);
    }
    return r;
  }

  KubeStandinOptions opts_;
  TempDir dir_{"lca-kube"};
  TestCa ca_;
  uint16_t port_ = 0;  // 0 until the first start
  KeyPair server_cert_, client_cert_;
  std::string token_, admin_token_;
  nlohmann::json tokens_ = {{"tokens", nlohmann::json::object()}};
  std::unique_ptr<ChildProcess> proc_;
};

}  // namespace lca::test
