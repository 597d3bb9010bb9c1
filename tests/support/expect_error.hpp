#pragma once
// Runs f and returns the message of the lca::Error it throws (expecting Errc::kInvalid, the
// code for bad input), or "accepted" when it throws nothing, so a test compares whole messages.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/error.hpp"

namespace lca::test {

inline std::string InvalidMessage(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    return e.what();
  }
  return "accepted";
}

}  // namespace lca::test
