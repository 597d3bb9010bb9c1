#include "precache/stale_tags.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

#include "formats/oci_layout.hpp"
#include "precache/registry_client.hpp"

namespace lca::precache {

namespace {

constexpr size_t kWindow = 10;

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

// Whether the registry's manifest digest for the tag `img` is none of the local image's. Never
// throws: an unreadable digest counts as stale.
bool IsStale(RegistryClient* client, const LocalImages& local, const std::string& img) {
  const auto ref = ParseImageRef(img);
  if (client == nullptr || !ref || !client->Handles(img)) return true;
  try {
    const std::string digest = DigestOf(client->GetManifest(*ref, ref->tag));
    const auto have = local.DigestsOf(img);
    if (std::find(have.begin(), have.end(), digest) != have.end()) return false;
    spdlog::info("precache: {} moved in the registry (now {}): pulling it again", img, digest);
  } catch (const std::exception& e) {
    spdlog::info("precache: {}: registry digest unknown ({}): pulling it again", img, e.what());
  }
  return true;
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
  // A few GETs at once on the kept-alive connections: the all-present re-run stays near one
  // round trip per `kWindow` tags.
  std::vector<char> moved(tagged.size(), 0);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < tagged.size(); i = next++) {
      moved[i] = IsStale(client.get(), local, tagged[i]) ? 1 : 0;
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(kWindow, tagged.size()); ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < tagged.size(); ++i) {
    if (moved[i] != 0) stale.insert(tagged[i]);
  }
  return stale;
}

}  // namespace lca::precache
