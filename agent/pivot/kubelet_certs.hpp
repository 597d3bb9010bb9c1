#pragma once
// status.rollbackAvailabilityExpiration (reference-lca §6.3): after this time the old
// stateroot's kubelet certificates have expired, so rolling back may need manual recovery.
#include <chrono>
#include <filesystem>
#include <optional>

#include "common/timeutil.hpp"

namespace lca::pivot {

// Kubelet certificates are considered unusable this long before their notAfter.
inline constexpr std::chrono::minutes kRollbackExpirationMargin{30};

// Reads var/lib/kubelet/pki/kubelet-client-current.pem and kubelet-server-current.pem under
// old_stateroot_root (<sysroot>/ostree/deploy/<old>). Symlinks, absolute ones included,
// resolve as if that directory were "/" and never lead outside it. Every certificate in each
// file counts; the result is the earliest notAfter minus kRollbackExpirationMargin. Missing or
// unparsable files are skipped; when no certificate was parsed at all, throws lca::Error
// kNotFound naming the files and why each failed. Without var/lib/kubelet/pki at all the old
// stateroot never ran a kubelet (a plain ostree host, the test bed): nullopt, logged at info,
// as there is no certificate to expire and nothing to warn about.
std::optional<TimePoint> RollbackAvailabilityExpiration(
    const std::filesystem::path& old_stateroot_root);

}  // namespace lca::pivot
