#include "agent/pivot/kubelet_certs.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;
namespace {

const char kPkiDir[] = "var/lib/kubelet/pki";

// The kubelet keeps *-current.pem as an absolute symlink (/var/lib/kubelet/pki/...-<date>.pem)
// that means the old stateroot's /var, not ours. Resolve `rel` under `root` component by
// component, as openat2(RESOLVE_IN_ROOT) would: absolute targets restart at root and ".." stops
// there, so the result is always inside root. A missing component ends resolution (the read
// then fails and the file is skipped).
fs::path ResolveInRoot(const fs::path& root, const fs::path& rel) {
  std::vector<std::string> todo;  // components still to walk, next one last
  auto push = [&todo](const fs::path& p) {
    std::vector<std::string> parts;
    for (const auto& c : p.relative_path()) parts.push_back(c.string());
    todo.insert(todo.end(), parts.rbegin(), parts.rend());
  };
  push(rel);
  fs::path cur;  // resolved so far, relative to root
  int links = 0;
  while (!todo.empty()) {
    const std::string c = todo.back();
    todo.pop_back();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      cur = cur.parent_path();
      continue;
    }
    const fs::path next = cur / c;
    struct stat st {};
    if (::lstat((root / next).c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) {
      cur = next;
      continue;
    }
    if (++links > 40) throw Error(Errc::kInvalid, "too many levels of symbolic links");
    std::error_code ec;
    const fs::path target = fs::read_symlink(root / next, ec);
    if (ec) throw Error(Errc::kIo, "reading link " + (root / next).string() + ": " + ec.message());
    if (target.is_absolute()) cur.clear();
    push(target);
  }
  return root / cur;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

TimePoint NotAfter(const X509* cert) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
    throw Error(Errc::kInvalid, "certificate has an unreadable notAfter");
  }
  return TimePoint(std::chrono::seconds(::timegm(&tm)));
}

// notAfter of every certificate in a PEM text; other PEM blocks (the key) are passed over.
std::vector<TimePoint> CertificateExpirations(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw Error(Errc::kInternal, "BIO_new_mem_buf failed");
  std::vector<TimePoint> out;
  for (;;) {
    std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    out.push_back(NotAfter(cert.get()));
  }
  // End of input shows up as an error on OpenSSL's queue; it must not leak into later calls.
  ERR_clear_error();
  return out;
}

}  // namespace

std::optional<TimePoint> RollbackAvailabilityExpiration(const fs::path& old_stateroot_root) {
  // A host that never ran a kubelet (the test bed, a plain ostree host) has nothing to expire.
  std::error_code ec;
  if (!fs::exists(ResolveInRoot(old_stateroot_root, kPkiDir), ec)) {
    spdlog::info("rollbackAvailabilityExpiration: left unset, {} has no {} (no kubelet)",
                 old_stateroot_root.string(), kPkiDir);
    return std::nullopt;
  }
  static const char* const kFiles[] = {"var/lib/kubelet/pki/kubelet-client-current.pem",
                                       "var/lib/kubelet/pki/kubelet-server-current.pem"};
  std::optional<TimePoint> earliest;
  std::vector<std::string> skipped;
  for (const char* rel : kFiles) {
    const fs::path shown = old_stateroot_root / rel;
    try {
      const fs::path file = ResolveInRoot(old_stateroot_root, rel);
      const std::string where =
          file == shown ? shown.string() : shown.string() + " -> " + file.string();
      const auto pem = ReadFileIfExists(file);
      if (!pem) {
        skipped.push_back(where + ": no such file");
        continue;
      }
      const auto times = CertificateExpirations(*pem);
      if (times.empty()) {
        skipped.push_back(where + ": no certificate in it");
        continue;
      }
      for (TimePoint t : times) {
        if (!earliest || t < *earliest) earliest = t;
      }
    } catch (const Error& e) {
      skipped.push_back(shown.string() + ": " + e.what());
    }
  }
  if (!earliest) {
    std::string msg = "no kubelet certificate could be read from the old stateroot";
    for (const auto& s : skipped) msg += "; " + s;
    throw Error(Errc::kNotFound, msg);
  }
  return *earliest - kRollbackExpirationMargin;
}

}  // namespace lca::pivot
