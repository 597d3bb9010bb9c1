#include "stateroot/ostree_sysroot.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <ostree.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "common/beneath.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;
using CSysroot = ::OstreeSysroot;  // libostree's type; ours has the same name

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "<62 hex>.<type>" inside objects/<2 hex>/: the name of a loose object, or nullopt.
std::optional<std::string_view> LooseObjectType(std::string_view name) {
  if (name.size() < 64 || name[62] != '.' || !IsHex(name.substr(0, 62))) return std::nullopt;
  std::string_view type = name.substr(63);
  static constexpr std::string_view kTypes[] = {
      "file",        "filez",           "dirtree",          "dirmeta",
      "commit",      "commitmeta",      "tombstone-commit", "payload-link",
      "file-xattrs", "file-xattrs-link"};
  for (std::string_view t : kTypes) {
    if (type == t) return type;
  }
  return std::nullopt;
}

// Moves the loose objects of `source` into `dest` (same mode, same filesystem) with rename(2):
// what `ostree pull-local` does with linkat(2), without its per-object bookkeeping, and leaving
// nothing to unlink afterwards. Objects `dest` already has are left in `source`. Commit objects
// go last and only those in `commits`, so an interrupted import never leaves a commit in `dest`
// whose objects are not all there, and a partial commit of the seed repo is never imported. The
// data were synced before (the extraction's syncfs); one syncfs after the renames makes the
// names durable.
//
// The source is a scratch repo extracted from a seed: its objects/ and objects/XX directories are
// opened without following symlinks (a symlinked one is refused, so no file outside the scratch
// repo can be moved into the sysroot's repo), and every move goes between directory fds.
void ImportByRename(const fs::path& source, const fs::path& dest,
                    const std::set<std::string>& commits) {
  const UniqueFd source_fd = beneath::OpenRoot(source);
  const UniqueFd src_objects = beneath::Open(source_fd.get(), "objects", O_RDONLY | O_DIRECTORY);
  const UniqueFd dst_objects = beneath::OpenRoot(dest / "objects");
  // Per objects/XX directory: the objects to move, commits apart (they go last).
  std::map<std::string, std::vector<std::string>> moves, last;
  for (const std::string& dir : beneath::ListDir(src_objects.get())) {
    if (dir.size() != 2 || !IsHex(dir)) continue;
    const UniqueFd d = beneath::Open(src_objects.get(), dir, O_RDONLY | O_DIRECTORY);
    for (std::string& name : beneath::ListDir(d.get())) {
      auto type = LooseObjectType(name);
      struct stat st {};
      if (!type || ::fstatat(d.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          S_ISDIR(st.st_mode)) {
        continue;
      }
      if (*type == "commit" || *type == "commitmeta" || *type == "tombstone-commit") {
        if (commits.count(dir + name.substr(0, 62)) == 0) continue;
        last[dir].push_back(std::move(name));
      } else {
        moves[dir].push_back(std::move(name));
      }
    }
  }
  auto move_all = [&](std::map<std::string, std::vector<std::string>>& batch) {
    for (auto& [dir, names] : batch) {
      // commitmeta before its commit
      std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        return (a.ends_with(".commit") ? 1 : 0) < (b.ends_with(".commit") ? 1 : 0);
      });
      const UniqueFd from = beneath::Open(src_objects.get(), dir, O_RDONLY | O_DIRECTORY);
      const UniqueFd to = beneath::MakeDirs(dst_objects.get(), dir, 0755);
      for (const std::string& name : names) {
        // Never over an object dest has: same name, same content, and it may be in use.
        if (::renameat2(from.get(), name.c_str(), to.get(), name.c_str(), RENAME_NOREPLACE) != 0 &&
            errno != EEXIST) {
          throw SystemError("moving object " + dir + name + " into " + dest.string(), errno);
        }
      }
    }
  };
  move_all(moves);
  move_all(last);
  UniqueFd fd(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::syncfs(fd.get()) != 0) throw SystemError("syncing " + dest.string(), errno);
}

// On a host /sysroot is mounted read-only and only a private mount namespace may remount it.
// Whoever runs us owns that decision, so say what is missing instead of doing it.
constexpr std::string_view kReadOnlyHint =
    " (the sysroot is mounted read-only: on a host, /sysroot must be remounted read-write in the "
    "agent's mount namespace before changing deployments; this adapter never remounts)";

Errc CodeOf(const GError* err) {
  if (err == nullptr || err->domain != G_IO_ERROR) return Errc::kIo;
  switch (err->code) {
    case G_IO_ERROR_NOT_FOUND:
      return Errc::kNotFound;
    case G_IO_ERROR_EXISTS:
    case G_IO_ERROR_BUSY:
    case G_IO_ERROR_WOULD_BLOCK:
      return Errc::kConflict;
    case G_IO_ERROR_PERMISSION_DENIED:
      return Errc::kForbidden;
    case G_IO_ERROR_CANCELLED:
      return Errc::kCancelled;
    case G_IO_ERROR_INVALID_ARGUMENT:
      return Errc::kInvalid;
    default:
      return Errc::kIo;
  }
}

// GError -> lca::Error; the public methods prefix the operation (WithContext), `step` names
// the libostree call inside it when there are several.
[[noreturn]] void ThrowGError(const GError* err, std::string_view step = {}) {
  std::string msg(step);
  if (!msg.empty()) msg += ": ";
  msg += (err != nullptr && err->message != nullptr) ? err->message : "unknown libostree error";
  if (err != nullptr && err->domain == G_IO_ERROR && err->code == G_IO_ERROR_READ_ONLY) {
    msg += kReadOnlyHint;
  }
  throw Error(CodeOf(err), msg);
}

[[noreturn]] void ThrowErrno(const std::string& what, int err) {
  Error e = SystemError(what, err);
  if (err == EROFS) throw Error(e.code(), e.what() + std::string(kReadOnlyHint));
  throw e;
}

// libostree 2022.7 syncs /boot with a freeze/thaw cycle guarded by a watchdog process it
// fork()s; the watchdog daemon()izes, so the intermediate child exits at once and libostree
// never waits for it. Harmless in the CLI, but a long-running agent would keep one zombie per
// boot entry write. This reaps exactly those: children born during the call that still carry
// our own thread's name (forked, never exec'd, so not another component's command) and exited.
class WatchdogReaper {
 public:
  WatchdogReaper() : before_(Children()) {}
  WatchdogReaper(const WatchdogReaper&) = delete;
  WatchdogReaper& operator=(const WatchdogReaper&) = delete;
  ~WatchdogReaper() {
    // A fork() child inherits the name of the thread that forked, which may differ from the
    // process's main thread.
    const std::string self = Comm("/proc/thread-self/stat");
    // The intermediate child exits right after forking the watchdog, long before libostree
    // returns; the short wait only covers a slow scheduler.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    for (;;) {
      bool waiting = false;
      for (const auto& [pid, state] : Children()) {
        if (before_.count(pid) != 0 || Comm(ProcStat(pid)) != self) continue;
        if (state == 'Z') {
          ::waitpid(pid, nullptr, WNOHANG);
        } else {
          waiting = true;
        }
      }
      if (!waiting || std::chrono::steady_clock::now() > deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

 private:
  static std::string ProcStat(pid_t pid) { return "/proc/" + std::to_string(pid) + "/stat"; }

  static std::string ReadLine(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
  }

  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so it ends at the last ')'.
  static std::string Comm(const std::string& stat_path) {
    const std::string line = ReadLine(stat_path);
    const auto open = line.find('(');
    const auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) return {};
    return line.substr(open + 1, close - open - 1);
  }

  // Our children and their states, from /proc (no other interface lists them).
  static std::map<pid_t, char> Children() {
    std::map<pid_t, char> out;
    const pid_t self = ::getpid();
    DIR* dir = ::opendir("/proc");
    if (dir == nullptr) return out;
    while (const dirent* e = ::readdir(dir)) {
      char* end = nullptr;
      const long pid = std::strtol(e->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      const std::string line = ReadLine(ProcStat(static_cast<pid_t>(pid)));
      const auto close = line.rfind(')');
      char state = 0;
      int ppid = 0;
      if (close == std::string::npos ||
          std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != self) {
        continue;
      }
      out[static_cast<pid_t>(pid)] = state;
    }
    ::closedir(dir);
    return out;
  }

  std::map<pid_t, char> before_;
};

// The name becomes a path component that RemoveStateroot deletes recursively: no separators,
// no dot entries, nothing a shell or the BLS title would mangle.
void ValidateStaterootName(const std::string& name) {
  bool ok = !name.empty() && name != "." && name != ".." && name.size() <= 255;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '/' || c <= ' ' || c == 0x7f) ok = false;
  }
  if (!ok) throw Error(Errc::kInvalid, "invalid stateroot name \"" + name + "\"");
}

void ValidateChecksum(const std::string& checksum) {
  g_autoptr(GError) err = nullptr;
  if (!ostree_validate_checksum_string(checksum.c_str(), &err)) {
    throw Error(Errc::kInvalid, "invalid commit checksum \"" + checksum + "\": " + err->message);
  }
}

std::string DeploymentName(const std::string& stateroot, const std::string& checksum, int serial) {
  return stateroot + " " + checksum + "." + std::to_string(serial);
}

// BLS options minus ostree=, which libostree owns and rewrites on every bootloader write.
std::string KargsWithoutOstree(const char* options) {
  if (options == nullptr) return {};
  g_autoptr(OstreeKernelArgs) kargs = ostree_kernel_args_from_string(options);
  if (ostree_kernel_args_contains(kargs, "ostree")) {
    g_autoptr(GError) err = nullptr;
    if (!ostree_kernel_args_delete_key_entry(kargs, "ostree", &err)) ThrowGError(err, "kargs");
  }
  g_autofree char* out = ostree_kernel_args_to_string(kargs);
  return out != nullptr ? out : "";
}

// "" when the commit or its version is missing: listing must survive a damaged repo so that
// status can still show what is deployed.
std::string VersionOrEmpty(OstreeRepo* repo, const char* checksum) {
  g_autoptr(GVariant) commit = nullptr;
  if (!ostree_repo_load_variant_if_exists(repo, OSTREE_OBJECT_TYPE_COMMIT, checksum, &commit,
                                          nullptr) ||
      commit == nullptr) {
    return {};
  }
  g_autoptr(GVariant) meta = g_variant_get_child_value(commit, 0);
  const char* version = nullptr;
  if (!g_variant_lookup(meta, OSTREE_COMMIT_META_KEY_VERSION, "&s", &version)) return {};
  return version;
}

Deployment Convert(CSysroot* sysroot, OstreeRepo* repo, OstreeDeployment* d, int index,
                   const fs::path& root) {
  Deployment out;
  out.index = index;
  out.stateroot = ostree_deployment_get_osname(d);
  out.checksum = ostree_deployment_get_csum(d);
  out.serial = ostree_deployment_get_deployserial(d);
  out.pinned = ostree_deployment_is_pinned(d);
  if (const char* bootcsum = ostree_deployment_get_bootcsum(d)) out.bootcsum = bootcsum;
  out.bootserial = ostree_deployment_get_bootserial(d);
  if (OstreeBootconfigParser* bc = ostree_deployment_get_bootconfig(d)) {
    out.kargs = KargsWithoutOstree(ostree_bootconfig_parser_get(bc, "options"));
  }
  if (GKeyFile* origin = ostree_deployment_get_origin(d)) {
    g_autofree char* refspec = g_key_file_get_string(origin, "origin", "refspec", nullptr);
    if (refspec != nullptr) out.origin_refspec = refspec;
  }
  out.version = VersionOrEmpty(repo, out.checksum.c_str());
  g_autofree char* rel = ostree_sysroot_get_deployment_dirpath(sysroot, d);
  out.dir = root / rel;
  return out;
}

// Index of `d` (by stateroot, checksum, serial) in a raw deployment list, or -1.
int FindRaw(GPtrArray* deps, const std::string& stateroot, const std::string& checksum,
            int serial) {
  for (guint i = 0; i < deps->len; ++i) {
    auto* d = static_cast<OstreeDeployment*>(g_ptr_array_index(deps, i));
    if (stateroot == ostree_deployment_get_osname(d) && checksum == ostree_deployment_get_csum(d) &&
        serial == ostree_deployment_get_deployserial(d)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

GPtrArray* NewDeploymentArray() { return g_ptr_array_new_with_free_func(g_object_unref); }

// chattr -i: libostree marks each deployment root immutable on real hosts, and removal of
// anything inside it then fails with EPERM. Filesystems without the flag are fine as they are.
void ClearImmutable(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return;
    ThrowErrno("opening " + p.string(), errno);
  }
  int flags = 0;  // the kernel reads and writes an int, whatever the ioctl number says
  int err = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
    err = errno;
    if (err == ENOTTY || err == EOPNOTSUPP || err == EINVAL || err == ENOSYS) err = 0;
  } else if ((flags & FS_IMMUTABLE_FL) != 0) {
    flags &= ~FS_IMMUTABLE_FL;
    if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) err = errno;
  }
  ::close(fd);
  if (err != 0) ThrowErrno("clearing the immutable flag of " + p.string(), err);
}

// Must run before anything under the stateroot is unlinked, by libostree's cleanup too: a
// deployment inside an immutable directory cannot be removed even with its own flag cleared.
void ClearStaterootImmutable(const fs::path& dir) {
  // libostree sets the flag on the deployment roots only (deploy/<checksum>.<serial>), so those
  // and their parents are enough; walking a whole OS tree would cost an open per file.
  ClearImmutable(dir);
  ClearImmutable(dir / "deploy");
  std::error_code ec;
  for (fs::directory_iterator it(dir / "deploy", ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;  // not `ec`: a dangling symlink would end the listing early
    if (it->symlink_status(type_ec).type() == fs::file_type::directory) {
      ClearImmutable(it->path());
    }
  }
}

void RemoveTree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) ThrowErrno("removing " + dir.string(), ec.value());
}

}  // namespace

bool SameDeployment(const Deployment& d, const BootedDeployment& booted) {
  return d.stateroot == booted.stateroot && d.checksum == booted.checksum &&
         d.serial == booted.serial;
}

bool SameDeployment(const Deployment& a, const Deployment& b) {
  return a.stateroot == b.stateroot && a.checksum == b.checksum && a.serial == b.serial;
}

// ---------------------------------------------------------------------------------------------

struct OstreeSysroot::Impl {
  fs::path path;
  CSysroot* sysroot = nullptr;
  bool locked = false;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (sysroot == nullptr) return;
    if (locked) ostree_sysroot_unlock(sysroot);
    g_object_unref(sysroot);
  }

  // Cheap when nothing changed: libostree compares the mtime of ostree/deploy, which every
  // writer (us, rpm-ostree, ostree admin) bumps.
  void Load() {
    g_autoptr(GError) err = nullptr;
    if (!ostree_sysroot_load(sysroot, nullptr, &err)) ThrowGError(err, "loading");
  }

  OstreeRepo* Repo() { return ostree_sysroot_repo(sysroot); }

  // Transfer container: the array is ours, the deployments stay the sysroot's.
  GPtrArray* RawDeployments() { return ostree_sysroot_get_deployments(sysroot); }

  std::vector<Deployment> List() {
    Load();
    g_autoptr(GPtrArray) deps = RawDeployments();
    std::vector<Deployment> out;
    for (guint i = 0; i < deps->len; ++i) {
      out.push_back(Convert(sysroot, Repo(),
                            static_cast<OstreeDeployment*>(g_ptr_array_index(deps, i)),
                            static_cast<int>(i), path));
    }
    return out;
  }

  // No postclean (ostree_sysroot_cleanup): pruning the repo is a separate, explicit step
  // (Prune), so an import survives until it is deployed.
  void Write(GPtrArray* deployments, std::string_view step) {
    OstreeSysrootWriteDeploymentsOpts opts = {};
    opts.do_postclean = FALSE;
    WatchdogReaper reaper;
    g_autoptr(GError) err = nullptr;
    if (!ostree_sysroot_write_deployments_with_options(sysroot, deployments, &opts, nullptr,
                                                       &err)) {
      ThrowGError(err, step);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Lock

OstreeSysroot::Lock::Lock(Lock&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}

OstreeSysroot::Lock& OstreeSysroot::Lock::operator=(Lock&& other) noexcept {
  if (this != &other) {
    Release();
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

OstreeSysroot::Lock::~Lock() { Release(); }

void OstreeSysroot::Lock::Release() noexcept {
  if (impl_ == nullptr) return;
  if (impl_->locked) {
    ostree_sysroot_unlock(impl_->sysroot);
    impl_->locked = false;
  }
  impl_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// OstreeSysroot

OstreeSysroot::OstreeSysroot(fs::path sysroot) : impl_(std::make_unique<Impl>()) {
  impl_->path = std::move(sysroot);
  WithContext("opening ostree sysroot " + impl_->path.string(), [&] {
    g_autoptr(GFile) file = g_file_new_for_path(impl_->path.c_str());
    impl_->sysroot = ostree_sysroot_new(file);
    impl_->Load();
  });
}

OstreeSysroot::~OstreeSysroot() = default;
OstreeSysroot::OstreeSysroot(OstreeSysroot&&) noexcept = default;
OstreeSysroot& OstreeSysroot::operator=(OstreeSysroot&&) noexcept = default;

const fs::path& OstreeSysroot::path() const { return impl_->path; }

fs::path OstreeSysroot::repo_path() const { return impl_->path / "ostree/repo"; }

OstreeSysroot::Lock OstreeSysroot::TryLock() {
  const std::string where = "ostree sysroot " + impl_->path.string();
  if (impl_->locked) {
    // The lock belongs to an open file description: a second try_lock on the same object
    // would open the file again and fail as if another process held it, hiding a nested lock.
    throw Error(Errc::kInternal, where + " is already locked by this object");
  }
  gboolean acquired = FALSE;
  g_autoptr(GError) err = nullptr;
  if (!ostree_sysroot_try_lock(impl_->sysroot, &acquired, &err)) {
    ThrowGError(err, "locking " + where);
  }
  if (!acquired) {
    throw Error(Errc::kConflict,
                where + " is locked by another process (rpm-ostree or ostree admin?)");
  }
  impl_->locked = true;
  return Lock(impl_.get());
}

std::optional<OstreeSysroot::Lock> OstreeSysroot::LockUnlessHeld() {
  if (impl_->locked) return std::nullopt;
  return TryLock();
}

std::vector<Deployment> OstreeSysroot::Deployments() {
  return WithContext("listing deployments of " + impl_->path.string(),
                     [&] { return impl_->List(); });
}

std::optional<Deployment> OstreeSysroot::Booted(const BootedDeployment& booted) {
  for (auto& d : Deployments()) {
    if (SameDeployment(d, booted)) return std::move(d);
  }
  return std::nullopt;
}

void OstreeSysroot::InitStateroot(const std::string& name) {
  WithContext("creating stateroot " + name + " in " + impl_->path.string(), [&] {
    ValidateStaterootName(name);
    auto lock = LockUnlessHeld();
    impl_->Load();
    if (StaterootExists(name)) throw Error(Errc::kConflict, "it already exists");
    g_autoptr(GError) err = nullptr;
    if (!ostree_sysroot_init_osname(impl_->sysroot, name.c_str(), nullptr, &err)) {
      ThrowGError(err);
    }
  });
}

bool OstreeSysroot::StaterootExists(const std::string& name) const {
  ValidateStaterootName(name);
  std::error_code ec;
  return fs::is_directory(impl_->path / "ostree/deploy" / name, ec);
}

std::vector<std::string> OstreeSysroot::ImportFromRepo(const fs::path& source_repo,
                                                       ImportMode mode) {
  return WithContext("importing " + source_repo.string() + " into " + repo_path().string(), [&] {
    auto lock = LockUnlessHeld();
    impl_->Load();
    g_autoptr(GError) err = nullptr;
    g_autoptr(GFile) file = g_file_new_for_path(source_repo.c_str());
    g_autoptr(OstreeRepo) source = ostree_repo_new(file);
    if (!ostree_repo_open(source, nullptr, &err)) ThrowGError(err, "opening");

    g_autoptr(GHashTable) commits = nullptr;
    if (!ostree_repo_list_commit_objects_starting_with(source, "", &commits, nullptr, &err)) {
      ThrowGError(err, "listing commits");
    }
    std::vector<std::string> checksums;
    GHashTableIter it;
    gpointer key = nullptr;
    g_hash_table_iter_init(&it, commits);
    while (g_hash_table_iter_next(&it, &key, nullptr)) {
      const char* checksum = nullptr;
      OstreeObjectType type;
      ostree_object_name_deserialize(static_cast<GVariant*>(key), &checksum, &type);
      OstreeRepoCommitState state;
      if (!ostree_repo_load_commit(source, checksum, nullptr, &state, &err)) {
        ThrowGError(err, std::string("loading commit ") + checksum);
      }
      // Left by an interrupted pull into the seed repo: its objects are incomplete, nothing
      // could deploy it, and pulling it would fail on the first missing object.
      if ((state & OSTREE_REPO_COMMIT_STATE_PARTIAL) != 0) continue;
      checksums.emplace_back(checksum);
    }
    if (checksums.empty()) throw Error(Errc::kNotFound, "the repo holds no complete commit");
    std::sort(checksums.begin(), checksums.end());

    // Same mode and filesystem: move the objects instead of pulling them (ImportByRename).
    struct stat src_st = {};
    struct stat dst_st = {};
    if (mode == ImportMode::kMoveFromScratch &&
        ostree_repo_get_mode(source) == ostree_repo_get_mode(impl_->Repo()) &&
        ::stat((source_repo / "objects").c_str(), &src_st) == 0 &&
        ::stat((repo_path() / "objects").c_str(), &dst_st) == 0 && src_st.st_dev == dst_st.st_dev) {
      ImportByRename(source_repo, repo_path(),
                     std::set<std::string>(checksums.begin(), checksums.end()));
      return checksums;
    }

    // Pulling checksums rather than refs writes no ref (see the header). A local pull of a
    // trusted repo (no OSTREE_REPO_PULL_FLAGS_UNTRUSTED) imports objects with linkat when the
    // repos share a filesystem and mode, and only copies otherwise.
    std::vector<const char*> refs;
    for (const auto& c : checksums) refs.push_back(c.c_str());
    refs.push_back(nullptr);
    GVariantBuilder builder;
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&builder, "{s@v}", "refs",
                          g_variant_new_variant(g_variant_new_strv(refs.data(), -1)));
    g_variant_builder_add(&builder, "{s@v}", "flags",
                          g_variant_new_variant(g_variant_new_int32(OSTREE_REPO_PULL_FLAGS_NONE)));
    g_variant_builder_add(&builder, "{s@v}", "depth",
                          g_variant_new_variant(g_variant_new_int32(0)));
    g_variant_builder_add(&builder, "{s@v}", "gpg-verify",
                          g_variant_new_variant(g_variant_new_boolean(FALSE)));
    g_variant_builder_add(&builder, "{s@v}", "gpg-verify-summary",
                          g_variant_new_variant(g_variant_new_boolean(FALSE)));
    g_autoptr(GVariant) options = g_variant_ref_sink(g_variant_builder_end(&builder));
    g_autofree char* uri = g_file_get_uri(file);

    // libostree's own fsync policy stays on: its commit syncs the filesystem before renaming
    // objects into place, then fsyncs each objects/XX directory. Turning fsync off roughly
    // halved the import time here, but renames would then precede the data, and a power cut
    // could leave empty objects under valid names that a later deploy hardlinks into /usr.
    if (!ostree_repo_pull_with_options(impl_->Repo(), uri, options, nullptr, nullptr, &err)) {
      ThrowGError(err, "pulling");
    }
    return checksums;
  });
}

bool HasLooseCommit(const fs::path& repo, const std::string& checksum) {
  if (checksum.size() != 64 || !IsHex(checksum)) return false;
  std::error_code ec;
  return fs::exists(repo / "objects" / checksum.substr(0, 2) / (checksum.substr(2) + ".commit"),
                    ec);
}

bool OstreeSysroot::HasCommit(const std::string& checksum) {
  return WithContext("looking up commit " + checksum, [&] {
    ValidateChecksum(checksum);
    impl_->Load();
    g_autoptr(GError) err = nullptr;
    gboolean has = FALSE;
    if (!ostree_repo_has_object(impl_->Repo(), OSTREE_OBJECT_TYPE_COMMIT, checksum.c_str(), &has,
                                nullptr, &err)) {
      ThrowGError(err);
    }
    return has != FALSE;
  });
}

std::string OstreeSysroot::CommitVersion(const std::string& checksum) {
  return WithContext("reading the version of commit " + checksum, [&] {
    ValidateChecksum(checksum);
    impl_->Load();
    g_autoptr(GError) err = nullptr;
    g_autoptr(GVariant) commit = nullptr;
    if (!ostree_repo_load_variant(impl_->Repo(), OSTREE_OBJECT_TYPE_COMMIT, checksum.c_str(),
                                  &commit, &err)) {
      ThrowGError(err);
    }
    g_autoptr(GVariant) meta = g_variant_get_child_value(commit, 0);
    const char* version = nullptr;
    if (!g_variant_lookup(meta, OSTREE_COMMIT_META_KEY_VERSION, "&s", &version)) {
      return std::string();
    }
    return std::string(version);
  });
}

Deployment OstreeSysroot::Deploy(const std::string& stateroot, const std::string& checksum,
                                 const std::vector<std::string>& kargs, const std::string& origin) {
  return WithContext("deploying " + checksum + " into stateroot " + stateroot, [&] {
    ValidateStaterootName(stateroot);
    ValidateChecksum(checksum);
    for (const auto& k : kargs) {
      // libostree appends its own ostree= when it writes the boot entry; a second one would
      // make the boot resolve whichever the initramfs reads first.
      if (k.empty() || k.rfind("ostree=", 0) == 0) {
        throw Error(Errc::kInvalid, "invalid kernel argument \"" + k + "\"");
      }
    }
    auto lock = LockUnlessHeld();
    impl_->Load();
    if (!StaterootExists(stateroot)) {
      throw Error(Errc::kNotFound, "the stateroot does not exist (create it first)");
    }

    g_autoptr(GError) err = nullptr;
    g_autoptr(GKeyFile) keyfile = nullptr;
    if (origin.empty()) {
      keyfile = ostree_sysroot_origin_new_from_refspec(impl_->sysroot, checksum.c_str());
    } else {
      keyfile = g_key_file_new();
      if (!g_key_file_load_from_data(keyfile, origin.data(), origin.size(),
                                     G_KEY_FILE_KEEP_COMMENTS, &err)) {
        throw Error(Errc::kInvalid, std::string("parsing the origin: ") + err->message);
      }
    }
    // A seed's origin describes the seed host: its pin (or unlock state) is not ours.
    ostree_deployment_origin_remove_transient_state(keyfile);

    std::vector<char*> argv;
    for (const auto& k : kargs) argv.push_back(const_cast<char*>(k.c_str()));
    argv.push_back(nullptr);
    OstreeSysrootDeployTreeOpts opts = {};
    opts.override_kernel_argv = argv.data();
    // No merge deployment: /etc comes from the commit's /usr/etc and the kargs are exactly
    // `kargs`; libostree would otherwise copy both from the merge deployment it is given.
    g_autoptr(OstreeDeployment) created = nullptr;
    WatchdogReaper reaper;
    if (!ostree_sysroot_deploy_tree_with_options(impl_->sysroot, stateroot.c_str(),
                                                 checksum.c_str(), keyfile, nullptr, &opts,
                                                 &created, nullptr, &err)) {
      ThrowGError(err);
    }

    // Right after the default, like `ostree admin deploy --not-as-default` on newer ostree, and
    // keeping every other deployment (--no-prune). If this write fails the new deployment
    // directory stays unreferenced until the next cleanup removes it.
    g_autoptr(GPtrArray) current = impl_->RawDeployments();
    g_autoptr(GPtrArray) next = NewDeploymentArray();
    for (guint i = 0; i < current->len; ++i) {
      g_ptr_array_add(next, g_object_ref(g_ptr_array_index(current, i)));
    }
    g_ptr_array_insert(next, current->len == 0 ? 0 : 1, g_object_ref(created));
    impl_->Write(next, "writing boot entries");

    const std::string name = ostree_deployment_get_osname(created);
    const std::string csum = ostree_deployment_get_csum(created);
    const int serial = ostree_deployment_get_deployserial(created);
    for (auto& d : impl_->List()) {
      if (d.stateroot == name && d.checksum == csum && d.serial == serial) return d;
    }
    throw Error(Errc::kInternal, "the new deployment " + DeploymentName(name, csum, serial) +
                                     " is missing after writing it");
  });
}

void OstreeSysroot::SetDefault(const Deployment& d) {
  const std::string name = DeploymentName(d.stateroot, d.checksum, d.serial);
  WithContext("making " + name + " the default deployment", [&] {
    auto lock = LockUnlessHeld();
    impl_->Load();
    g_autoptr(GPtrArray) current = impl_->RawDeployments();
    const int i = FindRaw(current, d.stateroot, d.checksum, d.serial);
    if (i < 0) throw Error(Errc::kNotFound, "no such deployment");
    if (i == 0) return;  // rewriting identical entries would still swap the boot version
    g_autoptr(GPtrArray) next = NewDeploymentArray();
    g_ptr_array_add(next, g_object_ref(g_ptr_array_index(current, i)));
    for (guint j = 0; j < current->len; ++j) {
      if (static_cast<int>(j) != i)
        g_ptr_array_add(next, g_object_ref(g_ptr_array_index(current, j)));
    }
    impl_->Write(next, "writing boot entries");
  });
}

void OstreeSysroot::SetPinned(const Deployment& d, bool pinned) {
  const std::string name = DeploymentName(d.stateroot, d.checksum, d.serial);
  WithContext((pinned ? "pinning " : "unpinning ") + name, [&] {
    auto lock = LockUnlessHeld();
    impl_->Load();
    g_autoptr(GPtrArray) current = impl_->RawDeployments();
    const int i = FindRaw(current, d.stateroot, d.checksum, d.serial);
    if (i < 0) throw Error(Errc::kNotFound, "no such deployment");
    g_autoptr(GError) err = nullptr;
    if (!ostree_sysroot_deployment_set_pinned(
            impl_->sysroot, static_cast<OstreeDeployment*>(g_ptr_array_index(current, i)), pinned,
            &err)) {
      ThrowGError(err);
    }
  });
}

void OstreeSysroot::Undeploy(const Deployment& d, const std::optional<BootedDeployment>& booted) {
  const std::string name = DeploymentName(d.stateroot, d.checksum, d.serial);
  WithContext("undeploying " + name, [&] {
    auto lock = LockUnlessHeld();
    impl_->Load();
    OstreeDeployment* ostree_booted = ostree_sysroot_get_booted_deployment(impl_->sysroot);
    g_autoptr(GPtrArray) current = impl_->RawDeployments();
    const int i = FindRaw(current, d.stateroot, d.checksum, d.serial);
    if (i < 0) return;
    auto* raw = static_cast<OstreeDeployment*>(g_ptr_array_index(current, i));
    if ((booted && SameDeployment(d, *booted)) ||
        (ostree_booted != nullptr && ostree_deployment_equal(raw, ostree_booted))) {
      throw Error(Errc::kConflict, "it is the booted deployment");
    }
    g_autoptr(GPtrArray) next = NewDeploymentArray();
    for (guint j = 0; j < current->len; ++j) {
      if (static_cast<int>(j) != i)
        g_ptr_array_add(next, g_object_ref(g_ptr_array_index(current, j)));
    }
    impl_->Write(next, "writing boot entries");
    ClearImmutable(d.dir);
    g_autoptr(GError) err = nullptr;
    if (!ostree_sysroot_prepare_cleanup(impl_->sysroot, nullptr, &err)) {
      ThrowGError(err, "removing the unreferenced deployment");
    }
  });
}

void OstreeSysroot::RemoveStateroot(const std::string& stateroot,
                                    const std::optional<BootedDeployment>& booted) {
  WithContext("removing stateroot " + stateroot + " from " + impl_->path.string(), [&] {
    ValidateStaterootName(stateroot);
    auto lock = LockUnlessHeld();
    impl_->Load();
    // libostree's own view of what is booted is only set on a real host; checking it too costs
    // nothing and keeps a wrong `booted` from undeploying the running system.
    OstreeDeployment* ostree_booted = ostree_sysroot_get_booted_deployment(impl_->sysroot);
    g_autoptr(GPtrArray) current = impl_->RawDeployments();
    g_autoptr(GPtrArray) next = NewDeploymentArray();
    for (guint i = 0; i < current->len; ++i) {
      auto* d = static_cast<OstreeDeployment*>(g_ptr_array_index(current, i));
      if (stateroot != ostree_deployment_get_osname(d)) {
        g_ptr_array_add(next, g_object_ref(d));
        continue;
      }
      const bool is_booted =
          (booted && booted->checksum == ostree_deployment_get_csum(d) &&
           booted->serial == ostree_deployment_get_deployserial(d) &&
           booted->stateroot == stateroot) ||
          (ostree_booted != nullptr && ostree_deployment_equal(d, ostree_booted));
      if (is_booted) {
        throw Error(Errc::kConflict, "deployment " + std::to_string(i) + " in stateroot " +
                                         stateroot + " is booted");
      }
    }
    if ((booted && booted->stateroot == stateroot) ||
        (ostree_booted != nullptr && stateroot == ostree_deployment_get_osname(ostree_booted))) {
      throw Error(Errc::kConflict, "stateroot " + stateroot + " is booted");
    }

    const fs::path dir = impl_->path / "ostree/deploy" / stateroot;
    std::error_code ec;
    const bool dir_exists = fs::exists(fs::symlink_status(dir, ec));
    const bool undeploy = next->len != current->len;
    if (!undeploy && !dir_exists) return;  // already gone: cleanup is retried after failures

    if (undeploy) impl_->Write(next, "undeploying");
    // Only now: if undeploying fails, the deployments that stay keep their immutable flag.
    ClearStaterootImmutable(dir);
    if (undeploy) {
      // Removes the deployment directories and /boot/ostree/<stateroot>-<bootcsum> that are no
      // longer referenced, without the repo prune that ostree_sysroot_cleanup adds.
      g_autoptr(GError) err = nullptr;
      if (!ostree_sysroot_prepare_cleanup(impl_->sysroot, nullptr, &err)) {
        ThrowGError(err, "removing unreferenced deployments");
      }
    }
    RemoveTree(dir);
  });
}

void OstreeSysroot::Prune() {
  WithContext("pruning ostree sysroot " + impl_->path.string(), [&] {
    auto lock = LockUnlessHeld();
    impl_->Load();
    // ostree_sysroot_cleanup is these two calls plus a g_print of the freed size on stdout,
    // which is the agent's log stream: same work, without the print.
    g_autoptr(GError) err = nullptr;
    if (!ostree_sysroot_prepare_cleanup(impl_->sysroot, nullptr, &err)) {
      ThrowGError(err, "removing unreferenced deployments");
    }
    g_autoptr(GHashTable) reachable = ostree_repo_traverse_new_reachable();
    OstreeRepoPruneOptions opts = {};
    opts.flags = OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY;
    opts.reachable = reachable;
    gint total = 0;
    gint pruned = 0;
    guint64 freed = 0;
    if (!ostree_sysroot_cleanup_prune_repo(impl_->sysroot, &opts, &total, &pruned, &freed, nullptr,
                                           &err)) {
      ThrowGError(err, "pruning the repo");
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Pure functions

std::optional<Deployment> RollbackTarget(const std::vector<Deployment>& deps,
                                         const BootedDeployment& booted) {
  for (const auto& d : deps) {
    if (d.stateroot != booted.stateroot) return d;
  }
  return std::nullopt;
}

std::vector<std::string> StaterootsToRemove(const std::vector<Deployment>& deps,
                                            const std::vector<std::string>& stateroot_dirs,
                                            const std::string& booted_stateroot) {
  if (booted_stateroot.empty()) {
    throw Error(Errc::kInvalid, "cannot choose stateroots to remove without the booted one");
  }
  std::vector<std::string> out;
  std::set<std::string> seen{booted_stateroot};
  for (const auto& d : deps) {
    if (seen.insert(d.stateroot).second) out.push_back(d.stateroot);
  }
  std::vector<std::string> empty_dirs;
  for (const auto& name : stateroot_dirs) {
    if (seen.insert(name).second) empty_dirs.push_back(name);
  }
  std::sort(empty_dirs.begin(), empty_dirs.end());
  out.insert(out.end(), empty_dirs.begin(), empty_dirs.end());
  return out;
}

std::optional<BootedDeployment> FindBooted(const fs::path& sysroot, std::string_view cmdline) {
  try {
    return ResolveBooted(sysroot, cmdline);
  } catch (const Error& e) {
    if (e.code() != Errc::kNotFound) throw;
    const auto karg = OstreeKarg(cmdline);
    // /ostree/boot.N/<stateroot>/<bootcsum>/<bootserial>
    std::vector<std::string> parts;
    for (const auto& c : fs::path(*karg).relative_path()) parts.push_back(c.string());
    if (parts.size() != 5 || parts[0] != "ostree" || parts[1].rfind("boot.", 0) != 0) throw;
    // The boot serial counts deployments with the same kernel across every stateroot, so it
    // shifts when a deployment of another stateroot is put before ours (the pivot does that).
    // A stateroot with one deployment of that kernel is unambiguous; otherwise the serial
    // decides.
    OstreeSysroot os(sysroot);
    std::vector<Deployment> same_kernel;
    for (const auto& d : os.Deployments()) {
      if (d.stateroot == parts[2] && d.bootcsum == parts[3]) same_kernel.push_back(d);
    }
    for (const auto& d : same_kernel) {
      if (same_kernel.size() == 1 || std::to_string(d.bootserial) == parts[4]) {
        return BootedDeployment{d.stateroot, d.checksum, d.serial, d.dir};
      }
    }
    throw;
  }
}

}  // namespace lca::stateroot
