#!/usr/bin/env bash
# The body of the lpi-sweep batch jobs (olmoe-1b-7b.sbatch, olmo-7b.sbatch,
# sweep-tiny-olmoe.sbatch; docs/CLUSTER.md). Inside a Slurm allocation it
# starts the sweep of JOB into STORE, or resumes STORE when it exists, with
# one srun task per rank: rank 0 the coordinator, the others worker daemons.
# When lpi-sweep exits 75 (stopped by SIGTERM: the time limit's --signal, or
# scancel --signal=TERM; the units in flight finished) the job requeues itself
# and the next allocation resumes the store. Any other exit status is the
# job's (docs/RELIABILITY.md).
#
#   sweep.sh JOB.ini STORE.h5 [lpi-sweep options, e.g. --model.revisions=DIR]
#
# Environment: LPI_BUILD_DIR (default: the repository's build/), LPI_SRUN_MPI
# (srun's --mpi plugin, default pmix).
#
# The ranks are srun tasks, not mpirun's children: a signal Slurm sends to the
# job's steps (scancel --signal, --signal=SIG@TIME) reaches every rank, and
# the batch shell, which requeues, is left alone. Under mpirun the ranks on
# the batch node belong to the batch step, which those signals skip, and a
# SIGTERM to mpirun itself ends its ranks within seconds (docs/CLUSTER.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "[$(date -u +%FT%TZ)] sweep.sh, job ${SLURM_JOB_ID:-?} run ${SLURM_RESTART_COUNT:-0}: $*"; }

# All in one function that exits, read whole before it runs: bash reads a
# script as it goes, and this file may change (git pull) while a job runs it.
main() {
  local usage="usage: sweep.sh JOB.ini STORE.h5 [lpi-sweep options]"
  local job=${1:?$usage} store=${2:?$usage}
  shift 2
  local lpi_sweep="${LPI_BUILD_DIR:-$root/build}/bin/lpi-sweep" what rc=0
  local -a args srun_args

  if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "sweep.sh: SLURM_JOB_ID is not set: run it inside a batch job (sbatch deploy/slurm/NAME.sbatch)" >&2
    exit 2
  fi
  if [ ! -x "$lpi_sweep" ]; then
    echo "sweep.sh: $lpi_sweep not found: build it (deploy/build.sh lpi-sweep) or set LPI_BUILD_DIR" >&2
    exit 2
  fi

  # A store that exists is resumed with the job it records (and the same
  # options, which a requeued job passes again); a leftover STORE.partial (a
  # start killed while creating the store) is replaced by a new start.
  if [ -e "$store" ]; then
    what=resume
    args=(--resume --store "$store")
    say "resuming $store ($("$lpi_sweep" --status --store "$store" | sed -n 's|^\(units done [0-9/]*\).*|\1|p'))"
  else
    if [ ! -f "$job" ]; then
      echo "sweep.sh: job file $job not found" >&2
      exit 2
    fi
    what=start
    args=(--job "$job" --store "$store")
    say "starting $store from $job"
  fi
  # A rank that dies (kill -9, OOM) ends the step through PMIx, as mpirun would;
  # a rank's normal exit must not end the others while they close the store.
  srun_args=(--mpi="${LPI_SRUN_MPI:-pmix}" --kill-on-bad-exit=0)
  # srun does not take sbatch's --cpus-per-task from the environment (Slurm >= 22.05).
  if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then srun_args+=(--cpus-per-task="$SLURM_CPUS_PER_TASK"); fi
  say "srun ${srun_args[*]} lpi-sweep ${args[*]} $*: ${SLURM_NTASKS:-1} ranks on ${SLURM_JOB_NODELIST:-?}"

  srun "${srun_args[@]}" "$lpi_sweep" "${args[@]}" "$@" || rc=$?
  case $rc in
  0)
    say "lpi-sweep ($what) exited 0: every unit of $store is done"
    ;;
  75)
    say "lpi-sweep ($what) exited 75, stopped by SIGTERM: requeueing job $SLURM_JOB_ID to resume $store"
    if ! scontrol requeue "$SLURM_JOB_ID"; then
      say "scontrol requeue $SLURM_JOB_ID failed: resume by submitting this job again"
    fi
    ;;
  *)
    say "lpi-sweep ($what) exited $rc (1 units failed or left undone, 2 bad input, 3 aborted," \
      "4 a rank hung; docs/RELIABILITY.md): not requeued"
    ;;
  esac
  exit "$rc"
}

main "$@"
