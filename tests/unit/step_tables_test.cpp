// The step tables against what people read: docs/architecture.md lists every table's steps in
// run order ("Steps"), and every persisted name is unique and stable in form.
#include "agent/controller/step_tables.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"

namespace lca {
namespace {

// "- **Prep**: `prep.a`, `prep.b`" -> {"Prep": {"prep.a", "prep.b"}}
std::map<std::string, std::vector<std::string>> DocumentedTables(const std::string& text) {
  static const std::regex kLine(R"(^- \*\*([^*]+)\*\*: (.*)$)");
  static const std::regex kName("`([^`]+)`");
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(text);
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Steps";
    std::smatch m;
    if (!in_section || !std::regex_match(line, m, kLine)) continue;
    auto& names = out[m[1]];
    const std::string list = m[2];
    for (std::sregex_iterator it(list.begin(), list.end(), kName), end; it != end; ++it) {
      names.push_back((*it)[1]);
    }
  }
  return out;
}

TEST(StepTables, ArchitectureDocListsEveryTableInRunOrder) {
  const auto documented =
      DocumentedTables(ReadFile(std::string(LCA_TEST_SOURCE_DIR) + "/docs/architecture.md"));
  const auto tables = AllStepTables();
  EXPECT_EQ(documented.size(), tables.size());
  for (const auto& t : tables) {
    auto it = documented.find(t.table);
    ASSERT_NE(it, documented.end()) << "docs/architecture.md has no line for " << t.table;
    EXPECT_EQ(it->second, t.steps) << "docs/architecture.md's " << t.table << " steps";
  }
}

TEST(StepTables, NamesAreUniquePerFailpointPrefixAndCarryTheirStage) {
  std::set<std::string> seen;
  size_t total = 0;
  for (const auto& t : AllStepTables()) {
    EXPECT_FALSE(t.steps.empty()) << t.table;
    for (const auto& s : t.steps) {
      ++total;
      EXPECT_TRUE(seen.insert(t.failpoint_prefix + s).second) << "duplicate step " << s;
      EXPECT_TRUE(std::regex_match(s, std::regex("[a-z][a-z0-9.-]*"))) << s;
      if (t.failpoint_prefix == "step.") {
        EXPECT_NE(s.find('.'), std::string::npos) << s << " has no <stage>. prefix";
      }
    }
  }
  std::cout << "step tables: " << total << " steps in " << AllStepTables().size() << " tables\n";
}

}  // namespace
}  // namespace lca
