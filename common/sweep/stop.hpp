// Stopping well: SIGTERM or SIGINT (what Slurm sends at preemption and
// before the time limit, and what Ctrl-C sends) asks the sweep to stop. The
// coordinator then assigns nothing more, lets the units in flight finish (and
// be flagged), records the stop in the run history, closes the store and
// exits kExitResume, which says "resume me" (distinct from failure). A
// second signal ends the process at once, with the same status: what is
// flagged is complete whatever the instant.
#pragma once

namespace lpi::sweep {

constexpr int kExitResume = 75;  // EX_TEMPFAIL: stopped before the end; resume

// Installs the handlers of SIGTERM and SIGINT (once per process).
void install_stop_handlers();
// The signal that asked for a stop (0: none).
int stop_requested();
// Asks for a stop as if `signal` had arrived (a worker's request, tests).
void request_stop(int signal);
const char* signal_name(int signal);  // "SIGTERM", "SIGINT", "signal N"

}  // namespace lpi::sweep
