#!/bin/bash
# The Slurm batch scripts (deploy/slurm) on a real one-node Slurm cluster that
# this test starts on localhost: munged, slurmctld and slurmd with their own
# key, socket, ports, state folders and logs in a temporary folder
# (proctrack/linuxproc, task/none, no accounting). The tiny demo's batch
# script (sweep-tiny-olmoe.sbatch) sweeps the fixture's MoE trajectory, one
# prompt per unit (560 units), with 3 ranks. The test requeues the job
# mid-run (scontrol requeue), then stops the next run with
# scancel --signal=TERM (lpi-sweep exits 75 and the job requeues itself), lets
# the third run finish, and checks: the store equals the uninterrupted
# reference bit for bit and is complete, its run history holds three runs of
# which two were stopped by SIGTERM, the job's log (appended across runs)
# shows each run and the self-requeue, and Slurm counts two restarts. A
# requeued job waits for its begin time (about 2 minutes by default); the
# test moves it to now. Every daemon started here is stopped on exit.
# Exit 77 (skip) where slurm-wlm and munge cannot be installed or started; a
# failure instead under CI=true.
# Environment: LPI_TOOLS_DIR (bin/), SWEEP_WORK (the sweep fixtures' folder:
# moe/, ref-moe.h5), SLURM_WORK (scratch), PYTHON.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${LPI_TOOLS_DIR:?}
work=${SWEEP_WORK:?}
out=${SLURM_WORK:?}
py=${PYTHON:-/usr/bin/python3}
check() { "$py" "$root/tests/sweep/check_store.py" "$@"; }
fail() {
  echo "FAIL: $*"
  exit 1
}
skip() {
  if [ "${CI:-}" = true ]; then fail "(CI=true, no skipping) $*"; fi
  echo "SKIP: $*"
  exit 77
}
now() { date +%s; }
t0=$(now)
say() { echo "[$(($(now) - t0)) s] $*"; }

if [ ! -f "$work/ref-moe.h5" ] || [ ! -d "$work/moe" ]; then
  fail "no fixture in $work (sweep.train, sweep.single_process)"
fi
[ "$(id -u)" = 0 ] || skip "slurmd and munged are started as root here; run as root"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
  ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } ||
    skip "slurm-wlm and munge are not installed and apt-get could not install them"
fi

tmp=$(mktemp -d /tmp/lpi-slurm.XXXXXX)
chmod 755 "$tmp" # munged wants its socket's folder searchable by all
mkdir -p "$out"
rm -rf "${out:?}"/*
jobid=""
stop_daemons() {
  set +e
  if [ -n "$jobid" ] && [ -f "$tmp/slurmctld.pid" ]; then
    scancel "$jobid" 2>/dev/null
    for _ in $(seq 100); do
      squeue -h -j "$jobid" 2>/dev/null | grep -q . || break
      sleep 0.1
    done
  fi
  local d p
  for d in slurmd slurmctld munged; do
    p=$(cat "$tmp/$d.pid" 2>/dev/null) || continue
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$p" 2>/dev/null && kill -9 "$p"
  done
  cp "$tmp"/*.log "$out"/ 2>/dev/null
  rm -rf "$tmp"
}
trap stop_daemons EXIT
# A daemon's log on failure.
logs() { for f in "$@"; do echo "--- $f"; tail -n 15 "$tmp/$f" 2>/dev/null; done; }

# munge: a key of our own, its socket, pid, seed and log files here.
dd if=/dev/urandom of="$tmp/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge.key"
munge_socket=$tmp/munge.socket
munged --key-file="$tmp/munge.key" --socket="$munge_socket" --pid-file="$tmp/munged.pid" \
  --log-file="$tmp/munged.log" --seed-file="$tmp/munged.seed" ||
  skip "munged did not start: $(logs munged.log)"
munge -S "$munge_socket" -n | unmunge -S "$munge_socket" >/dev/null ||
  skip "munge cannot encode and decode a credential: $(logs munged.log)"

# slurm.conf: this host as the one node (its CPUs, memory, sockets as slurmd -C
# sees them), ports that are free now, state and spool folders here.
node=$(slurmd -C | head -n 1)
case $node in NodeName=*) ;; *) skip "slurmd -C printed '$node', not a node line" ;; esac
host=${node#NodeName=}
host=${host%% *}
read -r ctld_port slurmd_port < <("$py" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
mkdir -p "$tmp/state" "$tmp/spool"
: >"$tmp/plugstack.conf"
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=lpitest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_socket
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$tmp/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=lpitest Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" || skip "slurmctld did not start: $(logs slurmctld.log)"
slurmd -f "$SLURM_CONF" || skip "slurmd did not start: $(logs slurmd.log)"
for _ in $(seq 300); do
  [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ] && break
  sleep 0.1
done
[ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ] ||
  skip "the node did not come up idle: $(sinfo -N 2>&1) $(logs slurmctld.log slurmd.log)"
say "munged, slurmctld (port $ctld_port) and slurmd (port $slurmd_port) up; node $host idle"

# The job's state (PENDING, RUNNING, COMPLETED, ...) and a field of scontrol's.
field() { scontrol show job "$jobid" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
# wait_state STATE SECONDS
wait_state() {
  local s
  for _ in $(seq $(($2 * 10))); do
    s=$(field JobState)
    [ "$s" = "$1" ] && return 0
    sleep 0.1
  done
  fail "job $jobid is $s after $2 s, expected $1: $(scontrol show job "$jobid") $(tail -n 5 "$log" 2>/dev/null)"
}
done_units() {
  "$py" -c 'import h5py,sys; print(int(h5py.File(sys.argv[1],"r")["units/done"][...].sum()))' "$store"
}
# Until no rank of the run on $store is left (Slurm may show the job pending
# while the ranks of the run it ended still close the store).
wait_ranks_gone() {
  for _ in $(seq 600); do
    pgrep -f -- "lpi-sweep .*--store $store( |\$)" >/dev/null || return 0
    sleep 0.1
  done
  fail "ranks of the run on $store still alive after 60 s"
}
# Once the job is back in the queue and its ranks are gone: what it waits for.
requeued() {
  wait_state PENDING 60
  wait_ranks_gone
  local begin
  begin=$(date -d "$(field StartTime)" +%s)
  say "job $jobid requeued: pending (reason $(field Reason)), to start in $((begin - $(now))) s"
}
# A requeued job waits for its begin time (Slurm sets it about 2 minutes
# ahead: AuthInfo's cred_expire, 120 s, + 1): moved to now.
# Not within the second of the requeue: slurmd still holds the last run's
# revoked credential then, and kills the new start ("Job credential
# revoked": the job fails instead of running). Seen once in CI, the job
# requeued and released within 0.5 s.
release() {
  sleep 2
  scontrol update JobId="$jobid" StartTime=now
  say "job $jobid: StartTime=now"
}

# The demo's batch script, pointed at the fixture's trajectory and its
# reference's job (one prompt per unit, no ablation phase), in leases of 4
# units (a stop lets the leases in flight finish: whole checkpoints would
# finish the sweep).
store=$out/store.h5
export LPI_BUILD_DIR
LPI_BUILD_DIR=$(cd "$bin/.." && pwd)
jobid=$(cd "$root" && sbatch --parsable -O --output="$out/%x-%j.log" deploy/slurm/sweep-tiny-olmoe.sbatch \
  "$store" --model.revisions="$work/moe" --relations.folder="$work/moe/relations" \
  --units.prompts_per_unit=1 --ablation.enabled=false --progress-every 60 --lease-units 4)
log=$out/lpi-sweep-tiny-olmoe-$jobid.log
say "submitted job $jobid"

# 1. Requeued from outside mid-run: Slurm ends the job (SIGTERM to every
# process, SIGKILL after KillWait) and queues it again.
wait_state RUNNING 60
check wait_units "$store" 40 120 >/dev/null || fail "the sweep did not start: $(tail -n 5 "$log")"
scontrol requeue "$jobid"
say "scontrol requeue $jobid at $(done_units) units done"
total=$("$py" -c 'import h5py,sys; print(h5py.File(sys.argv[1],"r")["units/done"].shape[0])' "$store")
requeued
first=$(done_units)
[ "$first" -lt "$total" ] || fail "the requeue came after the last unit"
check equal_done "$work/ref-moe.h5" "$store" >/dev/null
release

# 2. Signalled (what --signal=TERM@T does before the time limit): lpi-sweep
# stops after its units in flight, exits 75, and the job requeues itself.
wait_state RUNNING 60
check wait_units "$store" $((first + 20)) 120 >/dev/null || fail "the resumed run did not go on: $(tail -n 5 "$log")"
scancel --signal=TERM "$jobid"
say "scancel --signal=TERM $jobid at $(done_units) units done"
requeued
second=$(done_units)
[ "$second" -lt "$total" ] || fail "the signal came after the last unit"
check equal_done "$work/ref-moe.h5" "$store" >/dev/null
release

# 3. The third run completes the store.
wait_state RUNNING 60
wait_state COMPLETED 180
say "job $jobid completed: exit code $(field ExitCode), restarts $(field Restarts)"
[ "$(field ExitCode)" = 0:0 ] || fail "job exit code $(field ExitCode)"
[ "$(field Restarts)" = 2 ] || fail "Slurm counted $(field Restarts) restarts, expected 2"
check complete "$store"
check equal "$work/ref-moe.h5" "$store"

# The run history: start, resume, resume; the first two stopped by SIGTERM.
history=$("$bin/lpi-sweep" --status --store "$store" | sed -n '/^units done/,/^checkpoint/p')
echo "$history"
"$py" - "$store" <<'EOF' || fail "the run history does not show the two interruptions"
import sys, h5py
runs = [x.decode() for x in h5py.File(sys.argv[1], "r")["runs/log"][...] if x]
kinds = [r.split(" ")[1] for r in runs]
assert kinds == ["start:", "end:", "resume:", "end:", "resume:", "end:"], runs
assert [r.endswith("stopped by SIGTERM") for r in runs[1::2]] == [True, True, False], runs
EOF
# The job's log, appended by the three runs.
grep -q "run 0: starting $store" "$log" || fail "$log: no start"
grep -q "run 1: resuming $store" "$log" || fail "$log: no first resume"
grep -q "run 1: lpi-sweep (resume) exited 75, stopped by SIGTERM: requeueing job $jobid" "$log" ||
  fail "$log: no self-requeue"
grep -q "run 2: lpi-sweep (resume) exited 0" "$log" || fail "$log: no end"
say "ok: requeued at $first units, signalled at $second, completed $total units equal to the reference"
