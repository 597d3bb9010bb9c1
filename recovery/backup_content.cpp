#include "recovery/backup_content.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>
#include <sstream>

#include "common/atomic_file.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"

namespace lca::recovery {

namespace fs = std::filesystem;

std::uint64_t DirSize(const fs::path& path) {
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st)) {
    throw Error(Errc::kNotFound, "estimating the backup size: " + path.string() +
                                     " does not exist (every backed-up path must)");
  }
  if (!fs::is_directory(st)) return fs::is_symlink(st) ? 0 : fs::file_size(path, ec);
  std::uint64_t total = 0;
  std::vector<std::string> denied;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    const auto s = it->symlink_status(e2);
    if (e2 || fs::is_directory(s)) continue;
    struct stat lst {};
    if (::lstat(it->path().c_str(), &lst) == 0) total += static_cast<std::uint64_t>(lst.st_size);
  }
  if (ec) spdlog::warn("estimating the size of {}: {} (skipped)", path.string(), ec.message());
  return total;
}

SizeEstimate EstimateBackupSize(const HostConfig& host, const std::vector<std::string>& extras) {
  SizeEstimate s;
  const fs::path spr = host.Host("/etc/kubernetes/static-pod-resources");
  const std::uint64_t all = DirSize(spr);
  std::error_code ec;
  const std::uint64_t bin = fs::exists(spr / "bin", ec) ? DirSize(spr / "bin") : 0;
  s.static_pods = all > bin ? all - bin : 0;
  s.etcd = DirSize(host.Host("/var/lib/etcd/member/snap/db")) + s.static_pods;
  s.usr_local = DirSize(host.Host("/usr/local"));
  s.kubelet = DirSize(host.Host("/var/lib/kubelet"));
  s.etc = DirSize(host.Host("/etc"));
  for (const auto& p : extras) {
    struct stat st {};
    if (::lstat(host.Host(p).c_str(), &st) == 0) s.extras += static_cast<std::uint64_t>(st.st_size);
  }
  return s;
}

bool EnoughSpace(std::uint64_t estimated, std::uint64_t free, std::uint64_t margin) {
  return free > estimated + margin;
}

std::uint64_t FreeBytes(const fs::path& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) throw SystemError("statfs " + path.string(), errno);
  return static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_bsize);
}

std::string HumanSize(std::uint64_t bytes) { return FormatBytes(bytes); }

std::string EtcExcludeList(const HostConfig& host) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (seen.insert(p).second) out.push_back(p);
  };
  const fs::path dir = host.Host("/etc/tmpfiles.d");
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;  // not `ec`: a dangling symlink would end the listing early
    if (it->is_regular_file(type_ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::istringstream in(ReadFile(f));
    for (std::string line; std::getline(in, line);) {
      if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
      std::istringstream fields(line);
      std::string type, path;
      if (!(fields >> type >> path)) continue;
      if (path.rfind("/etc/", 0) != 0 || path.size() == 5) continue;
      add(path.substr(5));
    }
  }
  add(".updated");
  add("kubernetes/manifests");
  std::string text;
  for (const auto& p : out) text += p + "\n";
  return text;
}

std::vector<std::string> ManagedExtraFiles(const HostConfig& host) {
  const fs::path file = host.Host("/etc/machine-config-daemon/currentconfig");
  const auto text = ReadFileIfExists(file);
  if (!text) return {};
  const Json j = ParseJson(*text, file.string());
  const Json* files = nullptr;
  try {
    files = &j.at("spec").at("config").at("storage").at("files");
  } catch (const std::exception&) {
    return {};  // a config without storage.files manages no files
  }
  if (!files->is_array()) {
    throw Error(Errc::kInvalid, file.string() + ": .spec.config.storage.files is not a list");
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < files->size(); ++i) {
    const Json& f = (*files)[i];
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string()) {
      throw Error(Errc::kInvalid, file.string() + ": .spec.config.storage.files[" +
                                      std::to_string(i) + "].path is missing or not a string");
    }
    const std::string p = f["path"].get<std::string>();
    if (p.empty()) continue;
    if (p.front() != '/' || p.find("/../") != std::string::npos ||
        (p.size() >= 3 && p.compare(p.size() - 3, 3, "/..") == 0)) {
      throw Error(Errc::kInvalid, file.string() + ": .spec.config.storage.files[" +
                                      std::to_string(i) + "].path \"" + p +
                                      "\" is not an absolute path without \"..\"");
    }
    // Anchored prefixes (TALM matched "/var/lib/kubelet/" anywhere in the path).
    if (p.rfind("/etc/", 0) == 0 || p.rfind("/usr/local/", 0) == 0 ||
        p.rfind("/var/lib/kubelet/", 0) == 0) {
      continue;
    }
    if (seen.insert(p).second) out.push_back(p);
  }
  return out;
}

std::string ResolveInRoot(const fs::path& root, const std::string& host_path) {
  std::vector<std::string> todo;  // components still to walk, reversed
  for (const auto& c : fs::path(host_path).relative_path()) todo.insert(todo.begin(), c.string());
  if (todo.empty()) return {};
  const std::string leaf = todo.front();
  todo.erase(todo.begin());
  std::vector<std::string> done;
  int links = 0;
  while (!todo.empty()) {
    const std::string c = todo.back();
    todo.pop_back();
    if (c == "." || c.empty()) continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    fs::path here = root;
    for (const auto& d : done) here /= d;
    here /= c;
    struct stat st {};
    if (::lstat(here.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++links > 40) throw Error(Errc::kInvalid, host_path + ": too many levels of symlinks");
      std::string target(4096, '\0');
      const ssize_t n = ::readlink(here.c_str(), target.data(), target.size());
      if (n < 0) throw SystemError("reading symlink " + here.string(), errno);
      target.resize(static_cast<std::size_t>(n));
      const fs::path t(target);
      if (t.is_absolute()) done.clear();
      std::vector<std::string> parts;
      for (const auto& p : t.relative_path()) parts.push_back(p.string());
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
      continue;
    }
    done.push_back(c);
  }
  std::string out;
  for (const auto& d : done) out += d + "/";
  return out + leaf;
}

std::vector<std::string> NewestStaticPodDirs(const HostConfig& host) {
  const fs::path dir = host.Host("/etc/kubernetes/static-pod-resources");
  std::vector<std::string> out;
  for (const std::string prefix :
       {"kube-apiserver-pod", "kube-controller-manager-pod", "kube-scheduler-pod", "etcd-pod"}) {
    long best = -1;
    std::string best_name;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string n = it->path().filename().string();
      std::error_code type_ec;  // not `ec`: a dangling symlink would end the listing early
      if (n.rfind(prefix + "-", 0) != 0 || !it->is_directory(type_ec)) continue;
      const std::string rev = n.substr(prefix.size() + 1);
      if (rev.empty() || rev.find_first_not_of("0123456789") != std::string::npos) continue;
      const long r = std::stol(rev);
      if (r > best) {
        best = r;
        best_name = n;
      }
    }
    if (best < 0) {
      throw Error(Errc::kNotFound, "no " + prefix + "-<revision> directory in " + dir.string() +
                                       " (is this a control-plane node?)");
    }
    out.push_back(best_name);
  }
  return out;
}

}  // namespace lca::recovery
