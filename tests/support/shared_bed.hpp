#pragma once
// A test suite sharing one expensive bed (a registry with images, a seed, ...) of type Bed: built
// once in SetUpTestSuite after `before` (e.g. EnterPrivateVarLib), deleted in
// TearDownTestSuite. A test of the suite fails at SetUp, with the reason, when it could not be
// built.
#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <string>

namespace lca::test {

template <typename Bed, void (*before)() = nullptr>
class SharedBedSuite : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    ::setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1);
    try {
      if (before != nullptr) before();
      bed = new Bed();
    } catch (const std::exception& e) {
      bed_error = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete bed;
    bed = nullptr;
  }
  inline static Bed* bed = nullptr;
  inline static std::string bed_error;

 protected:
  void SetUp() override {
    if (bed == nullptr) GTEST_FAIL() << "building the bed failed: " << bed_error;
  }
};

}  // namespace lca::test
