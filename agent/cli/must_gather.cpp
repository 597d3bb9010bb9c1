#include "agent/cli/must_gather.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <ostream>
#include <set>
#include <sstream>

#include "agent/api/ibu.hpp"
#include "agent/client/unix_http_client.hpp"
#include "agent/server/api_routes.hpp"
#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/state_layout.hpp"
#include "formats/archive.hpp"

namespace lca::cli {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRedacted = "REDACTED";
// Keys whose values are credentials (compared lower-cased).
const std::set<std::string> kSecretKeys = {"auth", "password", "token", "identitytoken",
                                           "registrytoken"};
// No single member is allowed to blow up the archive (a runaway log file).
constexpr uintmax_t kMaxFileBytes = 16u << 20;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string UtcStamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string ModeText(fs::perms p) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(p) & 07777);
  return buf;
}

// "<size> <mode> <relative name>" lines for the files under `dir` (not following symlinks).
std::string Listing(const fs::path& dir,
                    const std::function<bool(const fs::path&)>& skip_dir = {}) {
  std::ostringstream out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "(" + dir.string() + " does not exist)\n";
  std::vector<std::string> lines;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const auto st = it->symlink_status(ec);
    if (ec) break;
    const std::string rel = fs::relative(it->path(), dir, ec).string();
    if (fs::is_directory(st)) {
      lines.push_back("dir  " + ModeText(st.permissions()) + " " + rel + "/");
      if (skip_dir && skip_dir(it->path())) it.disable_recursion_pending();
      continue;
    }
    std::error_code sec;
    const auto size = fs::is_regular_file(st) ? fs::file_size(it->path(), sec) : 0;
    lines.push_back(std::string(fs::is_symlink(st) ? "link " : "file ") +
                    ModeText(st.permissions()) + " " + rel + " (" + std::to_string(sec ? 0 : size) +
                    " bytes)");
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& l : lines) out << l << "\n";
  if (ec) out << "(listing stopped: " << ec.message() << ")\n";
  return out.str();
}

std::string DiskUsage(const std::string& what, const fs::path& path) {
  struct statvfs sv {};
  if (::statvfs(path.c_str(), &sv) != 0) {
    return what + " " + path.string() + ": statvfs: " + std::strerror(errno) + "\n";
  }
  const auto bs = static_cast<unsigned long long>(sv.f_frsize);
  const unsigned long long total = bs * sv.f_blocks, avail = bs * sv.f_bavail,
                           free = bs * sv.f_bfree;
  const unsigned long long used = total - free;
  std::ostringstream o;
  o << what << " " << path.string() << ": total " << total << " bytes, used " << used
    << " bytes, available " << avail << " bytes";
  if (total > 0) o << " (" << (used * 100 + total - 1) / total << "% used)";
  o << ", inodes " << sv.f_files << " total, " << sv.f_favail << " available\n";
  return o.str();
}

std::string TailLines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (size_t n = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++n == lines) break;
  }
  return text.substr(pos);
}

class Gatherer {
 public:
  Gatherer(ProcessRunner& runner, const MustGatherOptions& opts, std::string prefix)
      : runner_(runner), opts_(opts), prefix_(std::move(prefix)) {}

  void Note(const std::string& line) { summary_ += line + "\n"; }

  // Redacted, then added; JSON members are redacted structurally first.
  void Add(const std::string& name, std::string data, bool json = false) {
    if (!SafeMemberName(name)) throw Error(Errc::kInternal, "must-gather member name " + name);
    if (json) {
      try {
        Json j = ParseJson(data, name);  // depth-capped: RedactJson recurses
        RedactJson(j);
        data = j.dump(2) + "\n";
      } catch (const std::exception&) {
        // Not JSON after all: the text pass below still applies.
      }
    }
    members_.emplace_back(name, RedactText(std::move(data)));
  }

  // A file from disk (at most kMaxFileBytes of its end); notes when it is missing.
  bool AddFile(const std::string& name, const fs::path& path, bool json) {
    std::error_code ec;
    if (!fs::is_regular_file(fs::symlink_status(path, ec))) {
      Note(name + ": " + path.string() + " is not there");
      return false;
    }
    try {
      std::string data = ReadFile(path);
      if (data.size() > kMaxFileBytes) data = data.substr(data.size() - kMaxFileBytes);
      Add(name, std::move(data), json);
      Note(name + ": " + path.string());
      return true;
    } catch (const std::exception& e) {
      Note(name + ": " + path.string() + ": " + e.what());
      return false;
    }
  }

  std::optional<std::string> Daemon(const std::string& path) {
    try {
      http::UnixHttpClient client(opts_.socket);
      const auto r = client.Request("GET", path, "", "", opts_.request_timeout);
      if (r.status == 200) return r.body;
      last_daemon_error_ = "HTTP " + std::to_string(r.status) + ": " + r.body;
    } catch (const std::exception& e) {
      last_daemon_error_ = e.what();
    }
    return std::nullopt;
  }

  ProcessResult Run(const std::vector<std::string>& argv) {
    ProcessSpec spec;
    spec.argv = argv;
    spec.timeout = std::chrono::seconds(60);
    spec.stderr_tail_bytes = 1 << 14;
    try {
      return runner_.Run(spec);
    } catch (const std::exception& e) {
      ProcessResult r;
      r.exit_code = 127;
      r.stderr_tail = e.what();
      return r;
    }
  }

  void Collect() {
    // The object: the daemon's view first, the file it persists otherwise.
    if (auto body = Daemon(std::string(kApiCollectionPath) + "/" + std::string(api::kName))) {
      Add("object.json", *body, true);
      Note("object.json: from lifecycle-agent on " + opts_.socket.string());
    } else {
      Note("lifecycle-agent on " + opts_.socket.string() +
           " did not answer: " + last_daemon_error_);
      AddFile("object.json", opts_.state_dir / ObjectStore::kFileName, true);
    }
    if (auto body = Daemon("/metrics")) {
      Add("metrics.txt", *body);
      Note("metrics.txt: /metrics from lifecycle-agent");
    }
    AddFile("step-journal.json", opts_.state_dir / StepJournal::kFileName, true);
    for (const char* f :
         {state_layout::kAutoRollbackConfig, state_layout::kPinned, state_layout::kMetrics}) {
      const fs::path p = opts_.state_dir / f;
      if (fs::exists(p)) AddFile(std::string("state-files/") + f, p, true);
    }
    // Names only: the workspace holds a transient pull secret while Prep runs.
    Add("state-dir.txt", Listing(opts_.state_dir));
    AddFile("precache-status.json", opts_.state_dir / "workspace/precache_status.json", true);
    const fs::path list = opts_.state_dir / "workspace/containers.list";
    if (fs::exists(list)) AddFile("precache-containers.list", list, false);

    CollectLog();

    {
      auto argv = opts_.ostree;
      argv.insert(argv.end(), {"admin", "status", "--sysroot", opts_.sysroot.string()});
      const auto r = Run(argv);
      std::string text = "$ " + Join(argv) + "\n" + r.stdout_data;
      if (!r.ok()) text += "\n(" + r.Describe() + ")\n" + r.stderr_tail;
      Add("deployments.txt", text);
      Note(std::string("deployments.txt: ostree admin status") + (r.ok() ? "" : " failed"));
    }

    Add("disk-usage.txt", DiskUsage("sysroot", opts_.sysroot) +
                              DiskUsage("state-dir", opts_.state_dir) +
                              DiskUsage("containers-storage", opts_.containers_root));

    if (!opts_.config_file.empty()) {
      AddFile("config/" + SafeName(opts_.config_file.filename().string()), opts_.config_file,
              false);
    }
    // The config dir's names; secrets/ is listed to its secret names, never read.
    Add("config-dir.txt", Listing(opts_.config_dir, [&](const fs::path& p) {
          return p.parent_path() == opts_.config_dir / "secrets";
        }));
    Add("summary.txt", "lcactl must-gather " + prefix_ + "\npaths: from " + opts_.paths_source +
                           ": state dir " + opts_.state_dir.string() + ", sysroot " +
                           opts_.sysroot.string() + ", config dir " + opts_.config_dir.string() +
                           "\n" + summary_);
  }

  void Write(const fs::path& out) {
    // 0600 before anything is in it: the object and logs are for root's eyes.
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw SystemError("creating " + out.string(), errno);
    ::fchmod(fd, 0600);
    ::close(fd);
    stateroot::TarWriter w(out, stateroot::Compression::kGzip);
    for (const auto& [name, data] : members_) w.AddData(prefix_ + "/" + name, data, 0600);
    w.Close();
  }

 private:
  static std::string Join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
  }
  static std::string SafeName(std::string n) {
    for (char& c : n) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
    }
    if (n.empty() || n == "." || n == "..") n = "config";
    return n;
  }

  void CollectLog() {
    auto argv = opts_.journalctl;
    argv.insert(argv.end(), {"-u", opts_.journal_unit, "-n", std::to_string(opts_.log_lines),
                             "--no-pager", "-o", "short-iso"});
    const auto r = Run(argv);
    const bool journal_has_it = r.ok() &&
                                r.stdout_data.find("-- No entries --") == std::string::npos &&
                                !r.stdout_data.empty();
    if (journal_has_it || opts_.log_file.empty()) {
      std::string text = "$ " + Join(argv) + "\n" + r.stdout_data;
      if (!r.ok()) text += "\n(" + r.Describe() + ")\n" + r.stderr_tail;
      Add("daemon.log", text);
      Note(std::string("daemon.log: journalctl") + (r.ok() ? "" : " failed: " + r.Describe()));
      return;
    }
    try {
      std::string data = ReadFile(opts_.log_file);
      Add("daemon.log", TailLines(data, opts_.log_lines));
      Note("daemon.log: the last " + std::to_string(opts_.log_lines) + " lines of " +
           opts_.log_file.string() + " (journalctl had none)");
    } catch (const std::exception& e) {
      Add("daemon.log", std::string("(no log: ") + e.what() + ")\n");
      Note(std::string("daemon.log: ") + e.what());
    }
  }

  ProcessRunner& runner_;
  const MustGatherOptions& opts_;
  std::string prefix_;
  std::string summary_;
  std::string last_daemon_error_;
  std::vector<std::pair<std::string, std::string>> members_;
};

}  // namespace

void RedactJson(Json& j) {
  if (j.is_object()) {
    for (auto& [key, value] : j.items()) {
      if (kSecretKeys.count(Lower(key)) != 0 && !value.is_object() && !value.is_array()) {
        value = kRedacted;
      } else {
        RedactJson(value);
      }
    }
  } else if (j.is_array()) {
    for (auto& v : j) RedactJson(v);
  }
}

bool SafeMemberName(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
        return false;
    }
    start = end + 1;
  }
  return true;
}

fs::path MustGather(ProcessRunner& runner, const MustGatherOptions& opts) {
  const std::string stamp = UtcStamp();
  const std::string prefix = "must-gather-" + stamp;
  const fs::path out = opts.output.empty() ? fs::path(prefix + ".tar.gz") : opts.output;
  Gatherer g(runner, opts, prefix);
  g.Collect();
  g.Write(out);
  return out;
}

void UseDaemonPaths(MustGatherOptions& opts, const MustGatherPathsGiven& given, std::ostream& err) {
  Json paths;
  try {
    http::UnixHttpClient client(opts.socket);
    const auto r = client.Request("GET", kPathsPath, "", "", opts.request_timeout);
    if (r.status != 200) throw Error(Errc::kUnavailable, "HTTP " + std::to_string(r.status));
    paths = ParseJson(r.body, std::string(kPathsPath));
    if (!paths.is_object()) throw Error(Errc::kInvalid, "not a JSON object");
  } catch (const std::exception& e) {
    err << "warning: could not ask lifecycle-agent for its paths (" << e.what()
        << "); gathering from the defaults and the flags given\n";
    return;
  }
  auto use = [&](bool was_given, const char* key, fs::path& target) {
    if (was_given || !paths.contains(key) || !paths[key].is_string()) return;
    const fs::path p = paths[key].get<std::string>();
    if (p.empty() && std::string(key) == "configFile") {
      target.clear();  // the daemon runs without a config file
    } else if (p.is_absolute()) {
      target = p;
    } else {
      err << "warning: lifecycle-agent's " << key << " \"" << p.string()
          << "\" is not an absolute path; using " << target.string() << "\n";
    }
  };
  use(given.state_dir, "stateDir", opts.state_dir);
  use(given.sysroot, "sysroot", opts.sysroot);
  use(given.config_file, "configFile", opts.config_file);
  use(given.config_dir, "configDir", opts.config_dir);
  use(given.containers_root, "containersRoot", opts.containers_root);
  opts.paths_source = "lifecycle-agent's " + std::string(kPathsPath) + " (flags given win)";
}

int MustGatherCommand(const MustGatherOptions& opts, std::ostream& out, std::ostream& err) {
  try {
    SystemProcessRunner runner;
    const auto path = MustGather(runner, opts);
    out << "must-gather written to " << path.string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    err << "error: must-gather: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace lca::cli
