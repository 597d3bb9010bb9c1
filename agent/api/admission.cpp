#include "agent/api/admission.hpp"

#include <algorithm>

#include "agent/api/conditions.hpp"
#include "common/error.hpp"
#include "common/text_excerpt.hpp"

namespace lca::api {
namespace {

Error Invalid(const std::string& field, const std::string& what) {
  return Error(Errc::kInvalid, field + ": " + what);
}

void CheckRefs(const std::vector<ConfigMapRef>& refs, const std::string& field) {
  for (size_t i = 0; i < refs.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    if (refs[i].name.empty()) throw Invalid(f + ".name", "Required value");
    if (refs[i].ns.empty()) throw Invalid(f + ".namespace", "Required value");
  }
}

// The CRD's pattern ^([a-z0-9]+://)?[\S]+$ checked in one pass: the optional scheme holds no
// whitespace, so the pattern accepts exactly the non-empty strings without whitespace. (std::regex
// recursed once per character and a 30,000-character image crashed the daemon.)
bool ImageMatchesPattern(std::string_view image) {
  if (image.empty()) return false;
  for (char c : image) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return false;
  }
  return true;
}

bool IdleTrue(const ImageBasedUpgrade& ibu) {
  if (!ibu.status) return false;
  const Condition* c = FindCondition(*ibu.status, ctype::kIdle);
  return c != nullptr && c->status == kTrue;
}

}  // namespace

void ValidateObject(const ImageBasedUpgrade& ibu) {
  if (ibu.metadata.name != kName) {
    throw Invalid("metadata.name",
                  "Invalid value: \"" + Excerpt(ibu.metadata.name) +
                      "\": ImageBasedUpgrade is a singleton and must be named 'upgrade'");
  }
  const auto& seed = ibu.spec.seed_image_ref;
  // minLength 1 applies when set.
  if (!seed.image.empty() && !ImageMatchesPattern(seed.image)) {
    throw Invalid("spec.seedImageRef.image",
                  "Invalid value: \"" + Excerpt(seed.image) +
                      "\": must be an image pull spec without whitespace, e.g. "
                      "quay.io/org/seed:4.15.2");
  }
  if (seed.pull_secret_ref && seed.pull_secret_ref->name.empty()) {
    throw Invalid("spec.seedImageRef.pullSecretRef.name", "Required value");
  }
  CheckRefs(ibu.spec.oadp_content, "spec.oadpContent");
  CheckRefs(ibu.spec.extra_manifests, "spec.extraManifests");
  if (ibu.spec.auto_rollback_on_failure &&
      ibu.spec.auto_rollback_on_failure->init_monitor_timeout_seconds.value_or(0) < 0) {
    throw Invalid(
        "spec.autoRollbackOnFailure.initMonitorTimeoutSeconds",
        "Invalid value: " +
            std::to_string(*ibu.spec.auto_rollback_on_failure->init_monitor_timeout_seconds) +
            ": should be greater than or equal to 0");
  }
}

void AdmitUpdate(const ImageBasedUpgrade& old_obj, const ImageBasedUpgrade& new_obj) {
  if (new_obj.metadata.name != old_obj.metadata.name) {
    throw Invalid("metadata.name", "field is immutable");
  }
  if (new_obj.metadata.uid != old_obj.metadata.uid) {
    throw Invalid("metadata.uid", "field is immutable");
  }
  // The upgrade's inputs are frozen while a stage runs; going to Idle (abort) unfreezes them.
  const bool may_change =
      !old_obj.status || IdleTrue(old_obj) || new_obj.spec.stage == Stage::kIdle;
  if (may_change) return;
  auto frozen = [&](bool unchanged, const char* field) {
    if (!unchanged) {
      throw Invalid(field,
                    "can only be changed while the ImageBasedUpgrade is Idle or together with "
                    "spec.stage: Idle; see status.conditions for what is running");
    }
  };
  frozen(new_obj.spec.seed_image_ref == old_obj.spec.seed_image_ref, "spec.seedImageRef");
  frozen(new_obj.spec.oadp_content == old_obj.spec.oadp_content, "spec.oadpContent");
  frozen(new_obj.spec.extra_manifests == old_obj.spec.extra_manifests, "spec.extraManifests");
  frozen(new_obj.spec.auto_rollback_on_failure == old_obj.spec.auto_rollback_on_failure,
         "spec.autoRollbackOnFailure");
}

std::vector<std::string> StageWarnings(const ImageBasedUpgrade& old_obj,
                                       const ImageBasedUpgrade& new_obj) {
  if (!old_obj.status || new_obj.spec.stage == old_obj.spec.stage) return {};
  const auto& valid = old_obj.status->valid_next_stages;
  if (std::find(valid.begin(), valid.end(), new_obj.spec.stage) != valid.end()) return {};
  std::string list;
  for (Stage s : valid) list += (list.empty() ? "" : ", ") + std::string(StageName(s));
  return {"spec.stage: \"" + std::string(StageName(new_obj.spec.stage)) +
          "\" is not in status.validNextStages [" + list +
          "]; the agent will report InvalidTransition"};
}

}  // namespace lca::api
