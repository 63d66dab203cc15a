#include "common/sweep/stop.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace lpi::sweep {

namespace {

std::atomic<int> requested{0};

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  if (requested.compare_exchange_strong(none, signal)) return;
  // The second one: at once (the store is safe at any instant).
  static const char text[] = "lpi-sweep: second stop signal, exiting now (resume with --resume)\n";
  [[maybe_unused]] const auto n = write(STDERR_FILENO, text, sizeof text - 1);
  _exit(kExitResume);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int stop_requested() {
  return requested.load();
}

void request_stop(int signal) {
  int none = 0;
  requested.compare_exchange_strong(none, signal);
}

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "a stop request";
  }
}

}  // namespace lpi::sweep
