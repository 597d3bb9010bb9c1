// The object store (persistence, generation/resourceVersion, merge patch, admission, watch) and
// the step journal, on real files in a temp dir.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "agent/api/conditions.hpp"
#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

Errc CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return Errc::kInternal;
}

TEST(ObjectStore, CreatesDefaultObjectAndPersistsIt0600In0700Dir) {
  test::TempDir tmp;
  ObjectStore store(tmp / "state");
  const auto obj = store.Get();
  EXPECT_EQ(obj.metadata.name, "upgrade");
  EXPECT_EQ(obj.metadata.generation, 1);
  EXPECT_EQ(obj.metadata.resource_version, "1");
  EXPECT_EQ(obj.spec.stage, api::Stage::kIdle);
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "state/ibu.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((tmp / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ObjectStore again(tmp / "state");
  EXPECT_EQ(again.Get(), obj);
}

TEST(ObjectStore, SpecPatchBumpsGenerationMetadataPatchOnlyResourceVersion) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  auto r = store.ApplyMergePatch(Json::parse(
      R"({"spec":{"stage":"Prep","seedImageRef":{"version":"4.15.2","image":"quay.io/a/b:c"}}})"));
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.object.metadata.generation, 2);
  EXPECT_EQ(r.object.metadata.resource_version, "2");
  EXPECT_EQ(r.object.spec.seed_image_ref.image, "quay.io/a/b:c");
  r = store.ApplyMergePatch(Json::parse(R"({"metadata":{"annotations":{"a":"1"}}})"));
  EXPECT_EQ(r.object.metadata.generation, 2);
  EXPECT_EQ(r.object.metadata.resource_version, "3");
  r = store.ApplyMergePatch(Json::parse(R"({"metadata":{"annotations":{"a":null}}})"));
  EXPECT_TRUE(r.object.metadata.annotations.empty());
  // A patch that changes nothing writes nothing.
  r = store.ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Prep"}})"));
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.object.metadata.resource_version, "4");
  // Survives a restart.
  ObjectStore again(tmp.path());
  EXPECT_EQ(again.Get(), store.Get());
}

TEST(ObjectStore, RejectedPatchesChangeNothingOnDisk) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  const std::string before = ReadFile(tmp / "ibu.json");
  const std::vector<std::pair<const char*, Errc>> cases = {
      {R"({"status":{"conditions":[]}})", Errc::kForbidden},
      {R"({"spec":{"stage":"Deploy"}})", Errc::kInvalid},
      {R"({"metadata":{"name":"other"}})", Errc::kInvalid},
      {R"({"metadata":{"generation":9}})", Errc::kInvalid},
      {R"({"metadata":{"resourceVersion":"999"},"spec":{"stage":"Prep"}})", Errc::kConflict},
      {R"({"spec":{"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":-5}}})", Errc::kInvalid},
      {R"({"spec":{"seedImageRef":{"image":"has space"}}})", Errc::kInvalid},
      {R"({"bogus":1})", Errc::kInvalid},
      {R"([1,2])", Errc::kInvalid},
  };
  for (const auto& [patch, code] : cases) {
    EXPECT_EQ(CodeOf([&] { store.ApplyMergePatch(Json::parse(patch)); }), code) << patch;
  }
  EXPECT_EQ(ReadFile(tmp / "ibu.json"), before);
  EXPECT_EQ(store.Get().metadata.resource_version, "1");
}

TEST(ObjectStore, ResourceVersionPreconditionMatches) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  auto r = store.ApplyMergePatch(
      Json::parse(R"({"metadata":{"resourceVersion":"1"},"spec":{"stage":"Prep"}})"));
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.object.metadata.resource_version, "2");
}

TEST(ObjectStore, FailedWriteLeavesMemoryAndDiskAsBefore) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  const std::string before = ReadFile(tmp / "ibu.json");
  SetFailpoint("atomic-write.before-rename", "error");
  EXPECT_EQ(CodeOf([&] { store.ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Prep"}})")); }),
            Errc::kInternal);
  SetFailpoint("atomic-write.before-rename", "");
  EXPECT_EQ(ReadFile(tmp / "ibu.json"), before);
  EXPECT_EQ(store.Get().spec.stage, api::Stage::kIdle);
  EXPECT_EQ(store.Get().metadata.resource_version, "1");
}

TEST(ObjectStore, CorruptFileIsAnErrorNotASilentReset) {
  test::TempDir tmp;
  WriteFileAtomic(tmp / "ibu.json", "{not json", 0600);
  try {
    ObjectStore store(tmp.path());
    FAIL() << "loaded a corrupt file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((tmp / "ibu.json").string()), std::string::npos);
  }
}

TEST(ObjectStore, StaleTempFilesAreRemovedAtStart) {
  test::TempDir tmp;
  { ObjectStore store(tmp.path()); }
  WriteFileAtomic(tmp / ".ibu.json.tmp.deadbeef", "partial", 0600);
  ObjectStore store(tmp.path());
  EXPECT_FALSE(std::filesystem::exists(tmp / ".ibu.json.tmp.deadbeef"));
}

TEST(ObjectStore, ClientChangeHookFiresOnlyOnChange) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  int calls = 0;
  store.SetClientChangeHook([&] { ++calls; });
  store.ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Prep"}})"));
  store.ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Prep"}})"));
  store.Update([](api::ImageBasedUpgrade& o) { o.metadata.annotations["x"] = "y"; });
  EXPECT_EQ(calls, 1);
}

TEST(ObjectStore, WaitForChangeWakesOnUpdateAndShutdown) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  const uint64_t v = store.ResourceVersion();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    store.Update([](api::ImageBasedUpgrade& o) { o.metadata.annotations["x"] = "y"; });
  });
  EXPECT_EQ(store.WaitForChange(v, std::chrono::seconds(5)), v + 1);
  writer.join();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    store.Shutdown();
  });
  const auto t0 = std::chrono::steady_clock::now();
  store.WaitForChange(v + 1, std::chrono::seconds(5));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  stopper.join();
}

// An agent write that changes the object: an annotation with a running count.
void Touch(ObjectStore& store) {
  store.Update([](api::ImageBasedUpgrade& o) {
    std::string& n = o.metadata.annotations["n"];
    n = std::to_string(n.empty() ? 1 : std::stoi(n) + 1);
  });
}

uint64_t Rv(const ObjectStore& store) { return std::stoull(store.Get().metadata.resource_version); }

// The host's stateroots A and B, each with its own state dir, as the agent in each sees them.
class TwoStaterootsTest : public ::testing::Test {
 protected:
  test::TempDir tmp_;
  std::filesystem::path a_ = tmp_ / "a";
  std::filesystem::path b_ = tmp_ / "b";
  std::vector<std::filesystem::path> peers_ = {a_, b_};

  static void HandTo(const ObjectStore& from, const std::filesystem::path& dir) {
    EnsureDir(dir, 0700);
    WriteFileAtomic(dir / "ibu.json", ToPrettyJson(api::ToJson(from.Get())), 0600);
  }
  // The pivot in `from`: the object handed over, one more write, the seal, one write in memory.
  static uint64_t Pivot(ObjectStore& from, const std::filesystem::path& to) {
    HandTo(from, to);
    Touch(from);
    from.SealForNextBoot(from.Get());
    Touch(from);
    return from.ResourceVersion();
  }
};

// Every boot starts above every version served before it, whatever record it finds: the object
// handed over before the pivot, or the sealed record the init monitor rewrote in place.
TEST_F(TwoStaterootsTest, ResourceVersionNeverGoesBackAcrossBoots) {
  uint64_t served = 0;
  {
    ObjectStore store(a_, peers_);
    for (int i = 0; i < 3; ++i) Touch(store);
    served = Pivot(store, b_);
    EXPECT_EQ(Rv(store), served);
    EXPECT_EQ(ReadFileIfExists(a_ / "resource-version"), std::to_string(served));
  }
  {
    ObjectStore store(b_, peers_);  // the pivot boot
    EXPECT_EQ(Rv(store), served + 1);
    EXPECT_EQ(store.Get().metadata.annotations.at("n"), "3") << "the handed-over object";
    EXPECT_EQ(Json::parse(*ReadFileIfExists(b_ / "ibu.json"))["metadata"]["resourceVersion"],
              std::to_string(served + 1))
        << "persisted at the version it is served with";
    for (int i = 0; i < 5; ++i) Touch(store);
    // The init monitor records the failure in A's sealed record, leaving its version.
    auto record = api::FromJson(Json::parse(*ReadFileIfExists(a_ / "ibu.json")));
    record.metadata.annotations["monitor"] = "timed out";
    WriteFileAtomic(a_ / "ibu.json", ToPrettyJson(api::ToJson(record)), 0600);
    served = Rv(store);
  }
  {
    ObjectStore store(a_, peers_);  // the automatic rollback's boot
    EXPECT_EQ(Rv(store), served + 1);
    EXPECT_EQ(store.Get().metadata.annotations.at("monitor"), "timed out");
    served = Pivot(store, b_);  // a second upgrade
  }
  {
    ObjectStore store(b_, peers_);
    EXPECT_EQ(Rv(store), served + 1);
    HandTo(store, a_);  // a manual rollback hands the object back, then goes on writing
    Touch(store);
    served = Rv(store);
  }
  ObjectStore store(a_, peers_);
  EXPECT_EQ(Rv(store), served + 1);
  // A restart with nothing newer elsewhere keeps the version and writes nothing.
  const auto before = ReadFileIfExists(a_ / "ibu.json");
  ObjectStore again(a_, peers_);
  EXPECT_EQ(Rv(again), served + 1);
  EXPECT_EQ(ReadFileIfExists(a_ / "ibu.json"), before);
}

TEST(ObjectStore, UnreadablePeerOnlyWarns) {
  test::TempDir tmp;
  EnsureDir(tmp / "peer", 0700);
  WriteFileAtomic(tmp / "peer/ibu.json", "{not json", 0600);
  ObjectStore store(tmp / "state", {tmp / "peer", tmp / "missing"});
  EXPECT_EQ(store.Get().metadata.resource_version, "1");
}

// While the host reboots for the pivot no patch is accepted, so the served object offers no
// next stage, whatever the agent's later writes compute.
TEST(ObjectStore, SealedObjectOffersNoNextStage) {
  test::TempDir tmp;
  ObjectStore store(tmp.path());
  store.Update([](api::ImageBasedUpgrade& o) {
    o.status = api::Status{};
    o.status->valid_next_stages = {api::Stage::kIdle};
  });
  auto record = store.Get();
  record.metadata.annotations["record"] = "next boot";
  const uint64_t before = store.ResourceVersion();
  store.SealForNextBoot(record);
  EXPECT_TRUE(store.Sealed());
  EXPECT_GT(store.ResourceVersion(), before) << "watchers see the change";
  EXPECT_TRUE(store.Get().status->valid_next_stages.empty());
  store.Update([](api::ImageBasedUpgrade& o) {
    o.status->valid_next_stages = {api::Stage::kIdle};
    o.metadata.annotations["later"] = "x";
  });
  EXPECT_TRUE(store.Get().status->valid_next_stages.empty());
  EXPECT_EQ(CodeOf([&] { store.ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Idle"}})")); }),
            Errc::kConflict);
  // The disk keeps the next boot's record, with its own list and an older version.
  const Json disk = Json::parse(*ReadFileIfExists(tmp / "ibu.json"));
  EXPECT_EQ(disk["metadata"]["annotations"]["record"], "next boot");
  EXPECT_EQ(disk["status"]["validNextStages"], Json::array({"Idle"}));
  EXPECT_LT(std::stoull(disk["metadata"]["resourceVersion"].get<std::string>()),
            store.ResourceVersion());
}

TEST(StepJournal, RecordsStepsAndSurvivesRestart) {
  test::TempDir tmp;
  {
    StepJournal j(tmp.path());
    j.Start("prep.stateroot.import", Json{{"repo", "/var/tmp/x"}});
    j.Done("prep.stateroot.import");
    j.Start("prep.stateroot.deploy");
  }
  StepJournal j(tmp.path());
  ASSERT_EQ(j.steps().size(), 2u);
  EXPECT_TRUE(j.IsDone("prep.stateroot.import"));
  EXPECT_EQ(j.Find("prep.stateroot.import")->data["repo"], "/var/tmp/x");
  ASSERT_NE(j.Interrupted(), nullptr);
  EXPECT_EQ(j.Interrupted()->name, "prep.stateroot.deploy");
  j.Fail("prep.stateroot.deploy", "boom");
  EXPECT_EQ(j.Interrupted(), nullptr);
  EXPECT_EQ(j.Find("prep.stateroot.deploy")->error, "boom");
  j.Clear();
  EXPECT_TRUE(j.steps().empty());
  EXPECT_FALSE(std::filesystem::exists(tmp / "journal.json"));
}

TEST(StepJournal, UnknownVersionIsRefused) {
  test::TempDir tmp;
  WriteFileAtomic(tmp / "journal.json", R"({"version":7,"steps":[]})", 0600);
  try {
    StepJournal j(tmp.path());
    FAIL() << "accepted version 7";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("journal version 7 is not supported"), std::string::npos);
  }
}

TEST(StepJournal, FailpointFiresAfterTheStepIsJournaled) {
  test::TempDir tmp;
  StepJournal j(tmp.path());
  SetFailpoint("step.abort.workspace", "error");
  EXPECT_THROW(j.Start("abort.workspace"), Error);
  SetFailpoint("step.abort.workspace", "");
  StepJournal reloaded(tmp.path());
  ASSERT_NE(reloaded.Interrupted(), nullptr);
  EXPECT_EQ(reloaded.Interrupted()->name, "abort.workspace");
}

}  // namespace
}  // namespace lca
