#pragma once
// Image manifests read straight from a registry over HTTP(S) (libcurl), for the space plan and
// for choosing the puller's shape. `skopeo inspect --raw` costs a process per image (40 of them
// took 1.8 s on 2 cores, 20 % of a whole loopback pre-cache); this reads them over a few
// kept-alive connections, and the time each request waits for its answer is the registry's round
// trip, which tells a near registry from a far one (precache/puller.hpp, AdaptToRegistry).
//
// Deliberately narrow: it only does what it can do exactly as containers/image would, and throws
// for everything else so the caller falls back to skopeo (always right, only slower):
//  * the image is fully qualified and registries.conf routes it to its own registry (no mirror,
//    no location rewrite, not blocked), because mirrors come with their own fallback rules;
//  * TLS is verified against the system CAs, unless registries.conf marks the registry insecure:
//    then https without verification, falling back to plain http, as containers/image does. A
//    certs.d directory for the host (its own CA, client certificates) is left to skopeo;
//  * credentials come only from the given auth file (`auths` entries with `auth`), or none;
//    identity tokens and credential helpers are left to skopeo;
//  * Basic and Bearer (token service) challenges;
//  * a manifest pinned by digest must hash to it; at most 4 MiB, as containers/image allows.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "precache/registries_conf.hpp"

namespace lca::precache {

// "host[:port]/path/name" plus a tag or digest. Only fully qualified references: the first
// component must look like a host (has '.' or ':' or is "localhost").
struct ImageRef {
  std::string registry;    // as written ("quay.io", "127.0.0.1:5000"); docker.io stays docker.io
  std::string repository;  // "ns/name" ("library/x" for a one-component docker.io name)
  std::string tag;         // empty when pinned by digest
  std::string digest;      // "sha256:…" or empty
  std::string Repo() const { return registry + "/" + repository; }  // for registries.conf
  std::string Reference() const { return digest.empty() ? tag : digest; }
};
// nullopt for a short name or anything this client does not read (transports, bad syntax).
// "repo:tag@digest" keeps the digest, as containers/image does.
std::optional<ImageRef> ParseImageRef(const std::string& image);

struct RegistryClientOptions {
  std::optional<std::filesystem::path> authfile;  // dockerconfigjson; none = anonymous
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  // Where containers/image looks for per-registry TLS material; a host with a directory here
  // is left to skopeo. Tests point these elsewhere.
  std::vector<std::filesystem::path> certs_dirs = {"/etc/containers/certs.d",
                                                   "/etc/docker/certs.d"};
};

class RegistryClient {
 public:
  // Throws kInvalid when the auth file cannot be read or parsed.
  RegistryClient(RegistriesConf conf, RegistryClientOptions opts);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // Whether this client may read `image` at all (see the header comment). Cheap, no I/O; false
  // also once the image's registry failed at the transport level (no reconnect storm).
  bool Handles(const std::string& image) const;

  // The raw manifest of `ref` (a tag or "sha256:…"). Throws lca::Error with the registry's
  // answer on any failure. Thread-safe: each call borrows one of the kept-alive connections.
  std::string GetManifest(const ImageRef& image, const std::string& ref);

  // The host the registry API of `registry` is served from (Docker Hub: registry-1.docker.io):
  // the keys of RoundTrips().
  static std::string ApiHost(const std::string& registry);

  // The fastest answer each registry host gave (connection ready → first byte), over every request
  // so far: the link's round trip plus the registry's quickest service time.
  std::map<std::string, std::chrono::microseconds> RoundTrips() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lca::precache
