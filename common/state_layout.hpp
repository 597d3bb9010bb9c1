#pragma once
// The names inside the agent's state directory (/var/lib/lca, and a stateroot's
// var/lib/lca), defined once: the daemon, the handlers, the init monitor, must-gather and the
// metrics all find the same files by these names. docs/architecture.md "State on disk" says
// what each holds.
namespace lca::state_layout {

inline constexpr const char* kObject = "ibu.json";            // the object (ObjectStore)
inline constexpr const char* kJournal = "journal.json";       // the step journal
inline constexpr const char* kWorkspace = "workspace";        // Prep's scratch files
inline constexpr const char* kPinned = "pinned.json";         // the deployment lca pinned
inline constexpr const char* kMetrics = "metrics.json";       // counters kept across restarts
inline constexpr const char* kLock = "lifecycle-agent.lock";  // one daemon per state dir
inline constexpr const char* kAutoRollbackConfig = "autorollback_config.json";
inline constexpr const char* kChildren = "children";  // process groups of running children
// The highest resourceVersion served while ibu.json was sealed (decimal, 0600).
inline constexpr const char* kResourceVersion = "resource-version";
// Which init monitor watches this boot (the agent's or the seed's own), in a stateroot.
inline constexpr const char* kInitMonitorRecord = "init-monitor.json";

// In the workspace.
inline constexpr const char* kSeedPullSecret = "seed-pull-secret";
inline constexpr const char* kPrecachePullSecret = "precache-pull-secret";
inline constexpr const char* kContainersList = "containers.list";
inline constexpr const char* kSeedManifest = "manifest.json";

}  // namespace lca::state_layout
