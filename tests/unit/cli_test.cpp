// lcactl's pure parts: kubectl's JSONPath, the early end of `wait`, the unknown-command words,
// and the completion scripts generated from the command tree (run in a real bash; golden).
// To accept a deliberate change of a golden script, run with LCA_UPDATE_GOLDEN=1 and review
// the diff of tests/golden/.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#include "agent/cli/app.hpp"
#include "agent/cli/completion.hpp"
#include "agent/cli/jsonpath.hpp"
#include "agent/cli/wait_condition.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::cli {
namespace {

const std::filesystem::path kSrc = LCA_TEST_SOURCE_DIR;

Json Fixture() {
  return ParseJson(ReadFile(kSrc / "tests/fixtures/status-prep-in-progress.json"), "fixture");
}

std::string JP(const std::string& tmpl, const Json& j = Fixture()) {
  return jsonpath::Template::Parse(tmpl).Execute(j);
}

TEST(JsonPath, FieldsIndexesWildcardsAndText) {
  EXPECT_EQ(JP("{.metadata.name}"), "upgrade");
  EXPECT_EQ(JP("{$.spec.stage}"), "Prep");
  EXPECT_EQ(JP("stage={.spec.stage}\n"), "stage=Prep\n");
  EXPECT_EQ(JP("{.status.conditions[0].type}"), "Idle");
  EXPECT_EQ(JP("{.status.conditions[-1].type}"), "PrepInProgress");
  EXPECT_EQ(JP("{.status.conditions[*].type}"), "Idle PrepInProgress");
  EXPECT_EQ(JP("{.status.conditions[0:1].type}"), "Idle");
  EXPECT_EQ(JP("{.status.validNextStages}"), R"(["Idle"])");
  EXPECT_EQ(JP("{.status.observedGeneration}"), "2");
  EXPECT_EQ(JP("{.spec.seedImageRef.pullSecretRef}"), R"({"name":"seed-pull-secret"})");
  EXPECT_EQ(JP("{.metadata.annotations['image-cleanup.lca.openshift.io/on-prep']}"), "Disabled");
  EXPECT_EQ(JP("{..phase}"), "Stateroot");
  EXPECT_EQ(JP("{.spec.seedImageRef.*}"),
            R"(4.15.2 registry.example.com:5000/ibu/seed:4.15.2 {"name":"seed-pull-secret"})");
  EXPECT_EQ(JP(R"({.metadata.name}{"\t"}{.spec.stage}{"\n"})"), "upgrade\tPrep\n");
  // Missing keys print nothing (kubectl's --allow-missing-template-keys=true).
  EXPECT_EQ(JP("[{.status.nothing}]"), "[]");
  EXPECT_EQ(JP("{.status.conditions[7].type}"), "");
}

TEST(JsonPath, FiltersAsTheProductDocsUseThem) {
  EXPECT_EQ(JP(R"({.status.conditions[?(@.type=="PrepInProgress")].status})"), "True");
  EXPECT_EQ(JP(R"({.status.conditions[?(@.type == "Idle")].reason})"), "InProgress");
  EXPECT_EQ(JP(R"({.status.conditions[?(@.type=='Idle')].message})"), "In progress");
  EXPECT_EQ(JP(R"({.status.conditions[?(@.type!="Idle")].type})"), "PrepInProgress");
  EXPECT_EQ(JP(R"({.status.conditions[?(@.type=="PrepCompleted")].status})"), "");
  EXPECT_EQ(JP(R"({.status.conditions[?(@.observedGeneration>=2)].type})"), "Idle PrepInProgress");
  EXPECT_EQ(JP(R"({.status.conditions[?(@.observedGeneration<2)].type})"), "");
  EXPECT_EQ(JP(R"({.spec.oadpContent[?(@.name)].name})"), "");
  EXPECT_EQ(JP(R"({.status.history[?(@.stage=="Prep")].phases[0].phase})"), "Stateroot");
}

TEST(JsonPath, RangeOverItems) {
  const Json list = {{"kind", "List"}, {"items", Json::array({Fixture(), Fixture()})}};
  EXPECT_EQ(JP(R"({range .items[*]}{.metadata.name}={.spec.stage}{"\n"}{end})", list),
            "upgrade=Prep\nupgrade=Prep\n");
  EXPECT_EQ(JP(R"({range .status.conditions[*]}{.type}:{.status};{end})"),
            "Idle:False;PrepInProgress:True;");
}

TEST(JsonPath, SyntaxErrorsNameTheOffset) {
  auto error = [](const std::string& t) {
    try {
      jsonpath::Template::Parse(t);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(parsed)");
  };
  EXPECT_EQ(error("{.status"), "jsonpath: unclosed '{' at offset 0");
  EXPECT_EQ(error("x{.a[}"), "jsonpath: expected an index, a slice, '*' or a filter at offset 5");
  EXPECT_EQ(error("{.a[?(@.b==zzz)]}"),
            "jsonpath: expected a quoted string, a number, true, false or null at offset 11");
  EXPECT_EQ(error("{range .items[*]}{.a}"), "jsonpath: {range} without {end} at offset 21");
  EXPECT_EQ(error("{end}"), "jsonpath: {end} without {range} at offset 0");
  EXPECT_EQ(error("{.a b}"), "jsonpath: unexpected text after the path at offset 4");
}

Json WithConditions(const std::string& conditions, int generation = 3, int observed = 3) {
  return Json::parse(R"({"metadata":{"generation":)" + std::to_string(generation) +
                     R"(},"status":{"observedGeneration":)" + std::to_string(observed) +
                     R"(,"conditions":)" + conditions + "}}");
}

TEST(CheckWait, MetWaitingAndFailedStages) {
  const auto prep = ParseWaitFor("condition=PrepCompleted");
  EXPECT_EQ(prep.want, "True");
  const std::string in_progress =
      R"([{"type":"PrepInProgress","status":"True","reason":"InProgress","observedGeneration":3}])";
  EXPECT_EQ(CheckWait(WithConditions(in_progress), prep).verdict, WaitVerdict::kWaiting);
  const std::string failed =
      R"([{"type":"PrepInProgress","status":"False","reason":"Failed","observedGeneration":3,)"
      R"("message":"Prep failed"},{"type":"PrepCompleted","status":"False","reason":"Failed",)"
      R"("observedGeneration":3,"message":"failed to validate IBU spec: no seed"}])";
  const auto check = CheckWait(WithConditions(failed), prep);
  EXPECT_EQ(check.verdict, WaitVerdict::kFailed);
  EXPECT_EQ(check.failure,
            "Prep failed: PrepCompleted is False (Failed): failed to validate IBU spec: no seed");
  // Waiting for the failure itself is met, not failed.
  EXPECT_EQ(
      CheckWait(WithConditions(failed), ParseWaitFor("condition=PrepCompleted=false")).verdict,
      WaitVerdict::kMet);
  // A failure the agent has not yet reconsidered after a new patch does not count.
  EXPECT_EQ(CheckWait(WithConditions(failed, 4, 3), prep).verdict, WaitVerdict::kWaiting);
  EXPECT_EQ(CheckWait(WithConditions(failed, 4, 4), prep).verdict, WaitVerdict::kWaiting);
  // Another stage's failure is not this one's.
  EXPECT_EQ(CheckWait(WithConditions(failed), ParseWaitFor("condition=UpgradeCompleted")).verdict,
            WaitVerdict::kWaiting);
  const std::string invalid =
      R"([{"type":"UpgradeInProgress","status":"False","reason":"InvalidTransition",)"
      R"("observedGeneration":3,"message":"Previous stage not succeeded"}])";
  EXPECT_EQ(CheckWait(WithConditions(invalid), ParseWaitFor("condition=UpgradeCompleted")).failure,
            "Upgrade failed: UpgradeInProgress is False (InvalidTransition): Previous stage not "
            "succeeded");
  const std::string abort_failed =
      R"([{"type":"Idle","status":"False","reason":"AbortFailed","observedGeneration":3,)"
      R"("message":"failed to delete all the backup CRs"}])";
  EXPECT_EQ(CheckWait(WithConditions(abort_failed), ParseWaitFor("condition=Idle")).verdict,
            WaitVerdict::kFailed);
  EXPECT_THROW(ParseWaitFor("delete"), Error);
  EXPECT_THROW(ParseWaitFor("condition="), Error);
}

TEST(UnknownCommand, KubectlWords) {
  Lcactl lcactl;
  auto unknown = [&](std::vector<std::string> args) {
    return UnknownCommand(lcactl.app(), args).value_or("(known)");
  };
  EXPECT_EQ(unknown({"foo"}), "error: unknown command \"foo\" for \"lcactl\"");
  EXPECT_EQ(unknown({"--socket", "get", "foo"}), "error: unknown command \"foo\" for \"lcactl\"");
  EXPECT_EQ(unknown({"seed", "destroy"}), "error: unknown command \"destroy\" for \"lcactl seed\"");
  EXPECT_EQ(unknown({"-n", "x", "get", "ibu", "upgrade"}), "(known)");
  EXPECT_EQ(unknown({"--socket=/x", "get", "pods"}), "(known)");  // get's own error
  EXPECT_EQ(unknown({"recovery", "backup", "--dir", "x"}), "(known)");
  std::ostringstream out, err;
  EXPECT_EQ(lcactl.Main({"frobnicate"}, out, err), 1);
  EXPECT_EQ(
      err.str(),
      "error: unknown command \"frobnicate\" for \"lcactl\"\nRun 'lcactl --help' for usage.\n");
}

TEST(NormalizeArgs, ShortOptionsWithEqualsAsKubectlTakesThem) {
  Lcactl lcactl;
  using V = std::vector<std::string>;
  EXPECT_EQ(NormalizeArgs(lcactl.app(), {"patch", "ibu", "upgrade", R"(-p={"spec": {}})",
                                         "--type=merge", "-n=x"}),
            (V{"patch", "ibu", "upgrade", "-p", R"({"spec": {}})", "--type=merge", "-n", "x"}));
  EXPECT_EQ(NormalizeArgs(lcactl.app(), {"get", "ibu", "-o=jsonpath={.a}", "-w"}),
            (V{"get", "ibu", "-o", "jsonpath={.a}", "-w"}));
  // A flag, a value that merely starts with "-x=", and what follows "--" stay as they are.
  EXPECT_EQ(NormalizeArgs(lcactl.app(), {"get", "-w=true", "--", "-o=x"}),
            (V{"get", "-w=true", "--", "-o=x"}));
  EXPECT_EQ(NormalizeArgs(lcactl.app(), {"patch", "-p", "-p=1"}), (V{"patch", "-p", "-p=1"}));
}

TEST(Namespace, AcceptedOnEveryCommand) {
  Lcactl lcactl;
  for (const auto& cmd : CompletionCommands(lcactl.app())) {
    EXPECT_NE(std::find(cmd.value_options.begin(), cmd.value_options.end(), "-n"),
              cmd.value_options.end())
        << "'" << cmd.path << "' takes no -n";
    EXPECT_NE(std::find(cmd.options.begin(), cmd.options.end(), "--namespace"), cmd.options.end())
        << cmd.path;
  }
}

void ExpectGolden(const std::string& got, const std::string& golden) {
  const auto path = kSrc / "tests/golden" / golden;
  if (std::getenv("LCA_UPDATE_GOLDEN") != nullptr) {
    WriteFileAtomic(path, got, 0644);
    return;
  }
  const auto want = ReadFileIfExists(path);
  ASSERT_TRUE(want.has_value()) << "missing " << path << "; got:\n" << got;
  EXPECT_EQ(got, *want) << "differs from " << path;
}

TEST(Completion, EveryCommandAndOptionOfTheTreeIsInBothScripts) {
  Lcactl lcactl;
  const std::string bash = BashCompletion(lcactl.app());
  const std::string zsh = ZshCompletion(lcactl.app());
  const auto cmds = CompletionCommands(lcactl.app());
  std::set<std::string> paths;
  for (const auto& c : cmds) paths.insert(c.path);
  for (const char* must : {"init-monitor", "precache", "mirrors", "mirrors render", "recovery",
                           "recovery backup", "recovery restore", "seed create", "must-gather",
                           "completion", "get", "patch", "annotate", "wait", "status", "version"}) {
    EXPECT_EQ(paths.count(must), 1u) << must << " is not in the tree";
  }
  // Each command's line of __lcactl_options lists all its options.
  for (const std::string* script : {&bash, &zsh}) {
    const auto fn = script->find("__lcactl_options() {");
    ASSERT_NE(fn, std::string::npos);
    for (const auto& c : cmds) {
      const std::string head = "    \"" + c.path + "\") echo \"";
      const auto at = script->find(head, fn);
      ASSERT_NE(at, std::string::npos) << "'" << c.path << "' missing";
      const auto begin = at + head.size();
      const std::string words = " " + script->substr(begin, script->find('"', begin) - begin) + " ";
      for (const auto& o : c.options) {
        EXPECT_NE(words.find(" " + o + " "), std::string::npos) << c.path << " " << o;
      }
    }
  }
  ExpectGolden(bash, "completion.bash");
  ExpectGolden(zsh, "completion.zsh");
}

// What bash offers after `lcactl <words>` (the last word is the one being completed).
std::string BashOffers(const std::string& script, const std::vector<std::string>& words) {
  test::TempDir dir;
  WriteFileAtomic(dir / "lcactl.bash", script, 0644);
  std::string array = "lcactl";
  for (const auto& w : words) array += " '" + w + "'";
  const std::string program = "source '" + (dir / "lcactl.bash").string() + "'; COMP_WORDS=(" +
                              array + "); COMP_CWORD=" + std::to_string(words.size()) +
                              "; _lcactl; printf '%s\\n' \"${COMPREPLY[*]}\"";
  SystemProcessRunner runner;
  const auto r = RunChecked(runner, ProcessSpec{.argv = {"bash", "--norc", "-c", program}});
  return r.stdout_data.substr(0, r.stdout_data.find('\n'));
}

TEST(Completion, BashCompletesCommandsOptionsAndValues) {
  Lcactl lcactl;
  const std::string script = BashCompletion(lcactl.app());
  const std::string top = BashOffers(script, {""});
  for (const char* c : {"get", "init-monitor", "precache", "mirrors", "recovery", "completion"}) {
    EXPECT_NE((" " + top + " ").find(std::string(" ") + c + " "), std::string::npos) << top;
  }
  EXPECT_EQ(BashOffers(script, {"rec"}), "recovery");
  EXPECT_EQ(BashOffers(script, {"recovery", ""}), "backup restore");
  EXPECT_EQ(BashOffers(script, {"get", "i"}),
            "ibu imagebasedupgrade imagebasedupgrades imagebasedupgrades.lca.openshift.io "
            "imagebasedupgrade.lca.openshift.io ibu/upgrade "
            "imagebasedupgrade.lca.openshift.io/upgrade");
  EXPECT_EQ(BashOffers(script, {"get", "ibu", "u"}), "upgrade");
  EXPECT_EQ(BashOffers(script, {"get", "ibu", "-o", "j"}), "json jsonpath=");
  EXPECT_EQ(BashOffers(script, {"--socket", "/x", "status", "--w"}), "--watch");
  EXPECT_EQ(BashOffers(script, {"completion", ""}), "bash zsh");
  EXPECT_EQ(BashOffers(script, {"mirrors", "render", "--insecure"}), "--insecure-registry");
  EXPECT_EQ(BashOffers(script, {"annotate", "ibu", "upgrade", "lca.openshift.io/m"}),
            "lca.openshift.io/manual-cleanup-done=");
  // A flag takes no value: the next word is the resource again.
  EXPECT_EQ(BashOffers(script, {"get", "-w", "ib"}), "ibu ibu/upgrade");
  EXPECT_EQ(BashOffers(script, {"wait", "ibu", "--for", "condition=P"}), "condition=PrepCompleted");
}

// What zsh's compadd gets after `lcactl <words>` (compadd and compdef stubbed: the script's
// own logic runs in a real zsh; FILES when it hands over to _files).
std::string ZshOffers(const std::string& script, const std::vector<std::string>& words) {
  test::TempDir dir;
  WriteFileAtomic(dir / "_lcactl", script, 0644);
  std::string array = "lcactl";
  for (const auto& w : words) array += " '" + w + "'";
  const std::string program =
      "compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -r -- \"$*\"; }; "
      "_files() { print -r -- FILES; }; source '" +
      (dir / "_lcactl").string() + "'; words=(" + array +
      "); CURRENT=" + std::to_string(words.size() + 1) + "; _lcactl";
  SystemProcessRunner runner;
  const auto r = RunChecked(runner, ProcessSpec{.argv = {"zsh", "-f", "-c", program}});
  return r.stdout_data.substr(0, r.stdout_data.find('\n'));
}

TEST(Completion, ZshCompletesLikeBash) {
  Lcactl lcactl;
  const std::string script = ZshCompletion(lcactl.app());
  const std::string top = ZshOffers(script, {""});
  for (const char* c : {"get", "init-monitor", "precache", "mirrors", "recovery", "completion"}) {
    EXPECT_NE((" " + top + " ").find(std::string(" ") + c + " "), std::string::npos) << top;
  }
  // compadd filters by the prefix itself: the script hands it every candidate.
  EXPECT_EQ(ZshOffers(script, {"recovery", ""}), "backup restore");
  EXPECT_EQ(ZshOffers(script, {"get", "ibu", ""}), "upgrade");
  EXPECT_EQ(ZshOffers(script, {"get", "ibu", "-o", ""}), "json yaml wide name jsonpath=");
  EXPECT_EQ(ZshOffers(script, {"seed", "create", "--sysroot", ""}), "FILES");
  EXPECT_EQ(ZshOffers(script, {"completion", ""}), "bash zsh");
  EXPECT_NE(ZshOffers(script, {"status", "-"}).find("--watch"), std::string::npos);
}

}  // namespace
}  // namespace lca::cli
