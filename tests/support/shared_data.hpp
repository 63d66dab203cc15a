// Test fixtures that live outside the project, in ../shared/data (the relations
// data set and the OLMo tokenizer). Tests read them in place; when the folder is
// absent they skip with a printed reason, except under CI (CI=true) where the
// absence is a failure.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "lpi/lpi_config.hpp"

namespace lpi::test {

inline std::filesystem::path shared_data_dir() {
  if (const char* env = std::getenv("LPI_SHARED_DATA")) return env;
  return LPI_SHARED_DATA_DIR;
}

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace lpi::test

// Resolves `var` to shared_data_dir()/relative, or skips (fails under CI=true)
// when that path does not exist.
#define LPI_REQUIRE_SHARED_DATA(var, relative)                                           \
  const std::filesystem::path var = ::lpi::test::shared_data_dir() / (relative);         \
  if (!std::filesystem::exists(var)) {                                                   \
    if (::lpi::test::running_in_ci()) {                                                  \
      FAIL() << "shared fixture missing under CI: " << var.string();                     \
    }                                                                                    \
    GTEST_SKIP() << "shared fixture not found (" << var.string()                         \
                 << "); set LPI_SHARED_DATA to the shared/data folder to run this test"; \
  }
