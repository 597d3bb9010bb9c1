#pragma once
// Crash-safe file replacement: a reader sees either the old content or the new, never a mix,
// even if the process or the machine dies in between.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace lca {

// Writes `data` to a temp file beside `path`, fsyncs it, renames it over `path`, then fsyncs
// the directory so the rename itself survives power loss. The file gets `mode` exactly (umask
// ignored). Failpoints: "atomic-write.before-rename", "atomic-write.after-rename".
void WriteFileAtomic(const std::filesystem::path& path, std::string_view data, mode_t mode);

// fsync of a directory, so a rename or unlink inside it is durable.
void FsyncDir(const std::filesystem::path& dir);

// The whole file, or nullopt when it does not exist. Other errors throw.
std::optional<std::string> ReadFileIfExists(const std::filesystem::path& path);
std::string ReadFile(const std::filesystem::path& path);

// mkdir -p, then chmod the last component to `mode` (so a pre-existing dir is tightened too).
void EnsureDir(const std::filesystem::path& dir, mode_t mode);

}  // namespace lca
