#pragma once
// Space planning before pulling (the reference has none; TALM compares a fixed spaceRequired
// with df): the bytes the pulls will still need, from the registry's manifests, against the
// room left below the kubelet image-GC high threshold on the containers filesystem.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/process.hpp"
#include "precache/puller.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::precache {

// Compressed layer sizes of one image, from `skopeo inspect --raw` (a manifest list is resolved
// to linux/<this machine's architecture> with one more inspect).
struct ImageLayers {
  std::string image;
  std::vector<std::string> digests;
  std::vector<uint64_t> sizes;
  uint64_t config_bytes = 0;
  uint64_t Bytes() const;
};

// Parses an image manifest (OCI or Docker schema 2). For a manifest list / OCI index returns
// the digest of the entry for linux/`arch` in `platform_digest` and no layers.
ImageLayers ParseManifest(const std::string& image, const std::string& manifest_json,
                          const std::string& arch, std::string* platform_digest);

// skopeo inspect --raw (argv only), with the access settings the seed uses.
ImageLayers InspectImageLayers(ProcessRunner& runner, const std::string& image,
                               const stateroot::RegistryAccess& access);

// What InspectAll found: one ImageLayers per image (same order), and how the registries answered.
struct Inspection {
  std::vector<ImageLayers> layers;
  // An image that could not be inspected has no layers here and its error in `errors` (the pull
  // will report it).
  std::vector<std::string> errors;
  // The fastest answer of each registry host read in-process (precache/registry_client.hpp).
  std::map<std::string, std::chrono::microseconds> round_trips;
  size_t in_process = 0;  // images read in-process
  size_t by_skopeo = 0;   // images read by `skopeo inspect` (not for the client, or it failed)
  // Every image's registry answered the client at least once (a 404 counts: it was timed).
  bool every_registry_timed = false;
  // The slowest registry's round trip when every registry was timed; nullopt otherwise: an
  // unmeasured registry may be far.
  std::optional<std::chrono::microseconds> SlowestRoundTrip() const;
};

// Reads the manifests of `images`, `window` at a time: in-process where the registry client
// handles the image (`in_process`), else, or when that fails, with `skopeo inspect --raw`.
Inspection InspectAll(ProcessRunner& runner, const std::vector<std::string>& images,
                      const stateroot::RegistryAccess& access, size_t window,
                      bool in_process = true);

// Compressed digests of the layers containers-storage already holds under `root`, read from
// <root>/<driver>-layers/layers.json. An unreadable store gives an empty set (the plan then
// over-estimates, which is the safe side).
std::set<std::string> LocalLayerDigests(const std::filesystem::path& root);

struct FsUsage {
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;       // size - free, as df counts it
  uint64_t available_bytes = 0;  // what an unprivileged writer may still use (f_bavail)
};
// statfs of `path`, or of its nearest existing parent (the storage root may not exist yet).
FsUsage StatFs(const std::filesystem::path& path);

struct SpacePlan {
  uint64_t images = 0;          // images that still need pulling
  uint64_t download_bytes = 0;  // their compressed layers not present locally, each counted once
  double expansion = 2.0;
  uint64_t needed_bytes = 0;  // download_bytes x expansion, or the floor when larger
  uint64_t floor_bytes = 0;   // spaceRequired, when given
  int high_threshold_percent = 85;
  FsUsage fs;
  // high% x size - used (0 when already above): what pulls may use before image GC would start
  // deleting images (which would undo the pre-cache).
  uint64_t available_bytes = 0;
  std::filesystem::path where;

  bool fits() const { return needed_bytes <= available_bytes; }
  // "need 1.2 GiB (N images, 512 MiB to download x 2.5) but only 300 MiB is available below
  //  the 85% image GC threshold on <where> (size 10 GiB, used 8.2 GiB)"
  std::string Describe() const;
};

// The room below the high threshold: high% x size - used, clamped at 0. A threshold outside
// 1..99 is replaced by 85, as TALM does with the kubelet's value.
uint64_t AvailableBelowThreshold(const FsUsage& fs, int high_threshold_percent);

SpacePlan PlanSpace(const std::vector<ImageLayers>& missing, const std::set<std::string>& local,
                    double expansion, uint64_t floor_bytes, int high_threshold_percent,
                    const FsUsage& fs, const std::filesystem::path& where);

// Throws kInvalid "not enough space for precaching: <Describe()>" when the plan does not fit.
void RequireSpace(const SpacePlan& plan);

// PullItems for the puller, with the layers from `layers` (matched by image).
std::vector<PullItem> ToPullItems(const std::vector<std::string>& images,
                                  const std::vector<ImageLayers>& layers);

// "1.5 GiB"
std::string Bytes(uint64_t n);

}  // namespace lca::precache
