#pragma once
// Builds small OCI images in memory and pushes them straight to a test registry over its HTTP
// API (monolithic blob upload + manifest PUT, libcurl): dozens of images in well under a second,
// where a skopeo copy per image would cost a process each. Tests and benchmarks only.
//
// Layers are uncompressed tars (media type ...layer.v1.tar): their digest is their diff_id, so
// no gzip pass is needed, and podman stores them like any other layer.
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "formats/oci_layout.hpp"

namespace lca::test {

// An uncompressed tar of (path, content) files, deterministic (fixed owner and mtime).
inline std::string TarOf(const std::vector<std::pair<std::string, std::string>>& files) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  std::string out;
  size_t used = 0;
  // archive_write_open_memory needs a fixed buffer: size it for the content plus headers.
  size_t need = 10240;
  for (const auto& f : files) need += f.second.size() + 1536 + f.first.size();
  out.resize(need);
  if (archive_write_open_memory(a, out.data(), out.size(), &used) != ARCHIVE_OK) {
    archive_write_free(a);
    throw Error(Errc::kInternal, "archive_write_open_memory failed");
  }
  for (const auto& [name, data] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e, 1700000000, 0);
    if (archive_write_header(a, e) != ARCHIVE_OK) {
      archive_entry_free(e);
      archive_write_free(a);
      throw Error(Errc::kInternal, "tar header " + name);
    }
    archive_entry_free(e);
    if (!data.empty()) archive_write_data(a, data.data(), data.size());
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

// `n` bytes that do not compress (so sizes on the wire are real).
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

inline std::string Sha256Of(const std::string& data) {
  stateroot::Sha256 h;
  h.Update(data);
  return h.Digest();
}

struct PushedImage {
  std::string ref;     // "<address>/<repo>:<tag>"
  std::string pinned;  // "<address>/<repo>@sha256:..."
  std::string digest;  // manifest digest
  uint64_t bytes = 0;  // config + layers, as pushed
};

class ImagePusher {
 public:
  // `user`/`password` for a registry with htpasswd auth (basic auth is accepted directly).
  explicit ImagePusher(std::string address,
                       std::optional<std::pair<std::string, std::string>> creds = std::nullopt)
      : address_(std::move(address)), creds_(std::move(creds)) {
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw Error(Errc::kInternal, "curl_easy_init failed");
  }
  ~ImagePusher() { curl_easy_cleanup(curl_); }
  ImagePusher(const ImagePusher&) = delete;
  ImagePusher& operator=(const ImagePusher&) = delete;

  // Pushes an image whose layers are the given tars (base first) with `labels`.
  PushedImage Push(const std::string& repo, const std::string& tag,
                   const std::vector<std::string>& layers,
                   const std::map<std::string, std::string>& labels = {}) {
    Json diff_ids = Json::array();
    Json layer_descs = Json::array();
    uint64_t bytes = 0;
    for (const auto& l : layers) {
      const std::string d = PushBlob(repo, l);
      diff_ids.push_back(d);
      layer_descs.push_back({{"mediaType", std::string(stateroot::kOciLayerTarMediaType)},
                             {"digest", d},
                             {"size", l.size()}});
      bytes += l.size();
    }
    Json config = {{"architecture", stateroot::HostOciArchitecture()},
                   {"os", "linux"},
                   {"created", "2024-01-01T00:00:00Z"},
                   {"config", {{"Labels", labels}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    const std::string config_text = config.dump();
    const std::string config_digest = PushBlob(repo, config_text);
    bytes += config_text.size();
    Json manifest = {{"schemaVersion", 2},
                     {"mediaType", std::string(stateroot::kOciManifestMediaType)},
                     {"config",
                      {{"mediaType", std::string(stateroot::kOciConfigMediaType)},
                       {"digest", config_digest},
                       {"size", config_text.size()}}},
                     {"layers", layer_descs}};
    const std::string manifest_text = manifest.dump();
    Request("PUT", "/v2/" + repo + "/manifests/" + tag, manifest_text,
            std::string(stateroot::kOciManifestMediaType), 201);
    const std::string digest = Sha256Of(manifest_text);
    return PushedImage{address_ + "/" + repo + ":" + tag, address_ + "/" + repo + "@" + digest,
                       digest, bytes};
  }

  // Uploads a blob unless the registry has it; returns its digest.
  std::string PushBlob(const std::string& repo, const std::string& data) {
    const std::string digest = Sha256Of(data);
    const std::string key = repo + "@" + digest;
    if (pushed_.count(key) > 0) return digest;
    if (Request("HEAD", "/v2/" + repo + "/blobs/" + digest, "", "", 0) != 200) {
      // distribution's registry has no one-request upload: open a session, PUT the bytes.
      Request("POST", "/v2/" + repo + "/blobs/uploads/", "", "", 202);
      std::string loc = location_;
      if (loc.rfind("http", 0) == 0) loc = loc.substr(loc.find('/', loc.find("//") + 2));
      loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
      Request("PUT", loc, data, "application/octet-stream", 201);
    }
    pushed_.insert(key);
    return digest;
  }

 private:
  static size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }
  static size_t Header(char* data, size_t size, size_t n, void* self) {
    std::string line(data, size * n);
    if (line.size() > 9 && (line.rfind("Location:", 0) == 0 || line.rfind("location:", 0) == 0)) {
      std::string v = line.substr(9);
      while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
      static_cast<ImagePusher*>(self)->location_ = v;
    }
    return size * n;
  }

  // Returns the HTTP status; throws when `want` != 0 and it differs.
  long Request(const std::string& method, const std::string& path, const std::string& body,
               const std::string& content_type, long want) {
    curl_easy_reset(curl_);
    const std::string url = "http://" + address_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &ImagePusher::Discard);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &ImagePusher::Header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 120L);
    if (creds_) {
      curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(curl_, CURLOPT_USERNAME, creds_->first.c_str());
      curl_easy_setopt(curl_, CURLOPT_PASSWORD, creds_->second.c_str());
    }
    curl_slist* headers = nullptr;
    if (!content_type.empty()) {
      headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    }
    if (method == "HEAD") {
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    const CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      throw Error(Errc::kUnavailable, method + " " + url + ": " + curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (want != 0 && status != want) {
      throw Error(Errc::kProcess, method + " " + url + ": HTTP " + std::to_string(status) +
                                      ", want " + std::to_string(want));
    }
    return status;
  }

  std::string address_;
  std::optional<std::pair<std::string, std::string>> creds_;
  CURL* curl_ = nullptr;
  std::set<std::string> pushed_;
  std::string location_;  // of the last response
};

}  // namespace lca::test
