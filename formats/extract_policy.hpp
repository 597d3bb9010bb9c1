#pragma once
// What an extraction may let go with a warning, and how it reports a write that failed.
//
// A seed is extracted into what becomes the new stateroot: a file written short (the disk
// filled up, an I/O error) would boot as a corrupt system, so every failure to create, write,
// size, or close an entry stops the extraction at once naming the entry. The only things that
// may fail with a warning are in BestEffort() below, the one list of them (docs/security.md
// "Extraction writes" repeats it).
#include <cstdint>
#include <string>
#include <string_view>

namespace lca::stateroot {

enum class Metadata { kOwner, kTimes, kXattr, kAcl };

// Whether failing to restore `what` (for kXattr, the attribute `xattr`) with `err` is
// acceptable: the filesystem cannot hold that kind of attribute (ENOTSUP/EOPNOTSUPP), the host
// will not take an SELinux label the seed carries (security.selinux: also EINVAL, EPERM,
// EACCES, as with SELinux off or a label unknown to the host's policy), or an extraction not
// run as root cannot give files away or set their times (EPERM, EINVAL). Anything else, ENOSPC,
// EDQUOT and EIO above all, is an error.
bool BestEffort(Metadata what, std::string_view xattr, int err);

// Same for a warning libarchive returned (it restores directories, hardlinks and files with
// ACLs): judged by the errno it recorded, as BestEffort() does for the metadata it restores.
bool BestEffortArchiveWarning(int err);

// Throws kIo "<label>: <doing> entry <entry>: <strerror>", and for ENOSPC or EDQUOT also how much
// the entry needed and how much the filesystem of `fd` has free: "(the entry needs 6.0 MiB,
// 2.1 MiB of it still unwritten; 0 B free on the filesystem of /sysroot/...)". `entry` is
// already quoted.
[[noreturn]] void ThrowWriteFailure(const std::string& label, std::string_view doing,
                                    const std::string& entry, int err, int fd,
                                    std::uint64_t entry_size, std::uint64_t unwritten);

}  // namespace lca::stateroot
