#pragma once
// Stale tags: an image referenced by TAG that local storage already holds may be an older image
// than the one the tag names now (the tag moved after the pull). Such an image is skipped only
// when its local digest equals the registry's, read with one manifest GET in-process
// (registry_client.hpp). An image pinned by digest cannot be stale and costs nothing; the
// "everything present" path of a digest-pinned OpenShift list stays a single local listing.
#include <set>
#include <string>
#include <vector>

#include "precache/podman.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::precache {

// The tag references among `images` that `local` holds but whose registry manifest digest is
// none of the local image's digests. A reference the in-process client does not read (short
// names, mirrored or certificate-configured registries) or whose manifest cannot be read counts
// as stale: `podman pull` then decides, as it would without the check.
std::set<std::string> FindStaleTags(const LocalImages& local,
                                    const std::vector<std::string>& images,
                                    const stateroot::RegistryAccess& access);

}  // namespace lca::precache
