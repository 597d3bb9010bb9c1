// The IBU model and its rules, table-driven from the reference (§1.1-§2.8, §10).
#include <gtest/gtest.h>

#include "agent/api/admission.hpp"
#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/api/ibu.hpp"
#include "agent/api/stage_rules.hpp"
#include "common/error.hpp"
#include "tests/support/expect_error.hpp"

namespace lca::api {
namespace {

const TimePoint kT0 = ParseTime("2026-01-01T00:00:00Z");
const TimePoint kT1 = ParseTime("2026-01-01T00:05:00Z");

struct C {
  std::string type, status, reason, message = "m";
};

ImageBasedUpgrade Obj(Stage stage, std::vector<C> conds) {
  ImageBasedUpgrade ibu = NewDefault(kT0, "uid-1");
  ibu.spec.stage = stage;
  ibu.spec.seed_image_ref.version = "4.15.2";
  ibu.status = Status{};
  for (const auto& c : conds) {
    ibu.status->conditions.push_back(Condition{c.type, c.status, 1, kT0, c.reason, c.message});
  }
  return ibu;
}

// gtest parameter names must be identifiers.
std::string TestName(std::string n) {
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

std::string Names(const std::vector<Stage>& stages) {
  std::string out;
  for (Stage s : stages) out += (out.empty() ? "" : ",") + std::string(StageName(s));
  return out;
}

// ---- JSON -------------------------------------------------------------------------------------

TEST(IbuJson, FullObjectRoundTripsWithExactFieldNames) {
  ImageBasedUpgrade ibu = NewDefault(kT0, "u");
  ibu.metadata.generation = 4;
  ibu.metadata.resource_version = "17";
  ibu.metadata.annotations["lca.openshift.io/trigger-reconcile"] = "1";
  ibu.metadata.labels["a"] = "b";
  ibu.spec.stage = Stage::kUpgrade;
  ibu.spec.seed_image_ref = {"4.15.2", "quay.io/x/seed:4.15.2", PullSecretRef{"seed-secret"}};
  ibu.spec.oadp_content = {{"oadp-cm", "openshift-adp"}};
  ibu.spec.extra_manifests = {{"em", "openshift-lifecycle-agent"}};
  ibu.spec.auto_rollback_on_failure = AutoRollbackOnFailure{600};
  Status st;
  st.observed_generation = 4;
  st.conditions = {{"UpgradeInProgress", "True", 4, kT1, "InProgress", "In progress"}};
  st.valid_next_stages = {Stage::kIdle};
  st.rollback_availability_expiration = kT1;
  st.history = {
      {Stage::kPrep, kT0, kT1, {{"Stateroot", kT0, kT1}, {"Precache", kT1, std::nullopt}}}};
  ibu.status = st;

  const Json j = ToJson(ibu);
  EXPECT_EQ(j["apiVersion"], "lca.openshift.io/v1");
  EXPECT_EQ(j["kind"], "ImageBasedUpgrade");
  EXPECT_EQ(j["spec"]["seedImageRef"]["pullSecretRef"]["name"], "seed-secret");
  EXPECT_EQ(j["spec"]["oadpContent"][0]["namespace"], "openshift-adp");
  EXPECT_EQ(j["spec"]["autoRollbackOnFailure"]["initMonitorTimeoutSeconds"], 600);
  EXPECT_EQ(j["status"]["validNextStages"][0], "Idle");
  EXPECT_EQ(j["status"]["rollbackAvailabilityExpiration"], "2026-01-01T00:05:00Z");
  EXPECT_EQ(j["status"]["conditions"][0]["lastTransitionTime"], "2026-01-01T00:05:00Z");
  EXPECT_EQ(j["status"]["history"][0]["phases"][1].contains("completionTime"), false);
  EXPECT_EQ(FromJson(j), ibu);
  EXPECT_EQ(FromJson(Json::parse(j.dump())), ibu);
}

TEST(IbuJson, DefaultObjectHasOnlyStageIdleAndEmptySeedRef) {
  const Json j = ToJson(NewDefault(kT0, "u"));
  EXPECT_EQ(j["spec"], Json::parse(R"({"stage":"Idle","seedImageRef":{}})"));
  EXPECT_FALSE(j.contains("status"));
  EXPECT_EQ(j["metadata"]["name"], "upgrade");
}

TEST(IbuJson, StrictDecodingNamesTheField) {
  auto err = [](const char* text) {
    try {
      FromJson(Json::parse(text));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(err(R"({"spec":{"stage":"Upgrdae"}})"),
            "spec.stage: Unsupported value: \"Upgrdae\": supported values: \"Idle\", \"Prep\", "
            "\"Upgrade\", \"Rollback\"");
  EXPECT_EQ(err(R"({"spec":{"seedImageRf":{}}})"), "spec.seedImageRf: unknown field");
  EXPECT_EQ(err(R"({"spec":{"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":"5"}}})"),
            "spec.autoRollbackOnFailure.initMonitorTimeoutSeconds: must be an integer");
  EXPECT_EQ(err(R"({"spec":{"extraManifests":[{"name":"a","namespace":"b","x":1}]}})"),
            "spec.extraManifests[0].x: unknown field");
  EXPECT_EQ(err(R"({"kind":"Pod"})"), "kind: must be ImageBasedUpgrade");
  EXPECT_EQ(err(R"({"status":{"conditions":[{"lastTransitionTime":"yesterday"}]}})"),
            "status.conditions[0].lastTransitionTime: 'yesterday' is not an RFC 3339 UTC time like "
            "2024-01-31T10:00:00Z");
}

TEST(IbuJson, InitMonitorTimeoutDefaultsWhenAbsentOrZero) {
  Spec s;
  EXPECT_EQ(InitMonitorTimeoutSeconds(s), 1800);
  s.auto_rollback_on_failure = AutoRollbackOnFailure{0};
  EXPECT_EQ(InitMonitorTimeoutSeconds(s), 1800);
  s.auto_rollback_on_failure = AutoRollbackOnFailure{5};
  EXPECT_EQ(InitMonitorTimeoutSeconds(s), 5);
}

// ---- Conditions (§1.5, §2.7) -------------------------------------------------------------------

TEST(Conditions, IdleReorderWhenStatusChangesAndNotLast) {
  Status st;
  st.conditions = {{"Idle", "True", 1, kT0, "Idle", "Idle"},
                   {"PrepInProgress", "True", 1, kT0, "InProgress", "x"}};
  ConditionWriter(st, 2, kT1).Set("Idle", "False", "Aborting", "Aborting");
  ASSERT_EQ(st.conditions.size(), 2u);
  EXPECT_EQ(st.conditions.back().type, "Idle");
  EXPECT_EQ(st.conditions.back().last_transition_time, kT1);
  EXPECT_EQ(st.conditions.back().observed_generation, 2);
}

TEST(Conditions, IdleMovesToEndEvenWithoutStatusChange) {
  Status st;
  st.conditions = {{"Idle", "False", 1, kT0, "InProgress", "In progress"},
                   {"PrepInProgress", "True", 1, kT0, "InProgress", "x"}};
  ConditionWriter(st, 1, kT1).Set("Idle", "False", "Aborting", "Aborting");
  EXPECT_EQ(st.conditions.back().type, "Idle");
  EXPECT_EQ(st.conditions.back().last_transition_time, kT0);  // status unchanged
}

TEST(Conditions, IdleNoReorderWhenAlreadyLast) {
  Status st;
  st.conditions = {{"PrepInProgress", "True", 1, kT0, "InProgress", "x"},
                   {"Idle", "True", 1, kT0, "Idle", "Idle"}};
  ConditionWriter(st, 1, kT1).Set("Idle", "False", "Aborting", "Aborting");
  EXPECT_EQ(st.conditions[0].type, "PrepInProgress");
  EXPECT_EQ(st.conditions[1].type, "Idle");
}

TEST(Conditions, NonIdleWithoutStatusChangeStaysInPlace) {
  Status st;
  st.conditions = {{"PrepInProgress", "True", 1, kT0, "InProgress", "a"},
                   {"Idle", "False", 1, kT0, "InProgress", "In progress"}};
  ConditionWriter(st, 1, kT1).PrepInProgress("pulling 3/10");
  EXPECT_EQ(st.conditions[0].type, "PrepInProgress");
  EXPECT_EQ(st.conditions[0].message, "pulling 3/10");
  EXPECT_EQ(st.conditions[0].last_transition_time, kT0);
}

TEST(Conditions, CompositeSettersWriteBothTypesInOrder) {
  struct Case {
    const char* name;
    std::function<void(ConditionWriter&)> set;
    std::vector<C> want;  // in list order
  };
  const std::vector<Case> cases = {
      {"prep failed",
       [](ConditionWriter& w) { w.PrepFailed("boom"); },
       {{"PrepCompleted", "False", "Failed", "Prep failed"},
        {"PrepInProgress", "False", "Failed", "boom"}}},
      {"prep completed",
       [](ConditionWriter& w) { w.PrepCompleted("done!"); },
       {{"PrepCompleted", "True", "Completed", "done!"},
        {"PrepInProgress", "False", "Completed", "Prep completed"}}},
      {"upgrade failed",
       [](ConditionWriter& w) { w.UpgradeFailed("x"); },
       {{"UpgradeCompleted", "False", "Failed", "Upgrade failed"},
        {"UpgradeInProgress", "False", "Failed", "x"}}},
      {"upgrade completed",
       [](ConditionWriter& w) { w.UpgradeCompleted(); },
       {{"UpgradeCompleted", "True", "Completed", "Upgrade completed"},
        {"UpgradeInProgress", "False", "Completed", "Upgrade completed"}}},
      {"rollback requested",
       [](ConditionWriter& w) { w.RollbackRequested(); },
       {{"UpgradeCompleted", "False", "Failed", "Rollback requested"},
        {"UpgradeInProgress", "False", "Failed", "Rollback requested"}}},
      {"rollback failed",
       [](ConditionWriter& w) { w.RollbackFailed("y"); },
       {{"RollbackCompleted", "False", "Failed", "Rollback failed"},
        {"RollbackInProgress", "False", "Failed", "y"}}},
      {"rollback completed",
       [](ConditionWriter& w) { w.RollbackCompleted(); },
       {{"RollbackCompleted", "True", "Completed", "Rollback completed"},
        {"RollbackInProgress", "False", "Completed", "Rollback completed"}}},
      {"invalid transition",
       [](ConditionWriter& w) { w.InvalidTransition(Stage::kRollback, "z"); },
       {{"RollbackInProgress", "False", "InvalidTransition", "z"}}},
      {"blocked",
       [](ConditionWriter& w) { w.Blocked(Stage::kPrep, "IPC is not idle"); },
       {{"PrepInProgress", "False", "Blocked", "IPC is not idle"}}},
  };
  for (const auto& c : cases) {
    Status st;
    ConditionWriter w(st, 3, kT0);
    c.set(w);
    ASSERT_EQ(st.conditions.size(), c.want.size()) << c.name;
    for (size_t i = 0; i < c.want.size(); ++i) {
      EXPECT_EQ(st.conditions[i].type, c.want[i].type) << c.name;
      EXPECT_EQ(st.conditions[i].status, c.want[i].status) << c.name;
      EXPECT_EQ(st.conditions[i].reason, c.want[i].reason) << c.name;
      EXPECT_EQ(st.conditions[i].message, c.want[i].message) << c.name;
      EXPECT_EQ(st.conditions[i].observed_generation, 3) << c.name;
    }
  }
}

TEST(Conditions, ResetKeepsOnlyIdleTrue) {
  ImageBasedUpgrade ibu = Obj(Stage::kIdle, {{"Idle", "False", "Aborting"},
                                             {"PrepCompleted", "False", "Failed"},
                                             {"PrepInProgress", "False", "Failed"}});
  ibu.status->rollback_availability_expiration = kT1;
  ResetToIdle(ibu, kT1);
  ASSERT_EQ(ibu.status->conditions.size(), 1u);
  EXPECT_EQ(ibu.status->conditions[0].type, "Idle");
  EXPECT_EQ(ibu.status->conditions[0].status, "True");
  EXPECT_EQ(ibu.status->conditions[0].reason, "Idle");
  EXPECT_EQ(ibu.status->conditions[0].message, "Idle");
  EXPECT_FALSE(ibu.status->rollback_availability_expiration);
}

// ---- validNextStages: every row of §2.5 plus the §10 cases --------------------------------------

struct NextCase {
  const char* name;
  Stage spec;
  std::vector<C> conds;
  bool after_pivot;
  const char* want;
};

class ValidNextStagesTest : public ::testing::TestWithParam<NextCase> {};

TEST_P(ValidNextStagesTest, Row) {
  const auto& c = GetParam();
  ImageBasedUpgrade ibu = Obj(c.spec, c.conds);
  EXPECT_EQ(Names(ValidNextStages(ibu, c.after_pivot)), c.want) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    TransitionTable, ValidNextStagesTest,
    ::testing::Values(
        NextCase{"initial IBU creation - no status conditions", Stage::kIdle, {}, false, "Idle"},
        NextCase{"idle completed", Stage::kIdle, {{"Idle", "True", "Idle"}}, false, "Prep"},
        NextCase{"prep in progress",
                 Stage::kPrep,
                 {{"Idle", "False", "InProgress"}, {"PrepInProgress", "True", "InProgress"}},
                 false,
                 "Idle"},
        NextCase{"prep failed",
                 Stage::kPrep,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "False", "Failed"},
                  {"PrepInProgress", "False", "Failed"}},
                 false,
                 "Idle"},
        NextCase{"prep completed",
                 Stage::kPrep,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "True", "Completed"},
                  {"PrepInProgress", "False", "Completed"}},
                 false,
                 "Idle,Upgrade"},
        NextCase{"upgrade in progress pre-pivot",
                 Stage::kUpgrade,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "True", "Completed"},
                  {"UpgradeInProgress", "True", "InProgress"}},
                 false,
                 "Idle"},
        NextCase{"upgrade failed pre-pivot or after auto rollback",
                 Stage::kUpgrade,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "True", "Completed"},
                  {"UpgradeCompleted", "False", "Failed"},
                  {"UpgradeInProgress", "False", "Failed"}},
                 false,
                 "Idle"},
        NextCase{"upgrade in progress post-pivot",
                 Stage::kUpgrade,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "True", "Completed"},
                  {"UpgradeInProgress", "True", "InProgress"}},
                 true,
                 "Rollback"},
        NextCase{"upgrade failed post-pivot",
                 Stage::kUpgrade,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "True", "Completed"},
                  {"UpgradeCompleted", "False", "Failed"},
                  {"UpgradeInProgress", "False", "Failed"}},
                 true,
                 "Rollback"},
        NextCase{"upgrade completed",
                 Stage::kUpgrade,
                 {{"Idle", "False", "InProgress"},
                  {"PrepCompleted", "True", "Completed"},
                  {"UpgradeCompleted", "True", "Completed"},
                  {"UpgradeInProgress", "False", "Completed"}},
                 true,
                 "Idle,Rollback"},
        NextCase{"rollback in progress (after pivot)",
                 Stage::kRollback,
                 {{"Idle", "False", "InProgress"},
                  {"UpgradeCompleted", "False", "Failed"},
                  {"RollbackInProgress", "True", "InProgress"}},
                 true,
                 ""},
        NextCase{"rollback in progress (pivoted back)",
                 Stage::kRollback,
                 {{"Idle", "False", "InProgress"},
                  {"UpgradeCompleted", "False", "Failed"},
                  {"RollbackInProgress", "True", "InProgress"}},
                 false,
                 ""},
        NextCase{"rollback completed",
                 Stage::kRollback,
                 {{"Idle", "False", "InProgress"},
                  {"UpgradeCompleted", "False", "Failed"},
                  {"RollbackCompleted", "True", "Completed"},
                  {"RollbackInProgress", "False", "Completed"}},
                 false,
                 "Idle"},
        NextCase{"rollback failed",
                 Stage::kRollback,
                 {{"Idle", "False", "InProgress"},
                  {"RollbackCompleted", "False", "Failed"},
                  {"RollbackInProgress", "False", "Failed"}},
                 true,
                 ""},
        NextCase{"rollback failed after successful upgrade",
                 Stage::kRollback,
                 {{"Idle", "False", "InProgress"},
                  {"UpgradeCompleted", "True", "Completed"},
                  {"RollbackCompleted", "False", "Failed"}},
                 false,
                 ""},
        NextCase{"aborting",
                 Stage::kIdle,
                 {{"PrepInProgress", "True", "InProgress"}, {"Idle", "False", "Aborting"}},
                 false,
                 ""},
        NextCase{"finalizing",
                 Stage::kIdle,
                 {{"UpgradeCompleted", "True", "Completed"}, {"Idle", "False", "Finalizing"}},
                 true,
                 ""},
        NextCase{"abort failed", Stage::kIdle, {{"Idle", "False", "AbortFailed"}}, false, ""},
        NextCase{"finalize failed", Stage::kIdle, {{"Idle", "False", "FinalizeFailed"}}, false, ""},
        NextCase{
            "blocked by IPConfig", Stage::kPrep, {{"Idle", "False", "Blocked"}}, false, "Prep"},
        NextCase{"idle false with another reason",
                 Stage::kIdle,
                 {{"Idle", "False", "InProgress"}},
                 false,
                 ""}),
    [](const auto& param_info) { return TestName(param_info.param.name); });

// ---- Is a transition requested? (§2.3, TestIsTransitionRequested) -----------------------------

TEST(TransitionRequested, Cases) {
  struct Case {
    const char* name;
    Stage spec;
    std::vector<C> conds;
    bool want;
  };
  const std::vector<Case> cases = {
      {"idle on fresh object", Stage::kIdle, {}, true},
      {"idle when idle", Stage::kIdle, {{"Idle", "True", "Idle"}}, false},
      {"idle while aborting", Stage::kIdle, {{"Idle", "False", "Aborting"}}, false},
      {"idle while finalizing", Stage::kIdle, {{"Idle", "False", "Finalizing"}}, false},
      {"idle while abort failed", Stage::kIdle, {{"Idle", "False", "AbortFailed"}}, false},
      {"idle while finalize failed", Stage::kIdle, {{"Idle", "False", "FinalizeFailed"}}, false},
      {"idle when prep in progress",
       Stage::kIdle,
       {{"Idle", "False", "InProgress"}, {"PrepInProgress", "True", "InProgress"}},
       true},
      {"prep when idle", Stage::kPrep, {{"Idle", "True", "Idle"}}, true},
      {"prep while prep in progress",
       Stage::kPrep,
       {{"PrepInProgress", "True", "InProgress"}},
       false},
      {"prep when prep failed",
       Stage::kPrep,
       {{"PrepCompleted", "False", "Failed"}, {"PrepInProgress", "False", "Failed"}},
       false},
      {"prep when prep completed", Stage::kPrep, {{"PrepCompleted", "True", "Completed"}}, false},
      {"upgrade when upgrade failed",
       Stage::kUpgrade,
       {{"UpgradeCompleted", "False", "Failed"}},
       false},
      {"upgrade when prep completed",
       Stage::kUpgrade,
       {{"PrepCompleted", "True", "Completed"}},
       true},
      {"rollback when rollback failed",
       Stage::kRollback,
       {{"RollbackCompleted", "False", "Failed"}},
       false},
      {"rollback when upgrade completed",
       Stage::kRollback,
       {{"UpgradeCompleted", "True", "Completed"}},
       true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(IsTransitionRequested(Obj(c.spec, c.conds)), c.want) << c.name;
  }
}

// ---- Transition validation (§2.4, TestValidateStageTransisions) -------------------------------

struct ValidateCase {
  const char* name;
  Stage spec;
  std::vector<C> conds;
  bool after_pivot;
  bool want_ok;
  // the conditions afterwards, in order
  std::vector<C> want;
};

class ValidateTest : public ::testing::TestWithParam<ValidateCase> {};

TEST_P(ValidateTest, Case) {
  const auto& c = GetParam();
  ImageBasedUpgrade ibu = Obj(c.spec, c.conds);
  EXPECT_EQ(ValidateStageTransition(ibu, c.after_pivot, kT1), c.want_ok);
  ASSERT_EQ(ibu.status->conditions.size(), c.want.size());
  for (size_t i = 0; i < c.want.size(); ++i) {
    const auto& got = ibu.status->conditions[i];
    EXPECT_EQ(
        got.type + "/" + got.status + "/" + got.reason + "/" + got.message,
        c.want[i].type + "/" + c.want[i].status + "/" + c.want[i].reason + "/" + c.want[i].message)
        << "condition " << i;
  }
  EXPECT_EQ(ibu.status->valid_next_stages, ValidNextStages(ibu, c.after_pivot));
}

INSTANTIATE_TEST_SUITE_P(
    Reference, ValidateTest,
    ::testing::Values(
        ValidateCase{"fresh object to idle",
                     Stage::kIdle,
                     {},
                     false,
                     true,
                     {{"Idle", "True", "Idle", "Idle"}}},
        ValidateCase{"prep from idle",
                     Stage::kPrep,
                     {{"Idle", "True", "Idle", "Idle"}},
                     false,
                     true,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"PrepInProgress", "True", "InProgress", "In progress"}}},
        ValidateCase{
            "upgrade from idle is invalid",
            Stage::kUpgrade,
            {{"Idle", "True", "Idle", "Idle"}},
            false,
            false,
            {{"Idle", "True", "Idle", "Idle"},
             {"UpgradeInProgress", "False", "InvalidTransition", "Previous stage not succeeded"}}},
        ValidateCase{"rollback without upgrade in progress",
                     Stage::kRollback,
                     {{"Idle", "True", "Idle", "Idle"}},
                     false,
                     false,
                     {{"Idle", "True", "Idle", "Idle"},
                      {"RollbackInProgress", "False", "InvalidTransition",
                       "Upgrade not started or already finalized"}}},
        ValidateCase{
            "prep when idle completed with invalid upgrade/rollback transition",
            Stage::kPrep,
            {{"Idle", "True", "Idle", "Idle"},
             {"UpgradeInProgress", "False", "InvalidTransition", "Previous stage not succeeded"},
             {"RollbackInProgress", "False", "InvalidTransition", "x"}},
            false,
            true,
            {{"Idle", "False", "InProgress", "In progress"},
             {"PrepInProgress", "True", "InProgress", "In progress"}}},
        ValidateCase{"idle when prep in progress aborts",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"PrepInProgress", "True", "InProgress", "In progress"}},
                     false,
                     true,
                     {{"PrepInProgress", "True", "InProgress", "In progress"},
                      {"Idle", "False", "Aborting", "Aborting"}}},
        ValidateCase{"idle when upgrade failed before pivot or after uncontrolled rollback",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"PrepCompleted", "True", "Completed", "Prep completed"},
                      {"UpgradeCompleted", "False", "Failed", "Upgrade failed"},
                      {"UpgradeInProgress", "False", "Failed", "Uncontrolled rollback"}},
                     false,
                     true,
                     {{"PrepCompleted", "True", "Completed", "Prep completed"},
                      {"UpgradeCompleted", "False", "Failed", "Upgrade failed"},
                      {"UpgradeInProgress", "False", "Failed", "Uncontrolled rollback"},
                      {"Idle", "False", "Aborting", "Aborting"}}},
        ValidateCase{"idle when upgrade failed with invalid rollback transition",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"UpgradeCompleted", "False", "Failed", "Upgrade failed"},
                      {"UpgradeInProgress", "False", "Failed", "f"},
                      {"RollbackInProgress", "False", "InvalidTransition",
                       "Upgrade not started or already finalized"}},
                     false,
                     true,
                     {{"UpgradeCompleted", "False", "Failed", "Upgrade failed"},
                      {"UpgradeInProgress", "False", "Failed", "f"},
                      {"Idle", "False", "Aborting", "Aborting"}}},
        ValidateCase{"idle when upgrade completed finalizes",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"UpgradeCompleted", "True", "Completed", "Upgrade completed"},
                      {"UpgradeInProgress", "False", "Completed", "Upgrade completed"}},
                     true,
                     true,
                     {{"UpgradeCompleted", "True", "Completed", "Upgrade completed"},
                      {"UpgradeInProgress", "False", "Completed", "Upgrade completed"},
                      {"Idle", "False", "Finalizing", "Finalizing"}}},
        ValidateCase{"idle when rollback completed finalizes",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"RollbackCompleted", "True", "Completed", "Rollback completed"}},
                     false,
                     true,
                     {{"RollbackCompleted", "True", "Completed", "Rollback completed"},
                      {"Idle", "False", "Finalizing", "Finalizing"}}},
        ValidateCase{"idle when upgrade in progress after pivot",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"UpgradeInProgress", "True", "InProgress", "In progress"}},
                     true,
                     false,
                     {{"UpgradeInProgress", "True", "InProgress", "In progress"},
                      {"Idle", "False", "InvalidTransition",
                       "Transition to Idle not allowed - Rollback first"}}},
        ValidateCase{"idle when rollback in progress after pivot",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"RollbackInProgress", "True", "InProgress", "In progress"}},
                     true,
                     false,
                     {{"RollbackInProgress", "True", "InProgress", "In progress"},
                      {"Idle", "False", "InvalidTransition",
                       "Transition to Idle not allowed - Rollback is in progress"}}},
        ValidateCase{"idle when rollback in progress after pivoting back",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"RollbackInProgress", "True", "InProgress", "In progress"}},
                     false,
                     false,
                     {{"RollbackInProgress", "True", "InProgress", "In progress"},
                      {"Idle", "False", "InvalidTransition", "Abort or finalize not allowed"}}},
        ValidateCase{"idle when rollback failed (after pivoting back)",
                     Stage::kIdle,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"RollbackCompleted", "False", "Failed", "Rollback failed"},
                      {"RollbackInProgress", "False", "Failed", "r"}},
                     false,
                     false,
                     {{"RollbackCompleted", "False", "Failed", "Rollback failed"},
                      {"RollbackInProgress", "False", "Failed", "r"},
                      {"Idle", "False", "InvalidTransition",
                       "Transition to Idle not allowed - Rollback failed"}}},
        ValidateCase{"rollback when upgrade completed with invalid Idle transition",
                     Stage::kRollback,
                     {{"UpgradeCompleted", "True", "Completed", "Upgrade completed"},
                      {"UpgradeInProgress", "False", "Completed", "Upgrade completed"},
                      {"Idle", "False", "InvalidTransition",
                       "Transition to Idle not allowed - Rollback first"}},
                     true,
                     true,
                     // UpgradeInProgress keeps its place (status unchanged); UpgradeCompleted
                     // flips to False and moves to the end (§2.7).
                     {{"UpgradeInProgress", "False", "Failed", "Rollback requested"},
                      {"Idle", "False", "InProgress", "In progress"},
                      {"UpgradeCompleted", "False", "Failed", "Rollback requested"},
                      {"RollbackInProgress", "True", "InProgress", "In progress"}}},
        ValidateCase{"upgrade from prep completed",
                     Stage::kUpgrade,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"PrepCompleted", "True", "Completed", "Prep completed"},
                      {"PrepInProgress", "False", "Completed", "Prep completed"}},
                     false,
                     true,
                     {{"Idle", "False", "InProgress", "In progress"},
                      {"PrepCompleted", "True", "Completed", "Prep completed"},
                      {"PrepInProgress", "False", "Completed", "Prep completed"},
                      {"UpgradeInProgress", "True", "InProgress", "In progress"}}}),
    [](const auto& param_info) { return TestName(param_info.param.name); });

// ---- History (§2.8, history_test.go) ----------------------------------------------------------

TEST(History, StartTwiceDoesNotDuplicate) {
  Status st;
  EXPECT_TRUE(StartStageHistory(st, Stage::kPrep, kT0));
  EXPECT_FALSE(StartStageHistory(st, Stage::kPrep, kT1));
  EXPECT_TRUE(StartPhaseHistory(st, Stage::kPrep, phase::kStateroot, kT0));
  EXPECT_FALSE(StartPhaseHistory(st, Stage::kPrep, phase::kStateroot, kT1));
  ASSERT_EQ(st.history.size(), 1u);
  ASSERT_EQ(st.history[0].phases.size(), 1u);
  EXPECT_EQ(*st.history[0].start_time, kT0);
}

TEST(History, StopSetsCompletionOnceAndIgnoresUnknown) {
  Status st;
  EXPECT_FALSE(StopStageHistory(st, Stage::kUpgrade, kT0));
  EXPECT_FALSE(StopPhaseHistory(st, Stage::kUpgrade, phase::kPrePivot, kT0));
  StartStageHistory(st, Stage::kUpgrade, kT0);
  StartPhaseHistory(st, Stage::kUpgrade, phase::kPrePivot, kT0);
  EXPECT_FALSE(StopPhaseHistory(st, Stage::kUpgrade, phase::kPostPivot, kT1));
  EXPECT_TRUE(StopPhaseHistory(st, Stage::kUpgrade, phase::kPrePivot, kT1));
  EXPECT_FALSE(StopPhaseHistory(st, Stage::kUpgrade, phase::kPrePivot, kT1));
  EXPECT_TRUE(StopStageHistory(st, Stage::kUpgrade, kT1));
  EXPECT_FALSE(StopStageHistory(st, Stage::kUpgrade, kT0));
  EXPECT_EQ(*st.history[0].completion_time, kT1);
  EXPECT_EQ(*st.history[0].phases[0].completion_time, kT1);
}

TEST(History, PhaseOfUnstartedStageIsNoOp) {
  Status st;
  EXPECT_FALSE(StartPhaseHistory(st, Stage::kPrep, phase::kPrecache, kT0));
  EXPECT_TRUE(st.history.empty());
}

TEST(History, Reset) {
  Status st;
  StartStageHistory(st, Stage::kPrep, kT0);
  EXPECT_TRUE(ResetHistory(st));
  EXPECT_FALSE(ResetHistory(st));
}

// ---- Admission (§1.1) -------------------------------------------------------------------------

std::string Rejection(const std::function<void()>& f) { return test::InvalidMessage(f); }

TEST(Admission, ObjectSchema) {
  ImageBasedUpgrade ibu = NewDefault(kT0, "u");
  EXPECT_EQ(Rejection([&] { ValidateObject(ibu); }), "accepted");
  ibu.metadata.name = "other";
  EXPECT_EQ(Rejection([&] { ValidateObject(ibu); }),
            "metadata.name: Invalid value: \"other\": ImageBasedUpgrade is a singleton and must be "
            "named 'upgrade'");
  ibu.metadata.name = "upgrade";
  ibu.spec.seed_image_ref.image = "quay.io/x/seed :4.15";
  EXPECT_NE(Rejection([&] { ValidateObject(ibu); }).find("spec.seedImageRef.image: Invalid value"),
            std::string::npos);
  ibu.spec.seed_image_ref.image = "docker://quay.io/x/seed@sha256:abc";
  EXPECT_EQ(Rejection([&] { ValidateObject(ibu); }), "accepted");
  ibu.spec.auto_rollback_on_failure = AutoRollbackOnFailure{-1};
  EXPECT_EQ(Rejection([&] { ValidateObject(ibu); }),
            "spec.autoRollbackOnFailure.initMonitorTimeoutSeconds: Invalid value: -1: should be "
            "greater than or equal to 0");
  ibu.spec.auto_rollback_on_failure = AutoRollbackOnFailure{0};
  ibu.spec.extra_manifests = {{"cm", ""}};
  EXPECT_EQ(Rejection([&] { ValidateObject(ibu); }),
            "spec.extraManifests[0].namespace: Required value");
  ibu.spec.extra_manifests.clear();
  ibu.spec.seed_image_ref.pull_secret_ref = PullSecretRef{""};
  EXPECT_EQ(Rejection([&] { ValidateObject(ibu); }),
            "spec.seedImageRef.pullSecretRef.name: Required value");
}

TEST(Admission, FrozenFieldsWhileAStageRuns) {
  ImageBasedUpgrade old_obj = Obj(
      Stage::kPrep, {{"Idle", "False", "InProgress"}, {"PrepInProgress", "True", "InProgress"}});
  ImageBasedUpgrade next = old_obj;
  next.spec.seed_image_ref.version = "4.16.0";
  EXPECT_EQ(
      Rejection([&] { AdmitUpdate(old_obj, next); }),
      "spec.seedImageRef: can only be changed while the ImageBasedUpgrade is Idle or together "
      "with spec.stage: Idle; see status.conditions for what is running");
  next = old_obj;
  next.spec.extra_manifests = {{"a", "b"}};
  EXPECT_NE(Rejection([&] { AdmitUpdate(old_obj, next); }).find("spec.extraManifests"),
            std::string::npos);
  next = old_obj;
  next.spec.oadp_content = {{"a", "b"}};
  EXPECT_NE(Rejection([&] { AdmitUpdate(old_obj, next); }).find("spec.oadpContent"),
            std::string::npos);
  next = old_obj;
  next.spec.auto_rollback_on_failure = AutoRollbackOnFailure{5};
  EXPECT_NE(Rejection([&] { AdmitUpdate(old_obj, next); }).find("spec.autoRollbackOnFailure"),
            std::string::npos);
  // Together with stage Idle (an abort) the inputs may change.
  next.spec.stage = Stage::kIdle;
  EXPECT_EQ(Rejection([&] { AdmitUpdate(old_obj, next); }), "accepted");
  // Unchanged fields are fine mid-stage.
  EXPECT_EQ(Rejection([&] { AdmitUpdate(old_obj, old_obj); }), "accepted");
}

TEST(Admission, EverythingMayChangeWhenIdleOrWithoutStatus) {
  ImageBasedUpgrade idle = Obj(Stage::kIdle, {{"Idle", "True", "Idle"}});
  ImageBasedUpgrade next = idle;
  next.spec.seed_image_ref = {"4.15.2", "quay.io/x/y:z", PullSecretRef{"s"}};
  next.spec.stage = Stage::kPrep;
  EXPECT_EQ(Rejection([&] { AdmitUpdate(idle, next); }), "accepted");
  ImageBasedUpgrade fresh = NewDefault(kT0, "u");
  next = fresh;
  next.spec.seed_image_ref.version = "1";
  EXPECT_EQ(Rejection([&] { AdmitUpdate(fresh, next); }), "accepted");
}

TEST(Admission, NameAndUidAreImmutable) {
  ImageBasedUpgrade old_obj = NewDefault(kT0, "u");
  ImageBasedUpgrade next = old_obj;
  next.metadata.uid = "v";
  EXPECT_EQ(Rejection([&] { AdmitUpdate(old_obj, next); }), "metadata.uid: field is immutable");
}

TEST(Admission, StageOutsideValidNextStagesIsAcceptedWithAWarning) {
  ImageBasedUpgrade idle = Obj(Stage::kIdle, {{"Idle", "True", "Idle"}});
  idle.status->valid_next_stages = {Stage::kPrep};
  ImageBasedUpgrade next = idle;
  next.spec.stage = Stage::kUpgrade;
  EXPECT_EQ(Rejection([&] { AdmitUpdate(idle, next); }), "accepted");
  const auto w = StageWarnings(idle, next);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "spec.stage: \"Upgrade\" is not in status.validNextStages [Prep]; the agent will "
            "report InvalidTransition");
  next.spec.stage = Stage::kPrep;
  EXPECT_TRUE(StageWarnings(idle, next).empty());
}

}  // namespace
}  // namespace lca::api
