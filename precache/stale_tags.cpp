#include "precache/stale_tags.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "precache/registry_client.hpp"
#include "stateroot/oci_layout.hpp"

namespace lca::precache {

namespace {

std::string DigestOf(const std::string& manifest) {
  stateroot::Sha256 h;
  h.Update(manifest);
  return h.Digest();
}

std::unique_ptr<RegistryClient> Client(const stateroot::RegistryAccess& access) {
  try {
    RegistryClientOptions o;
    o.authfile = access.authfile;
    o.request_timeout = std::min<std::chrono::milliseconds>(access.timeout, o.request_timeout);
    return std::make_unique<RegistryClient>(LoadRegistriesConf(access.registries_conf), o);
  } catch (const std::exception& e) {
    spdlog::info("precache: tags present locally are pulled again (no registry client: {})",
                 e.what());
    return nullptr;
  }
}

}  // namespace

std::set<std::string> FindStaleTags(const LocalImages& local,
                                    const std::vector<std::string>& images,
                                    const stateroot::RegistryAccess& access) {
  std::set<std::string> stale;
  std::vector<std::string> tagged;
  for (const auto& img : images) {
    if (img.find('@') == std::string::npos && local.Contains(img)) tagged.push_back(img);
  }
  if (tagged.empty()) return stale;
  const auto client = Client(access);
  for (const auto& img : tagged) {
    const auto ref = ParseImageRef(img);
    if (!client || !ref || !client->Handles(img)) {
      stale.insert(img);
      continue;
    }
    try {
      const std::string digest = DigestOf(client->GetManifest(*ref, ref->tag));
      const auto have = local.DigestsOf(img);
      if (std::find(have.begin(), have.end(), digest) == have.end()) {
        spdlog::info("precache: {} moved in the registry (now {}): pulling it again", img, digest);
        stale.insert(img);
      }
    } catch (const std::exception& e) {
      spdlog::info("precache: {}: registry digest unknown ({}): pulling it again", img, e.what());
      stale.insert(img);
    }
  }
  return stale;
}

}  // namespace lca::precache
