// What the Boost.Program_options tools share: parsing with --help, and a main()
// that turns a usage error into exit code 2 and any other error into exit
// code 1, each with one line on stderr that starts with the tool's name.
#pragma once

#include <boost/program_options.hpp>

#include <exception>
#include <iostream>

namespace lpi::tools {

// Parses the command line into `opts`' variables; prints the help and returns
// false for --help (the tool then exits 0). Usage errors throw.
inline bool parse_command_line(int argc, char** argv,
                               const boost::program_options::options_description& opts,
                               boost::program_options::variables_map* out = nullptr) {
  namespace po = boost::program_options;
  po::variables_map local;
  po::variables_map& vm = out ? *out : local;
  po::store(po::parse_command_line(argc, argv, opts), vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

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
