#pragma once
// The one byte formatter for messages, logs and the CLI: 1024-based with IEC units,
// "512 B", "1.5 KiB", "12.0 MiB", "1.2 GiB" (one decimal above bytes).
#include <cstdint>
#include <string>

namespace lca {

std::string FormatBytes(std::uint64_t bytes);

}  // namespace lca
