#pragma once
// What the Kubernetes API server enforces for this CRD (schema + CEL rules, §1.1), enforced by
// the daemon's own API since it is the API server in the embedded default.
#include <string>
#include <vector>

#include "agent/api/ibu.hpp"

namespace lca::api {

// Schema checks on one object: name is "upgrade", image pattern, initMonitorTimeoutSeconds >= 0,
// required fields of refs. Throws lca::Error kInvalid naming the field.
void ValidateObject(const ImageBasedUpgrade& ibu);

// Update rules between the stored object and a proposed one (after ValidateObject). Throws
// lca::Error kInvalid naming the field and what to do.
//
// spec.stage is deliberately not refused here: a stage outside status.validNextStages is
// stored and answered by the controller with InvalidTransition and the reference message, so
// the refusal is recorded in status where every watcher sees it; the API adds a warning for
// the caller (StageWarnings).
void AdmitUpdate(const ImageBasedUpgrade& old_obj, const ImageBasedUpgrade& new_obj);

// Kubernetes-style warnings for an accepted update (sent as HTTP Warning headers).
std::vector<std::string> StageWarnings(const ImageBasedUpgrade& old_obj,
                                       const ImageBasedUpgrade& new_obj);

}  // namespace lca::api
