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
