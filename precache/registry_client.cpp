#include "precache/registry_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "formats/oci_layout.hpp"

namespace lca::precache {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxManifestBytes = 4 << 20;  // containers/image's limit for a manifest
constexpr const char* kAccept =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

void GlobalInit() {  // curl_global_init is not thread-safe and must come first
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    throw Error(Errc::kInternal, std::string("curl_global_init: ") + curl_easy_strerror(rc));
  }
}

// containers/image's rule for the first component of a name: a host when it has a '.' or a
// ':' or is "localhost". Here it must also BE a host[:port] (no IPv6 literals: skopeo's).
bool LooksLikeHost(const std::string& s) {
  if (s.find('.') == std::string::npos && s.find(':') == std::string::npos && s != "localhost") {
    return false;
  }
  const auto colon = s.find(':');
  const std::string host = s.substr(0, colon);
  if (host.empty() ||
      host.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos) {
    return false;
  }
  if (colon == std::string::npos) return true;
  const std::string port = s.substr(colon + 1);
  return !port.empty() && port.size() <= 5 &&
         port.find_first_not_of("0123456789") == std::string::npos;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// An auth file key as containers/image normalizes legacy entries: no scheme, host only,
// index.docker.io is docker.io.
std::string NormalizeAuthKey(std::string key) {
  for (const char* scheme : {"http://", "https://"}) {
    if (key.rfind(scheme, 0) == 0) {
      key = key.substr(std::string(scheme).size());
      key = key.substr(0, key.find('/'));
      break;
    }
  }
  return key == "index.docker.io" ? "docker.io" : key;
}

struct Credentials {
  std::string user, password;
};

// The credentials the auth file gives `image`, as containers/image looks them up: the most
// specific of host/ns/repo … host first, then legacy keys with a scheme. Throws for what only
// skopeo can use (credential helpers, identity tokens).
std::optional<Credentials> FindCredentials(const Json& file, const ImageRef& image) {
  if (file.contains("credHelpers") && file["credHelpers"].is_object() &&
      file["credHelpers"].contains(image.registry)) {
    throw Error(Errc::kInvalid, "the auth file names a credential helper for " + image.registry);
  }
  if (!file.contains("auths") || !file["auths"].is_object()) return std::nullopt;
  const Json& auths = file["auths"];
  auto decode = [&](const Json& entry) -> std::optional<Credentials> {
    if (!entry.is_object()) return std::nullopt;
    if (!entry.value("identitytoken", std::string()).empty()) {
      throw Error(Errc::kInvalid, "the auth file has an identity token for " + image.registry);
    }
    const std::string auth = entry.value("auth", std::string());
    if (auth.empty()) return std::nullopt;
    const std::string plain = Base64Decode(auth);
    const auto colon = plain.find(':');
    if (colon == std::string::npos) {
      throw Error(Errc::kInvalid, "the auth file's entry for " + image.registry +
                                      " is not base64 of user:password");
    }
    return Credentials{plain.substr(0, colon), plain.substr(colon + 1)};
  };
  // host/ns/repo, host/ns, host
  std::string key = image.Repo();
  while (true) {
    if (auths.contains(key)) return decode(auths[key]);
    const auto slash = key.rfind('/');
    if (slash == std::string::npos) break;
    key = key.substr(0, slash);
  }
  for (const auto& [k, v] : auths.items()) {
    if (k.find("://") != std::string::npos && NormalizeAuthKey(k) == image.registry) {
      return decode(v);
    }
  }
  return std::nullopt;
}

// One WWW-Authenticate challenge: scheme and its parameters (RFC 7235 auth-params).
struct Challenge {
  std::string scheme;  // lower case
  std::map<std::string, std::string> params;
};

Challenge ParseChallenge(const std::string& header) {
  Challenge c;
  size_t i = 0;
  while (i < header.size() && header[i] != ' ') ++i;
  c.scheme = Lower(header.substr(0, i));
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    const std::string key = Lower(header.substr(i, eq - i));
    i = eq + 1;
    std::string value;
    if (i < header.size() && header[i] == '"') {
      for (++i; i < header.size() && header[i] != '"'; ++i) {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value.push_back(header[i]);
      }
      ++i;
    } else {
      while (i < header.size() && header[i] != ',') value.push_back(header[i++]);
    }
    c.params[key] = value;
  }
  return c;
}

struct Response {
  long status = 0;
  std::string body;
  std::vector<std::string> authenticate;  // WWW-Authenticate headers
  std::chrono::microseconds wait{0};      // connection ready → first byte
  bool too_big = false;
};

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  if (r->body.size() + size * n > kMaxManifestBytes) {
    r->too_big = true;
    return 0;  // stops the transfer
  }
  r->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) r->authenticate.clear();  // a new response's headers
  const auto colon = line.find(':');
  if (colon != std::string::npos && Lower(line.substr(0, colon)) == "www-authenticate") {
    std::string v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    r->authenticate.push_back(v);
  }
  return size * n;
}

std::string UrlEncode(CURL* h, const std::string& s) {
  char* e = curl_easy_escape(h, s.c_str(), static_cast<int>(s.size()));
  if (e == nullptr) throw Error(Errc::kInternal, "curl_easy_escape failed");
  std::string out(e);
  curl_free(e);
  return out;
}

}  // namespace

std::string RegistryClient::ApiHost(const std::string& registry) {
  return registry == "docker.io" ? "registry-1.docker.io" : registry;
}

std::optional<ImageRef> ParseImageRef(const std::string& image) {
  if (image.empty() || image.find("://") != std::string::npos ||
      image.find_first_of(" \t\r\n") != std::string::npos) {
    return std::nullopt;
  }
  ImageRef r;
  std::string name = image;
  if (const auto at = name.find('@'); at != std::string::npos) {
    r.digest = name.substr(at + 1);
    name = name.substr(0, at);
    if (r.digest.size() != 71 || r.digest.rfind("sha256:", 0) != 0 ||
        r.digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
      return std::nullopt;
    }
  }
  const auto slash = name.find('/');
  if (slash == std::string::npos || !LooksLikeHost(name.substr(0, slash))) return std::nullopt;
  r.registry = name.substr(0, slash);
  std::string path = name.substr(slash + 1);
  const auto colon = path.rfind(':');
  if (colon != std::string::npos && path.find('/', colon) == std::string::npos) {
    if (r.digest.empty()) r.tag = path.substr(colon + 1);
    path = path.substr(0, colon);
  }
  if (r.digest.empty() && r.tag.empty()) r.tag = "latest";
  if (path.empty() || path.front() == '/' || path.back() == '/' ||
      path.find("//") != std::string::npos || path != Lower(path) ||
      r.registry != Lower(r.registry)) {
    return std::nullopt;  // repository names are lower case; anything odd is skopeo's to judge
  }
  if (r.registry == "docker.io" && path.find('/') == std::string::npos) path = "library/" + path;
  r.repository = path;
  return r;
}

struct RegistryClient::Impl {
  RegistriesConf conf;
  RegistryClientOptions opts;
  std::optional<Json> auth_file;

  mutable std::mutex mu;
  std::vector<Easy> idle;                                // kept-alive connections
  std::map<std::string, std::string> scheme;             // host -> "https" / "http"
  std::map<std::string, std::string> tokens;             // host/repo -> "Bearer …" / "Basic …"
  std::map<std::string, std::chrono::microseconds> rtt;  // host -> fastest answer
  std::set<std::string> broken;                          // hosts that failed to answer

  Easy Borrow() {
    std::lock_guard lock(mu);
    if (!idle.empty()) {
      Easy h = std::move(idle.back());
      idle.pop_back();
      return h;
    }
    Easy h(curl_easy_init());
    if (!h) throw Error(Errc::kInternal, "curl_easy_init failed");
    return h;
  }
  void Return(Easy h) {
    std::lock_guard lock(mu);
    idle.push_back(std::move(h));
  }

  const RegistryEntry* Route(const ImageRef& r) const { return FindRegistry(conf, r.Repo()); }

  bool Insecure(const ImageRef& r) const {
    const RegistryEntry* e = Route(r);
    return e != nullptr && e->insecure;
  }

  // One GET; transport failures throw kUnavailable. `verify` off only for insecure registries.
  Response Get(const std::string& url, const std::vector<std::string>& headers, bool verify,
               const std::string& host) {
    Easy h = Borrow();
    CURL* c = h.get();
    curl_easy_reset(c);  // keeps the live connections
    Response r;
    std::unique_ptr<curl_slist, SlistDeleter> list;
    for (const auto& hd : headers) {
      curl_slist* l = curl_slist_append(list.get(), hd.c_str());
      if (l == nullptr) throw Error(Errc::kInternal, "curl_slist_append failed");
      list.release();
      list.reset(l);
    }
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    // Redirects: registries send blob and token requests elsewhere; manifests rarely, but
    // following them is what containers/image does. Never to another protocol.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.request_timeout.count()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lifecycle-agent");
    if (!verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && r.too_big)) {
      Return(std::move(h));
      throw Error(Errc::kUnavailable, "GET " + url + ": " + curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    // From the connection being ready (0 on a reused one) to the answer's first byte: the link's
    // round trip plus the registry's service time, without DNS, TCP or TLS set-up.
    curl_off_t connected = 0, tls = 0, first = 0;
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
    curl_easy_getinfo(c, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &first);
    r.wait = std::chrono::microseconds(std::max<curl_off_t>(first - std::max(connected, tls), 0));
    Return(std::move(h));
    if (r.too_big) {
      throw Error(Errc::kInvalid,
                  "GET " + url + ": larger than " + std::to_string(kMaxManifestBytes) + " bytes");
    }
    {
      std::lock_guard lock(mu);
      auto [it, inserted] = rtt.emplace(host, r.wait);
      if (!inserted) it->second = std::min(it->second, r.wait);
    }
    return r;
  }

  // GET on the registry itself, finding the scheme the first time: https, and for an insecure
  // registry plain http when https fails (containers/image's order).
  Response RegistryGet(const ImageRef& image, const std::string& path,
                       const std::vector<std::string>& headers) {
    const std::string host = ApiHost(image.registry);
    const bool insecure = Insecure(image);
    std::string known;
    {
      std::lock_guard lock(mu);
      if (auto it = scheme.find(host); it != scheme.end()) known = it->second;
    }
    auto attempt = [&](const std::string& s) {
      return Get(s + "://" + host + path, headers, !insecure, host);
    };
    if (!known.empty()) return attempt(known);
    try {
      Response r = attempt("https");
      std::lock_guard lock(mu);
      scheme[host] = "https";
      return r;
    } catch (const Error&) {
      if (!insecure) throw;
    }
    Response r = attempt("http");
    std::lock_guard lock(mu);
    scheme[host] = "http";
    return r;
  }

  std::optional<Credentials> CredentialsFor(const ImageRef& image) const {
    if (!auth_file) return std::nullopt;
    return FindCredentials(*auth_file, image);
  }

  // The Authorization header a 401's challenge asks for.
  std::string Authorize(const ImageRef& image, const std::vector<std::string>& challenges) {
    std::optional<Challenge> bearer, basic;
    for (const auto& h : challenges) {
      Challenge c = ParseChallenge(h);
      if (c.scheme == "bearer") bearer = c;
      if (c.scheme == "basic") basic = c;
    }
    const auto creds = CredentialsFor(image);
    if (bearer) {
      const std::string realm = bearer->params["realm"];
      if (realm.rfind("https://", 0) != 0 && realm.rfind("http://", 0) != 0) {
        throw Error(Errc::kInvalid, "token service realm \"" + realm + "\" is not http(s)");
      }
      Easy tmp(curl_easy_init());
      std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
      if (!bearer->params["service"].empty()) {
        url += "service=" + UrlEncode(tmp.get(), bearer->params["service"]) + "&";
      }
      url += "scope=" + UrlEncode(tmp.get(), "repository:" + image.repository + ":pull");
      std::vector<std::string> headers;
      if (creds)
        headers.push_back("Authorization: Basic " +
                          Base64Encode(creds->user + ":" + creds->password));
      const Response r = Get(url, headers, !Insecure(image), "token:" + ApiHost(image.registry));
      if (r.status != 200) {
        throw Error(Errc::kForbidden,
                    "token service " + realm + " answered " + std::to_string(r.status));
      }
      const Json j = ParseJson(r.body, "token from " + realm);
      std::string token = j.value("token", std::string());
      if (token.empty()) token = j.value("access_token", std::string());
      if (token.empty()) throw Error(Errc::kInvalid, "token service " + realm + " sent no token");
      return "Bearer " + token;
    }
    if (basic && creds) return "Basic " + Base64Encode(creds->user + ":" + creds->password);
    throw Error(Errc::kForbidden, image.registry + " asks for credentials the auth file lacks");
  }
};

RegistryClient::RegistryClient(RegistriesConf conf, RegistryClientOptions opts)
    : impl_(std::make_unique<Impl>()) {
  GlobalInit();
  impl_->conf = std::move(conf);
  impl_->opts = std::move(opts);
  if (impl_->opts.authfile) {
    const std::string text = ReadFile(*impl_->opts.authfile);
    impl_->auth_file = ParseJson(text, impl_->opts.authfile->string());
  }
}

RegistryClient::~RegistryClient() = default;

bool RegistryClient::Handles(const std::string& image) const {
  const auto ref = ParseImageRef(image);
  if (!ref) return false;
  const RegistryEntry* e = impl_->Route(*ref);
  if (e != nullptr && !e->Direct()) return false;
  std::error_code ec;
  for (const auto& dir : impl_->opts.certs_dirs) {
    if (fs::exists(dir / ref->registry, ec)) return false;
  }
  std::lock_guard lock(impl_->mu);
  return impl_->broken.count(ApiHost(ref->registry)) == 0;
}

std::string RegistryClient::GetManifest(const ImageRef& image, const std::string& ref) {
  const std::string host = ApiHost(image.registry);
  const std::string path = "/v2/" + image.repository + "/manifests/" + ref;
  const std::string what = image.Repo() + (ref.rfind("sha256:", 0) == 0 ? "@" : ":") + ref;
  std::string auth_key = host + "/" + image.repository;
  std::string authorization;
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->tokens.find(auth_key); it != impl_->tokens.end()) {
      authorization = it->second;
    }
  }
  Response r;
  try {
    for (int round = 0; round < 2; ++round) {
      std::vector<std::string> headers = {kAccept};
      if (!authorization.empty()) headers.push_back("Authorization: " + authorization);
      r = impl_->RegistryGet(image, path, headers);
      if (r.status != 401 || round == 1) break;
      authorization = impl_->Authorize(image, r.authenticate);
      std::lock_guard lock(impl_->mu);
      impl_->tokens[auth_key] = authorization;
    }
  } catch (const Error& e) {
    if (e.code() == Errc::kUnavailable) {
      std::lock_guard lock(impl_->mu);
      impl_->broken.insert(host);
    }
    throw Error(e.code(), "reading the manifest of " + what + ": " + e.what());
  }
  if (r.status != 200) {
    std::string body = r.body.substr(0, 300);
    throw Error(
        r.status == 404 ? Errc::kNotFound : Errc::kUnavailable,
        "reading the manifest of " + what + ": HTTP " + std::to_string(r.status) + ": " + body);
  }
  if (ref.rfind("sha256:", 0) == 0) {
    stateroot::Sha256 sha;
    sha.Update(r.body);
    const std::string got = sha.Digest();
    if (got != ref) {
      throw Error(Errc::kInvalid,
                  "the manifest of " + what + " does not match its digest (got " + got + ")");
    }
  }
  return r.body;
}

std::map<std::string, std::chrono::microseconds> RegistryClient::RoundTrips() const {
  std::lock_guard lock(impl_->mu);
  std::map<std::string, std::chrono::microseconds> out;
  for (const auto& [host, t] : impl_->rtt) {
    if (host.rfind("token:", 0) != 0) out.emplace(host, t);
  }
  return out;
}

}  // namespace lca::precache
