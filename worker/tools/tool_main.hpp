// The common main() of the Boost.Program_options tools: runs the tool and
// turns a usage error into exit code 2 and any other error into exit code 1,
// each with one line on stderr that starts with the tool's name.
#pragma once

#include <boost/program_options/errors.hpp>

#include <exception>
#include <iostream>

namespace lpi::tools {

template <class Body>
int run_tool(const char* name, Body&& body) {
  try {
    return body();
  } catch (const boost::program_options::error& e) {
    std::cerr << name << ": " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace lpi::tools
