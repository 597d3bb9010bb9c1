#pragma once
// The cleanup step Abort and Finalize run for stateroots (reference §7.2 1b, narrowed): the
// stateroots this upgrade made or left behind go, never the booted one and never a stateroot
// lca had nothing to do with (the Go operator removes every non-booted stateroot):
//  * the target stateroot rhcos_<spec version> (the new one, after an abort or a rollback);
//  * the stateroot we pivoted from, as recorded in <state-dir>/pinned.json (the old one, after
//    a successful upgrade).
// Then the deployment lca pinned is unpinned, Prep's scratch dir removed and the repo pruned.
// Errors are collected: "failed to remove N stateroots: ...". The row "stateroots" of
// kCleanupSteps (cleanup.cpp) runs RemoveUpgradeStateroots, declared in cleanup.hpp.
#include "agent/controller/handlers/cleanup.hpp"
