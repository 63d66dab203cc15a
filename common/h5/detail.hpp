// Internal to lpi::h5: the one checked wrapper every C call goes through.
#pragma once

#include <string>

#include "common/h5/h5.hpp"

namespace lpi::h5::detail {

// HDF5's current error stack as text (and cleared).
std::string error_stack();

// Throws E("HDF5: <what> <object> in <file> failed" + stack, ...) when rc < 0; returns rc.
template <class E>
int64_t check(int64_t rc, const std::string& what, const std::string& file,
              const std::string& object) {
  if (rc >= 0) return rc;
  const auto stack = error_stack();
  std::string message = "HDF5: " + what;
  if (!object.empty()) message += " " + object + (file.empty() ? "" : " in " + file);
  if (object.empty() && !file.empty()) message += " " + file;
  throw E(message + " failed" + stack, file, object, stack);
}

// A simple dataspace of the given dims.
Handle space(const std::vector<int64_t>& dims, const Location& at, const std::string& object);

}  // namespace lpi::h5::detail
