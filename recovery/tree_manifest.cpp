#include "recovery/tree_manifest.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <sstream>
#include <utility>

#include "common/error.hpp"
#include "formats/oci_layout.hpp"

namespace lca::recovery {
namespace {

namespace fs = std::filesystem;

char TypeOf(mode_t m) {
  if (S_ISREG(m)) return 'f';
  if (S_ISDIR(m)) return 'd';
  if (S_ISLNK(m)) return 'l';
  if (S_ISCHR(m)) return 'c';
  if (S_ISBLK(m)) return 'b';
  if (S_ISFIFO(m)) return 'p';
  return 's';
}

std::string Octal(mode_t m) {
  std::ostringstream o;
  o << '0' << std::oct << (m & 07777);
  return o.str();
}

class Scanner {
 public:
  explicit Scanner(const PathFilter* exclude) : exclude_(exclude) {}

  void Walk(const fs::path& p, const std::string& rel) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw SystemError("lstat " + p.string(), errno);
    const char type = TypeOf(st.st_mode);
    if (type == 's') return;
    TreeEntry e;
    e.path = rel.empty() ? "." : rel;
    e.type = type;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.xattrs = ReadXattrs(p);
    if (type == 'f') {
      e.size = static_cast<std::uint64_t>(st.st_size);
      e.sha256 = stateroot::Sha256File(p);
      if (st.st_nlink > 1) {
        auto [it, fresh] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), e.path);
        if (!fresh) e.hardlink = it->second;
      }
    } else if (type == 'l') {
      std::string buf(4096, '\0');
      const ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size());
      if (n < 0) throw SystemError("reading symlink " + p.string(), errno);
      buf.resize(static_cast<std::size_t>(n));
      e.target = buf;
    } else if (type == 'c' || type == 'b') {
      e.rdev = st.st_rdev;
    }
    out.push_back(std::move(e));
    if (type != 'd') return;
    std::vector<std::string> names;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(p.c_str()), &::closedir);
    if (!d) throw SystemError("opening directory " + p.string(), errno);
    errno = 0;
    while (const dirent* de = ::readdir(d.get())) {
      const std::string_view n = de->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    if (errno != 0) throw SystemError("reading directory " + p.string(), errno);
    d.reset();
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      const std::string child = rel.empty() ? n : rel + "/" + n;
      if (exclude_ != nullptr && exclude_->Excluded(child)) continue;
      Walk(p / n, child);
    }
  }

  std::vector<TreeEntry> out;

 private:
  const PathFilter* exclude_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

std::string Describe(const TreeEntry& want, const TreeEntry& have) {
  std::vector<std::string> diffs;
  if (want.type != have.type) {
    diffs.push_back(std::string("type ") + have.type + ", backup has " + want.type);
  } else {
    if (want.sha256 != have.sha256 || want.size != have.size) {
      diffs.push_back("content differs (size " + std::to_string(have.size) + ", backup has " +
                      std::to_string(want.size) + ")");
    }
    if (want.target != have.target) {
      diffs.push_back("symlink to \"" + have.target + "\", backup has \"" + want.target + "\"");
    }
    if (want.rdev != have.rdev) diffs.push_back("device number differs");
    if (want.hardlink != have.hardlink) {
      diffs.push_back("hardlink of \"" + have.hardlink + "\", backup has \"" + want.hardlink +
                      "\"");
    }
  }
  if (want.mode != have.mode && want.type != 'l') {
    diffs.push_back("mode " + Octal(have.mode) + ", backup has " + Octal(want.mode));
  }
  if (want.uid != have.uid || want.gid != have.gid) {
    diffs.push_back("owner " + std::to_string(have.uid) + ":" + std::to_string(have.gid) +
                    ", backup has " + std::to_string(want.uid) + ":" + std::to_string(want.gid));
  }
  if (want.xattrs != have.xattrs) {
    std::string names;
    for (const auto& [k, v] : want.xattrs) {
      auto it = have.xattrs.find(k);
      if (it == have.xattrs.end() || it->second != v) names += (names.empty() ? "" : ", ") + k;
    }
    for (const auto& [k, v] : have.xattrs) {
      if (want.xattrs.count(k) == 0) names += (names.empty() ? "" : ", ") + k + " (extra)";
    }
    diffs.push_back("xattrs differ: " + names);
  }
  std::string out;
  for (const auto& d : diffs) out += (out.empty() ? "" : "; ") + d;
  return out;
}

}  // namespace

std::vector<TreeEntry> ScanTree(const fs::path& root, const PathFilter* exclude) {
  Scanner s(exclude);
  WithContext("scanning " + root.string(), [&] { s.Walk(root, ""); });
  return std::move(s.out);
}

Json TreeToJson(const std::vector<TreeEntry>& entries) {
  Json arr = Json::array();
  for (const auto& e : entries) {
    Json j = {{"path", e.path},
              {"type", std::string(1, e.type)},
              {"mode", Octal(e.mode)},
              {"uid", e.uid},
              {"gid", e.gid}};
    if (e.type == 'f') {
      j["size"] = e.size;
      j["sha256"] = e.sha256;
    }
    if (!e.target.empty()) j["target"] = e.target;
    if (e.rdev != 0) j["rdev"] = e.rdev;
    if (!e.hardlink.empty()) j["hardlink"] = e.hardlink;
    if (!e.xattrs.empty()) {
      Json x = Json::object();
      for (const auto& [k, v] : e.xattrs) x[k] = Hex(v);
      j["xattrs"] = x;
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

std::vector<TreeEntry> TreeFromJson(const Json& j, const std::string& what) {
  if (!j.is_array()) throw Error(Errc::kInvalid, what + ": the entry list is not an array");
  std::vector<TreeEntry> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const Json& x = j[i];
    const std::string where = what + ": entry " + std::to_string(i);
    try {
      TreeEntry e;
      e.path = x.at("path").get<std::string>();
      const std::string type = x.at("type").get<std::string>();
      if (type.size() != 1 || std::string("fdlcbp").find(type[0]) == std::string::npos) {
        throw Error(Errc::kInvalid, "field \"type\": unknown type \"" + type + "\"");
      }
      e.type = type[0];
      e.mode = static_cast<mode_t>(std::stoul(x.at("mode").get<std::string>(), nullptr, 8));
      e.uid = x.at("uid").get<uid_t>();
      e.gid = x.at("gid").get<gid_t>();
      e.size = x.value("size", std::uint64_t{0});
      e.sha256 = x.value("sha256", std::string());
      e.target = x.value("target", std::string());
      e.rdev = x.value("rdev", std::uint64_t{0});
      e.hardlink = x.value("hardlink", std::string());
      if (x.contains("xattrs")) {
        for (const auto& [k, v] : x.at("xattrs").items()) e.xattrs[k] = Unhex(v.get<std::string>());
      }
      out.push_back(std::move(e));
    } catch (const Error& e) {
      throw Error(Errc::kInvalid, where + ": " + e.what());
    } catch (const std::exception& e) {
      throw Error(Errc::kInvalid, where + ": " + e.what());
    }
  }
  return out;
}

std::vector<std::string> CompareTrees(const std::vector<TreeEntry>& expected,
                                      const std::vector<TreeEntry>& actual,
                                      const PathFilter* exclude, std::size_t max) {
  std::map<std::string, const TreeEntry*> have;
  for (const auto& e : actual) have[e.path] = &e;
  std::vector<std::string> out;
  std::size_t total = 0;
  auto add = [&](std::string s) {
    if (++total <= max) out.push_back(std::move(s));
  };
  auto excluded = [&](const std::string& p) {
    return exclude != nullptr && p != "." && exclude->Excluded(p);
  };
  for (const auto& want : expected) {
    if (excluded(want.path)) continue;
    auto it = have.find(want.path);
    if (it == have.end()) {
      add(want.path + ": missing");
      continue;
    }
    const TreeEntry& got = *it->second;
    have.erase(it);
    if (!(want == got)) add(want.path + ": " + Describe(want, got));
  }
  for (const auto& [path, e] : have) {
    if (!excluded(path)) add(path + ": not in the backup");
  }
  if (total > max) out.push_back("... and " + std::to_string(total - max) + " more");
  return out;
}

}  // namespace lca::recovery
