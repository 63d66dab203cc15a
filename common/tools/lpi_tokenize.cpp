// lpi-tokenize --tokenizer FILE [--decode]
//   Encodes each stdin line (without its '\n') to space-separated ids, one
//   output line per input line; with --decode, reads space-separated ids per
//   line and prints the decoded text. Exit 2 on usage errors, 1 on data errors.
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer.hpp"

namespace {

constexpr const char* kUsage = "usage: lpi-tokenize --tokenizer FILE [--decode]\n";

int usage_error(const std::string& message) {
  std::cerr << "lpi-tokenize: " << message << "\n" << kUsage;
  return 2;
}

// Space-separated ids of one line; false (with `error` set) on a bad field.
bool parse_ids(const std::string& line, std::vector<int32_t>& ids, std::string& error) {
  std::istringstream in(line);
  std::string field;
  while (in >> field) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(field.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > INT32_MAX) {
      error = "\"" + field + "\" is not a token id";
      return false;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path;
  bool decode = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--tokenizer" && i + 1 < argc) {
      tokenizer_path = argv[++i];
    } else if (arg.rfind("--tokenizer=", 0) == 0) {
      tokenizer_path = arg.substr(12);
    } else if (arg == "--decode") {
      decode = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      return usage_error("unexpected argument \"" + arg + "\"");
    }
  }
  if (tokenizer_path.empty()) return usage_error("--tokenizer FILE is required");

  try {
    const auto tok = lpi::tokenizer::Tokenizer::from_file(tokenizer_path);
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(std::cin, line)) {
      ++line_no;
      if (decode) {
        std::vector<int32_t> ids;
        std::string error;
        if (!parse_ids(line, ids, error)) {
          std::cerr << "lpi-tokenize: line " << line_no << ": " << error << "\n";
          return 1;
        }
        std::cout << tok.decode(ids) << '\n';
      } else {
        const auto ids = tok.encode(line);
        for (std::size_t k = 0; k < ids.size(); ++k) std::cout << (k ? " " : "") << ids[k];
        std::cout << '\n';
      }
    }
    std::cout.flush();
    if (!std::cout) {
      std::cerr << "lpi-tokenize: error writing the output\n";
      return 1;
    }
  } catch (const lpi::tokenizer::TokenizerError& e) {
    std::cerr << "lpi-tokenize: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
