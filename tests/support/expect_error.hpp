// expect_error<E>(f, parts): runs f and expects an exception of type E whose
// message contains every one of `parts` (a file name, a field, a shape...).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lpi::test {

template <typename E, typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
    }
  }
}

}  // namespace lpi::test
