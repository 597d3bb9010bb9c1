#include "recovery/xattrs.hpp"

#include <spdlog/spdlog.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/error.hpp"

namespace lca::recovery {
namespace {

bool Unsupported(int err) { return err == ENOTSUP || err == ENOSYS; }

// Refusals that depend on the filesystem or the security module, not on us.
bool Refused(int err) { return err == ENOTSUP || err == EPERM || err == EACCES || err == EINVAL; }

}  // namespace

Xattrs ReadXattrs(const std::filesystem::path& path) {
  Xattrs out;
  std::vector<char> names;
  for (;;) {
    const ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (Unsupported(errno)) return out;
      throw SystemError("listing xattrs of " + path.string(), errno);
    }
    if (n == 0) return out;
    names.resize(static_cast<std::size_t>(n));
    const ssize_t got = ::llistxattr(path.c_str(), names.data(), names.size());
    if (got >= 0) {
      names.resize(static_cast<std::size_t>(got));
      break;
    }
    if (errno != ERANGE) throw SystemError("listing xattrs of " + path.string(), errno);
  }
  for (std::size_t i = 0; i < names.size();) {
    const std::string name(names.data() + i);
    i += name.size() + 1;
    if (name.empty()) continue;
    std::string value;
    for (;;) {
      const ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (n < 0) {
        if (errno == ENODATA) break;  // removed in between
        throw SystemError("reading xattr " + name + " of " + path.string(), errno);
      }
      value.resize(static_cast<std::size_t>(n));
      const ssize_t got = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (got >= 0) {
        value.resize(static_cast<std::size_t>(got));
        out[name] = value;
        break;
      }
      if (errno != ERANGE)
        throw SystemError("reading xattr " + name + " of " + path.string(), errno);
    }
  }
  return out;
}

int WriteXattrs(const std::filesystem::path& path, const Xattrs& want) {
  int refused = 0;
  const Xattrs have = ReadXattrs(path);
  for (const auto& [name, value] : have) {
    if (want.count(name) != 0) continue;
    if (::lremovexattr(path.c_str(), name.c_str()) != 0 && errno != ENODATA) {
      if (!Refused(errno))
        throw SystemError("removing xattr " + name + " of " + path.string(), errno);
      spdlog::warn("{}: cannot remove xattr {}: {}", path.string(), name, std::strerror(errno));
      ++refused;
    }
  }
  for (const auto& [name, value] : want) {
    auto it = have.find(name);
    if (it != have.end() && it->second == value) continue;
    if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
      if (!Refused(errno))
        throw SystemError("setting xattr " + name + " of " + path.string(), errno);
      spdlog::warn("{}: cannot set xattr {}: {}", path.string(), name, std::strerror(errno));
      ++refused;
    }
  }
  return refused;
}

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error(Errc::kInvalid, "\"" + hex + "\" is not lowercase hex");
  };
  if (hex.size() % 2 != 0) throw Error(Errc::kInvalid, "\"" + hex + "\" has an odd length");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out += static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1]));
  }
  return out;
}

}  // namespace lca::recovery
