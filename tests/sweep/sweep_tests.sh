#!/bin/bash
# End-to-end tests of lpi-sweep on two tiny trajectories trained here (an
# OLMoE and a dense OLMo, 8 checkpoints each), with real mpirun ranks and a
# real parallel HDF5 store. One case per call (CTest registers each):
#   train            train both trajectories (fixture)
#   single           one process, no mpirun: the reference stores (fixture)
#   mpi NP           mpirun -np NP: equal to the reference and to lpi-attribute, bit for bit
#   crash ROLE N     N kill -9 of a worker (ROLE=worker) or the coordinator
#                    (ROLE=coordinator) at random instants, resumed each time
#   corrupt          a corrupt checkpoint mid-sweep: the rest completes, exit 1, named;
#                    with the ablation on, rank 0 keeps the ablation phase from starting
#   refusals         wrong --resume, changed checkpoint, foreign files, existing store
#   job_errors       unknown key, missing folder, empty relation: nothing written
#   dry_run          grid and size printed, nothing written
#   hub              the MoE trajectory as a HuggingFace hub cache (refs, snapshots of
#                    relative symlinks into blobs): swept in place, killed and resumed,
#                    equal to the reference bit for bit; a moved ref and a missing blob
#                    refused by name
#   analysis         end to end: sweep with ablation -> lpi-analyze -> figures and
#                    report; the reduction checked by an independent numpy
#                    recomputation; its bad input (foreign, partial, differing
#                    prompts, short range, lean store); per-prompt data untouched
#   disk_full        a store on a full file system (a small tmpfs): refused before anything
#                    is written, with the store, its size and the free space named; a file
#                    system that fills up mid-run: units fail unflagged, a resume completes
#   lock             a second run on a store in use: refused by its lock, the holder named
#   hang             a worker stopped mid-lease (SIGSTOP): its units go to the other after
#                    --unit-timeout each; it stays silent (exit 4) or comes back (told to stop)
#   changed          a checkpoint's files replaced mid-run: its units fail by name
#   nonfinite        NaN weights, overflowing importances: refused by checkpoint, not written
#   stop             SIGTERM/SIGINT to a rank: units in flight finish, exit 75, resume; twice: at once
#   damaged          truncated and overwritten stores: every tool exits 1..127 naming the file
#   inputs           relations and tokenizer gone between a kill and the resume: not needed
#   leases           the projection tiles once per checkpoint and worker: a one-worker
#                    sweep's count per checkpoint equals lpi-attribute's over all its
#                    prompts; one-unit leases cost more and write the same store bit for bit
#   half             [store] per_prompt_dtype = bfloat16 (MoE) and float16 (dense): the
#                    per-prompt tensors in 2 bytes within half an ulp of the float32 store,
#                    the rest bit for bit; the dry run's size smaller; lpi-analyze reads them
#   ablation         the masking phase: one process == mpirun -np 3, masks and
#                    HIT@10 recomputed, the coordinator killed mid-phase and resumed
# Environment: LPI_TOOLS_DIR (bin/), SWEEP_WORK (scratch), MPIEXEC, PYTHON.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${LPI_TOOLS_DIR:?}
work=${SWEEP_WORK:?}
mpiexec=${MPIEXEC:-mpirun}
py=${PYTHON:-/usr/bin/python3}
check() { "$py" "$here/check_store.py" "$@"; }
sweep() { "$bin/lpi-sweep" --progress-every 60 "$@"; }
mpi() { local np=$1; shift; "$mpiexec" -np "$np" --oversubscribe "$bin/lpi-sweep" --progress-every 60 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
# expect_error RC TEXT command...: the command exits RC and says TEXT.
expect_error() {
  local rc=$1 text=$2; shift 2
  set +e
  out=$("$@" 2>&1)
  got=$?
  set -e
  [ "$got" = "$rc" ] || fail "'$*' exited $got, expected $rc; output: $out"
  grep -qF -- "$text" <<<"$out" || fail "'$*' did not say '$text'; output: $out"
  echo "ok: '$text' (exit $rc)"
}

# The processes of the run on store $1 (mpirun and its ranks, or the one
# process), and the one that is MPI rank $2.
run_pids() { pgrep -f -- "lpi-sweep .*--store $1( |$)" || true; }
rank_pid() {
  local p r
  for p in $(run_pids "$1"); do
    r=$(tr '\0' '\n' </proc/$p/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p' || true)
    [ "$r" = "$2" ] && echo "$p"
  done
  return 0
}
# signal_run SIG STORE: every process of the run (SIGSTOP holds the run still
# between two of its steps, SIGCONT lets it go on).
signal_run() {
  local p
  for p in $(run_pids "$2"); do kill -"$1" "$p" 2>/dev/null || true; done
}
# finish LOG: waits for $launcher; sets rc (its exit status) and out (LOG's text).
finish() {
  set +e
  wait "$launcher"
  rc=$?
  set -e
  out=$(cat "$1")
}
# wait_log FILE TEXT SECONDS: until FILE says TEXT.
wait_log() {
  local i
  for i in $(seq $(($3 * 10))); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1 did not say '$2' within $3 s: $(tail -5 "$1")"
}

# A sweep job over trajectory M (moe or dense) of the fixture.
job() {
  local m=$1 file=$work/job-$1-$tag.ini
  cat >"$file" <<EOF
[job]
name = sweep-test-$m
[model]
name = sweep-test-$m
revisions = $work/$m
[relations]
folder = $work/$m/relations
[units]
prompts_per_unit = 1
EOF
  echo "$file"
}

tag="${1:-}${2:-}"  # this case's own files: cases may run in parallel
case ${1:-} in
train)
  rm -rf "$work" && mkdir -p "$work"
  for m in moe dense; do
    "$bin/lpi-pretrain" --job "$here/fixtures/sweep-$m.ini" --out "$work/$m" >"$work/train-$m.log"
    ls -d "$work/$m"/step*-tokens* | wc -l | grep -qx 8 || fail "$m: expected 8 checkpoints"
  done
  echo "trained both trajectories into $work"
  ;;
single)
  for m in moe dense; do
    rm -f "$work/ref-$m.h5"
    sweep --job "$(job $m)" --store "$work/ref-$m.h5"
    check complete "$work/ref-$m.h5"
    check aggregates "$work/ref-$m.h5"
    h5dump -H "$work/ref-$m.h5" >/dev/null || fail "h5dump cannot read the store"
    status=$(sweep --status --store "$work/ref-$m.h5")
    grep -q "^complete: 8/8 checkpoints attributed" <<<"$status" || fail "--status: $status"
    summary=$("$py" "$here/../../analysis/scripts/sweep_summary.py" "$work/ref-$m.h5")
    grep -q "^step40-tokens10240 " <<<"$summary" || fail "sweep_summary.py: $summary"
    # The h5py example of docs/STORE.md, on this store.
    awk '/runs\/sweep-tiny-olmoe.h5"\) as f:/ { on = 1; print "import h5py, numpy as np" }
         on { if ($0 ~ /^$/) exit; print substr($0, 5) }' "$here/../../docs/STORE.md" |
      sed "s|runs/sweep-tiny-olmoe.h5|$work/ref-$m.h5|" >"$work/store_example.py"
    example=$("$py" "$work/store_example.py")
    grep -q "^step 40: HIT@10" <<<"$example" || fail "the docs/STORE.md example printed: $example"
  done
  # [store] per_prompt = none keeps the aggregates and per-prompt scalars only.
  rm -f "$work/lean-moe.h5"
  sweep --job "$(job moe)" --store "$work/lean-moe.h5" --store.per_prompt=none
  check lean "$work/ref-moe.h5" "$work/lean-moe.h5"
  ;;
mpi)
  np=$2
  for m in moe dense; do
    store=$work/np$np-$m.h5
    rm -f "$store"
    mpi "$np" --job "$(job $m)" --store "$store"
    check complete "$store"
    check equal "$work/ref-$m.h5" "$store"
    # Every object, attribute, dtype and chunking too: the one-process run
    # (coordinator + worker thread, in-process transport) and mpirun write
    # the same store.
    check identical "$work/ref-$m.h5" "$store"
    for c in step0-tokens0 step40-tokens10240; do
      "$bin/lpi-attribute" --model "$work/$m/$c" --relations "$work/$m/relations" \
        --out "$work/attr-np$np-$m-$c.h5" >/dev/null
      check attribute "$store" "$c" "$work/attr-np$np-$m-$c.h5"
    done
  done
  ;;
crash)
  # Each round starts lpi-sweep (fresh, or --resume with 1 or 2 workers) and
  # kill -9s one rank: at a random instant of the first second (start-up, store
  # creation, first units) or at a random point of progress. A store that a
  # round completed must equal the reference; the next round starts a new one.
  role=$2 kills=$3
  m=moe
  [ "$role" = coordinator ] && m=dense
  store=$work/crash-$role.h5
  rm -f "$store" "$store.partial" "$work/snap-$role.npz"
  jobfile=$(job $m)
  total=560
  landed=0 completed=0
  RANDOM=$((kills * 7919 + ${#role}))
  done_units() {
    if [ -f "$store" ]; then
      "$py" -c 'import h5py,sys; print(int(h5py.File(sys.argv[1],"r")["units/done"][...].sum()))' "$store"
    else
      echo 0
    fi
  }
  for i in $(seq 1 "$kills"); do
    np=$((2 + i % 2))
    if [ -f "$store" ]; then
      args=(--resume --store "$store")
      check snapshot "$store" "$work/snap-$role.npz" >/dev/null
    else
      args=(--job "$jobfile" --store "$store")
      rm -f "$work/snap-$role.npz"
    fi
    before=$(done_units)
    "$mpiexec" -np "$np" --oversubscribe "$bin/lpi-sweep" --progress-every 60 "${args[@]}" \
      >"$work/crash-$role-$i.log" 2>&1 &
    launcher=$!
    if [ $((i % 2)) = 1 ] || [ "$before" -ge $((total - 2)) ]; then
      when=$(awk -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.3f", 0.2 + 0.8 * r / 1000 }')
      sleep "$when"
      when="${when}s"
    else
      # In the first half of what is left: a lease reports a checkpoint's
      # units in a burst, and a later goal is often reached with the last.
      goal=$((before + 1 + RANDOM % ((total - before) / 2)))
      check wait_units "$store" "$goal" 60 || true
      when="unit $goal"
    fi
    target=0
    [ "$role" = worker ] && target=$((1 + RANDOM % (np - 1)))
    victim=""
    for p in $(pgrep -f -- "lpi-sweep .*--store $store" || true); do
      r=$(tr '\0' '\n' </proc/$p/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p' || true)
      [ "$r" = "$target" ] && victim=$p
    done
    [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null || true
    set +e
    wait "$launcher"
    rc=$?
    set -e
    after=$(done_units)
    if [ -f "$store" ]; then
      h5dump -H "$store" >/dev/null || fail "h5dump cannot read the store after kill $i"
      [ -f "$work/snap-$role.npz" ] && check unchanged "$work/snap-$role.npz" "$store" >/dev/null
    fi
    echo "round $i: $np ranks from $before/$total done, kill -9 rank $target at $when -> exit $rc, $after/$total done"
    if [ "$rc" != 0 ] && [ "$after" -lt "$total" ]; then landed=$((landed + 1)); fi
    if [ "$after" = "$total" ]; then
      # Every unit done; a killed run may have left aggregates to do.
      [ "$rc" = 0 ] || mpi 2 --resume --store "$store" >"$work/crash-$role-$i-finish.log" 2>&1 ||
        fail "finishing the store after round $i failed"
      [ -f "$work/snap-$role.npz" ] && check unchanged "$work/snap-$role.npz" "$store" >/dev/null
      check complete "$store" >/dev/null
      check equal "$work/ref-$m.h5" "$store"
      completed=$((completed + 1))
      rm -f "$store" "$work/snap-$role.npz"
    fi
  done
  if [ -f "$store" ]; then
    check snapshot "$store" "$work/snap-$role.npz" >/dev/null
    mpi 3 --resume --store "$store" >"$work/crash-$role-final.log" 2>&1 || fail "the final resume failed"
    check unchanged "$work/snap-$role.npz" "$store"
    check complete "$store"
    check equal "$work/ref-$m.h5" "$store"
  fi
  echo "$landed of $kills kills interrupted a sweep mid-way; $completed sweeps completed in between"
  [ "$landed" -ge $((kills / 2)) ] || fail "too few kills landed mid-sweep"
  ;;
half)
  for m in moe dense; do
    dtype=bfloat16
    [ "$m" = dense ] && dtype=float16
    store=$work/half-$m.h5
    rm -f "$store" "$work/half-$m.analysis.h5"
    sweep --job "$(job $m)" --store "$store" --store.per_prompt_dtype=$dtype
    check complete "$store"
    check half "$work/ref-$m.h5" "$store" "$dtype"
    full=$(sweep --dry-run --job "$(job $m)" --store "$work/none.h5" | sed -n 's/^store size: about //p')
    small=$(sweep --dry-run --job "$(job $m)" --store "$work/none.h5" --store.per_prompt_dtype=$dtype |
      sed -n 's/^store size: about //p')
    [ -n "$full" ] && [ -n "$small" ] && [ "$full" != "$small" ] ||
      fail "$m: the dry run's size does not change with $dtype ('$full', '$small')"
    echo "ok: $m dry run: store size about $full in float32, about $small in $dtype"
    "$bin/lpi-analyze" -q --range 4:16 --range 16:40 --store "$store" >"$work/half-$m.txt" ||
      fail "lpi-analyze on the $dtype store failed: $(tail -3 "$work/half-$m.txt")"
    grep -q "^Table" "$work/half-$m.txt" || fail "lpi-analyze printed no table for the $dtype store"
  done
  expect_error 2 "store.per_prompt_dtype" sweep --dry-run --job "$(job moe)" --store "$work/none.h5" \
    --store.per_prompt_dtype=float8
  ;;
leases)
  # tiles LOG CHECKPOINT: rank 1's projection tiles of CHECKPOINT in a sweep's log.
  tiles() {
    sed -n "s/.*checkpoint $2: projection tiles computed: rank 1 \([0-9]*\)$/\1/p" "$1"
  }
  for m in moe dense; do
    store=$work/leases-$m.h5 one=$work/leases1-$m.h5
    rm -f "$store" "$one"
    sweep --job "$(job $m)" --store "$store" >"$work/leases-$m.log" 2>&1 ||
      fail "the sweep failed: $(tail -5 "$work/leases-$m.log")"
    sweep --job "$(job $m)" --store "$one" --lease-units 1 >"$work/leases1-$m.log" 2>&1 ||
      fail "the one-unit-lease sweep failed: $(tail -5 "$work/leases1-$m.log")"
    check identical "$work/ref-$m.h5" "$store"
    check identical "$store" "$one"
    for c in step0-tokens0 step40-tokens10240; do
      want=$("$bin/lpi-attribute" --model "$work/$m/$c" --relations "$work/$m/relations" |
        sed -n 's/.*, \([0-9]*\) projection tiles$/\1/p')
      got=$(tiles "$work/leases-$m.log" "$c")
      per_unit=$(tiles "$work/leases1-$m.log" "$c")
      [ -n "$want" ] && [ -n "$got" ] && [ -n "$per_unit" ] ||
        fail "$m $c: no tile counts (lpi-attribute '$want', sweep '$got', one-unit leases '$per_unit')"
      [ "$got" = "$want" ] ||
        fail "$m $c: the sweep computed $got projection tiles, one pass over all prompts needs $want"
      [ "$per_unit" -gt "$got" ] ||
        fail "$m $c: one-unit leases computed $per_unit tiles, not more than one lease's $got"
      echo "ok: $m $c: $got projection tiles in one lease (lpi-attribute: $want; one-unit leases: $per_unit)"
    done
  done
  ;;
share)
  # Shared loads: 4 workers on one node, the last checkpoints only (fewer
  # than the workers: each is leased to several at once), the ablation too.
  # One worker reads each checkpoint and broadcasts it (MPI_Bcast) to those
  # leased it within the window; the stores equal a one-process run and a
  # run without sharing, bit for bit.
  for m in moe dense; do
    jobfile=$(job $m)
    printf '[checkpoints]\nsteps = 30:\n[ablation]\nenabled = true\n' >>"$jobfile"
    one=$work/share1-$m.h5 shared=$work/share-$m.h5 alone=$work/share-off-$m.h5
    rm -f "$one" "$shared" "$alone"
    sweep --job "$jobfile" --store "$one" >"$work/share1-$m.log" 2>&1 ||
      fail "the one-process sweep failed: $(tail -5 "$work/share1-$m.log")"
    mpi 5 --job "$jobfile" --store "$shared" --share-window 1 >"$work/share-$m.log" 2>&1 ||
      fail "the shared sweep failed: $(tail -5 "$work/share-$m.log")"
    mpi 5 --job "$jobfile" --store "$alone" --share-loads off >"$work/share-off-$m.log" 2>&1 ||
      fail "the unshared sweep failed: $(tail -5 "$work/share-off-$m.log")"
    for s in "$one" "$shared" "$alone"; do
      check complete "$s"
      check ablation "$s"
    done
    check identical "$one" "$shared"
    check identical "$shared" "$alone"
    sent=$(grep -c "broadcast to rank(s)" "$work/share-$m.log" || true)
    got=$(grep -c "received from rank [0-9]* by MPI_Bcast" "$work/share-$m.log" || true)
    [ "$sent" -ge 1 ] && [ "$got" -ge 1 ] ||
      fail "$m: $sent shared load(s) and $got receipt(s) in the log: $(grep -i shared "$work/share-$m.log" | head -5)"
    ! grep -q "broadcast to rank(s)\|received from rank" "$work/share-off-$m.log" ||
      fail "$m: --share-loads off still shared a load"
    grep -q "shared load(s) spared" "$work/share-$m.log" || fail "$m: no shared-load summary"
    echo "ok: $m: $sent shared load(s), $got checkpoint(s) received instead of read; stores identical"
  done
  expect_error 2 "--share-loads must be on or off, not 'maybe'" \
    sweep --job "$(job moe)" --store "$work/share-bad.h5" --share-loads maybe
  expect_error 2 "--share-window must be 0 or more" \
    sweep --job "$(job moe)" --store "$work/share-bad.h5" --share-window -1
  [ ! -e "$work/share-bad.h5" ] || fail "a refused option wrote the store"
  ;;
ablation)
  for m in moe dense; do
    jobfile=$(job $m)
    printf '[ablation]\nenabled = true\n' >>"$jobfile"
    rm -f "$work"/abl-$m-*.h5
    sweep --job "$jobfile" --store "$work/abl-$m-1.h5"
    mpi 3 --job "$jobfile" --store "$work/abl-$m-3.h5"
    for s in 1 3; do
      check complete "$work/abl-$m-$s.h5"
      check ablation "$work/abl-$m-$s.h5"
    done
    check equal "$work/abl-$m-1.h5" "$work/abl-$m-3.h5"
    # Another unit cut (3 prompts a unit): the same results, the ablation's too.
    sweep --job "$jobfile" --store "$work/abl-$m-cut.h5" --units.prompts_per_unit=3
    check cut "$work/abl-$m-1.h5" "$work/abl-$m-cut.h5"
    # Kill the coordinator in the middle of the ablation phase (a worker dies
    # too late: the phase takes a fraction of a second here), then resume.
    store=$work/abl-$m-kill.h5
    mpi 3 --job "$jobfile" --store "$store" >"$work/abl-$m-kill.log" 2>&1 &
    launcher=$!
    check wait_ablation "$store" 10 120 || fail "the ablation phase did not start"
    for p in $(pgrep -f -- "lpi-sweep .*--store $store" || true); do
      r=$(tr '\0' '\n' </proc/$p/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p' || true)
      [ "$r" = 0 ] && kill -9 "$p"
    done
    set +e
    wait "$launcher"
    rc=$?
    set -e
    [ "$rc" != 0 ] || fail "the killed run exited 0"
    left=$("$py" -c 'import h5py,sys; f=h5py.File(sys.argv[1],"r"); print(int((f["ablation/unit_done"][...]==0).sum()))' "$store")
    echo "killed rank 0 mid-ablation: exit $rc, $left ablation units left"
    [ "$left" -gt 0 ] || fail "the kill landed after the ablation phase"
    sweep --status --store "$store" | grep -q "ablated" || fail "--status shows no ablation column"
    mpi 2 --resume --store "$store"
    check complete "$store"
    check equal "$work/abl-$m-1.h5" "$store"
  done
  ;;
analysis)
  a=$work/analysis
  rm -rf "$a" && mkdir -p "$a"
  src=$(cd "$here/../.." && pwd)
  for m in moe dense; do
    jobfile=$(job $m)
    printf '[ablation]\nenabled = true\n' >>"$jobfile"
    mpi 3 --job "$jobfile" --units.prompts_per_unit=10 --store "$a/$m.h5" >"$a/sweep-$m.log" 2>&1 ||
      fail "the sweep of $m: $(tail -3 "$a/sweep-$m.log")"
    check complete "$a/$m.h5"
  done
  before_moe=$(check digest "$a/moe.h5")
  before_dense=$(check digest "$a/dense.h5")
  analyze() { "$bin/lpi-analyze" -q --range 4:16 --range 16:40 --consolidation 8:40 "$@"; }
  analyze --store "$a/moe.h5" --store "$a/dense.h5" --bootstrap 7 >"$a/tables-first.txt"
  # A rerun replaces the group whole.
  analyze --store "$a/moe.h5" --store "$a/dense.h5" --ablation-min-hit 0.05 --csv "$a/csv" >"$a/tables.txt"
  cat "$a/tables.txt"
  [ "$(check digest "$a/moe.h5")" = "$before_moe" ] || fail "lpi-analyze changed data outside /analysis (moe)"
  [ "$(check digest "$a/dense.h5")" = "$before_dense" ] || fail "lpi-analyze changed data outside /analysis (dense)"
  "$py" - "$a/moe.h5" <<'PY' || fail "the rerun did not replace /analysis"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    g = f["analysis"]
    assert g["bootstrap"].shape[0] == 100 and g.attrs["bootstrap"] == 100, g["bootstrap"].shape
    assert g["ablation/drop_percent_mean"].shape[1] == 3
    link = f.get("analysis", getlink=True)
    assert isinstance(link, h5py.ExternalLink) and link.filename == "moe.analysis.h5", link
print("rerun: /analysis (an external link to moe.analysis.h5) holds the second run's 100 resamples")
PY
  for m in moe dense; do "$py" "$src/tests/analysis/recompute_analysis.py" "$a/$m.h5" | tail -1; done
  # Every reading the paper leaves open, away from its default, recomputed
  # independently (a copy of each store: its own FILE.analysis.h5).
  for m in moe dense; do
    cp "$a/$m.h5" "$a/$m-readings.h5"
    analyze --store "$a/$m-readings.h5" --bootstrap 9 --aggregate absolute --expert-mean routed \
      --gain-rank score --gain-baseline family --layer-importance absolute --top-scope layer \
      --overlap 4:13 --overlap 9:40 --overlap 13:13 2>"$a/readings-$m.err" \
      >"$a/readings-$m.txt" || fail "lpi-analyze with every reading changed: $(cat "$a/readings-$m.err")"
    grep -q "compares step 13 with itself" "$a/readings-$m.err" || fail "no warning for --overlap 13:13"
    grep -q "top-set overlap, steps 4 and 13" "$a/readings-$m.txt" || fail "no overlap in the tables"
    "$py" "$src/tests/analysis/recompute_analysis.py" "$a/$m-readings.h5" | tail -1
  done
  "$py" - "$a/moe-readings.h5" "$a/moe.h5" <<'PY' || fail "the readings"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as d:
    g, h = f["analysis"], d["analysis"]
    for key, want in (("aggregate", "absolute"), ("expert_mean", "routed"), ("gain_rank", "score"),
                      ("gain_baseline", "family"), ("layer_importance", "absolute")):
        assert g.attrs[key] == want and h.attrs[key] != want, (key, g.attrs[key], h.attrs[key])
    assert [n.decode() for n in g["range_name"][...]][-2:] == ["consolidation", "trajectory"]
    assert (g["overlap_first_step"][...] == [4, 9, 13]).all(), g["overlap_first_step"][...]
    # With |I| every layer importance is positive; the routed mean changes the scores.
    assert (g["ffn/layer_profile"][0] > 0).all()
    assert not np.allclose(g["ffn/layer_profile"][0], h["ffn/layer_profile"][0])
    assert np.isclose(g["attn/overlap_jaccard"][0, 2], 1.0)   # a step with itself
print("readings: every option recorded, recomputed above, and different from the defaults")
PY
  # The study summary over "seeds" (here: the default and the changed readings of each model).
  "$py" "$src/analysis/scripts/study_summary.py" "$a/moe.h5" "$a/dense.h5" "$a/moe-readings.h5" \
    "$a/dense-readings.h5" --overlap 4:13 --table3 4:16 --out "$a/study.md" >"$a/study.txt" ||
    fail "study_summary.py: $(tail -3 "$a/study.txt")"
  "$py" - "$a/study.md" "$a/moe.h5" "$a/moe-readings.h5" <<'PY' || fail "the study summary"
import sys, h5py, numpy as np
text = open(sys.argv[1]).read()
values = []
for path in sys.argv[2:]:
    with h5py.File(path, "r") as f:
        g = f["analysis"]
        values.append(100 * g["ffn/gain_concentration_mean"][0, int(g.attrs["consolidation_range"])])
table = text.split("### Table 2 (FFN neurons)")[1].split("###")[0]
mean_row = next(l for l in table.splitlines() if l.startswith("| mean of 2 seeds"))
assert f"{np.mean(values):.1f}" == mean_row.split("|")[4].strip(), (mean_row, values)
spread = next(l for l in table.splitlines() if l.startswith("| spread"))
assert f"{min(values):.1f}-{max(values):.1f}" in spread, (spread, values)
print(f"study summary: the mean and spread of FFN R_t over two stores ({values})")
PY
  # One ranking of heads: lpi-query heads and sweep_summary.py name the heads
  # the heads:N masks switch off (/ablation/heads), at every checkpoint.
  for m in moe dense; do
    "$py" - "$a/$m.h5" "$bin/lpi-query" "$src/analysis/scripts/sweep_summary.py" <<'PY' || fail "head ranking ($m)"
import csv, io, subprocess, sys, h5py
store, query, summary = sys.argv[1:]
with h5py.File(store, "r") as f:
    steps = f["checkpoints/step"][...]
    masked = f["ablation/heads"][...]          # [C, Hmax, 2], best first
    names = [n.decode() for n in f["checkpoints/name"][...]]
lines = subprocess.run([sys.executable, summary, store], capture_output=True, text=True,
                       check=True).stdout.splitlines()
for c, step in enumerate(steps):
    out = subprocess.run([query, "heads", "--store", store, "--step", str(step), "--k", "10",
                          "--csv", "-"], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    got = [(int(r["layer"]), int(r["head"])) for r in rows]
    want = [tuple(x) for x in masked[c, :len(got)].tolist()]
    assert got == want, (step, got, want)
    row = next(l for l in lines if l.startswith(names[c] + " "))
    assert f" L{want[0][0]} H{want[0][1]} " in row, (row, want[0])
print(f"heads: lpi-query heads and sweep_summary.py rank as /ablation/heads at {len(steps)} checkpoints")
PY
  done
  "$py" "$src/tests/analysis/test_figures.py" --out "$a/figures" "$a/moe.h5" "$a/dense.h5"
  grep -q "^Table 4" "$a/tables.txt" || fail "no Table 4 in lpi-analyze's output"
  # The h5py example of docs/STORE.md ("Reading it", the analysis group), on the dense store.
  awk '/runs\/sweep-tiny-olmo.h5"\) as f:/ { on = 1; print "import h5py" }
       on { if ($0 ~ /^$/) exit; print substr($0, 5) }' "$src/docs/STORE.md" |
    sed "s|runs/sweep-tiny-olmo.h5|$a/dense.h5|" >"$a/analysis_example.py"
  example=$("$py" "$a/analysis_example.py")
  echo "$example"
  grep -q "^FFN mean J_stab 4-16: " <<<"$example" && grep -q "^heads:10 " <<<"$example" ||
    fail "the docs/STORE.md analysis example printed: $example"
  "$py" - "$a/moe.h5" "$a/csv/sweep-test-moe-summary.csv" <<'PY' || fail "CSV and store disagree"
import csv, sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f, open(sys.argv[2]) as c:
    rows = [r for r in csv.DictReader(c) if r["family"] == "ffn" and r["scope"] == "all"
            and r["metric"] == "jaccard_mean"]
    want = f["analysis/ffn/jaccard_mean"][0]
    got = np.array([float(r["value"]) if r["value"] else np.nan for r in rows])
    assert np.allclose(got, want, equal_nan=True, rtol=0, atol=1e-15), (got, want)
print(f"CSV summary == /analysis ({len(rows)} ranges)")
PY
  # Bad input.
  echo "not a store" >"$a/text.h5"
  expect_error 2 "is not an HDF5 file" "$bin/lpi-analyze" --store "$a/text.h5"
  "$py" -c 'import h5py,sys; h5py.File(sys.argv[1],"w").attrs["format"]="something else"' "$a/foreign.h5"
  expect_error 2 "is not an lpi-sweep store" "$bin/lpi-analyze" --store "$a/foreign.h5"
  cp "$a/dense.h5" "$a/partial.h5"
  name=$("$py" -c 'import h5py,sys; f=h5py.File(sys.argv[1],"r+"); f["aggregates/done"][3]=0; print(f["checkpoints/name"][3].decode())' "$a/partial.h5")
  expect_error 2 "not done (attribution and ablation): $name" "$bin/lpi-analyze" --store "$a/partial.h5"
  analyze --store "$a/partial.h5" --allow-partial --bootstrap 5 2>"$a/partial.err" >/dev/null
  grep -q "not complete.*$name.*--allow-partial" "$a/partial.err" || fail "no warning naming $name: $(cat "$a/partial.err")"
  "$py" -c 'import h5py,sys; c=h5py.File(sys.argv[1],"r")["analysis/checkpoint"][...].tolist(); assert 3 not in c and len(c)==7, c' "$a/partial.h5"
  "$py" "$src/tests/analysis/recompute_analysis.py" "$a/partial.h5" | tail -1
  expect_error 0 "step range 1000-2000 holds 0 analysed checkpoint(s)" \
    "$bin/lpi-analyze" -q --store "$a/dense.h5" --range 1000:2000 --bootstrap 2
  relations=$("$py" -c 'import h5py,sys; print(",".join(r.decode() for r in h5py.File(sys.argv[1],"r")["relations/id"][:3]))' "$a/dense.h5")
  mpi 3 --job "$(job dense)" --units.prompts_per_unit=10 --relations.select="$relations" \
    --store "$a/subset.h5" >"$a/subset.log" 2>&1 || fail "the subset sweep"
  expect_error 0 "comparing only the" analyze --store "$a/moe.h5" --store "$a/subset.h5" --bootstrap 3
  "$py" - "$a/moe.h5" "$a/subset.h5" <<'PY' || fail "the common prompts"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as g:
    n = g["prompts/relation"].shape[0]
    assert f["analysis/prompt"].shape[0] == n == g["analysis/prompt"].shape[0], n
    assert f["analysis"].attrs["compared_with"] == sys.argv[2]
print(f"two stores with different relations: both analysed on their {n} common prompts")
PY
  mpi 3 --job "$(job dense)" --units.prompts_per_unit=10 --store.per_prompt=attn \
    --store "$a/lean.h5" >"$a/lean.log" 2>&1 || fail "the lean sweep"
  expect_error 2 "keeps no per-prompt FFN importance" "$bin/lpi-analyze" --store "$a/lean.h5"
  # A store another process holds open for writing (a sweep still running).
  "$py" -c 'import h5py,sys,time; f=h5py.File(sys.argv[1],"r+"); print("open", flush=True); time.sleep(30)' \
    "$a/dense.h5" >"$a/holder.out" &
  holder=$!
  for _ in $(seq 100); do grep -q open "$a/holder.out" && break; sleep 0.1; done
  expect_error 2 "is lpi-sweep still running on it?" "$bin/lpi-analyze" --store "$a/dense.h5"
  expect_error 2 "--range '70': expected FIRST:LAST" "$bin/lpi-analyze" --store "$a/moe.h5" --range 70
  expect_error 2 "--range '9:3': expected FIRST:LAST" "$bin/lpi-analyze" --store "$a/moe.h5" --range 9:3
  expect_error 2 "--gain-scope 'neuron': family or layer" "$bin/lpi-analyze" --store "$a/moe.h5" --gain-scope neuron
  expect_error 2 "--fraction must be in (0, 1]" "$bin/lpi-analyze" --store "$a/moe.h5" --fraction 0
  kill "$holder"
  wait "$holder" 2>/dev/null || true
  ;;
corrupt)
  rm -rf "$work/corrupt" "$work/corrupt.h5"
  cp -r "$work/moe" "$work/corrupt"
  bad=step13-tokens3328
  # A header length far past the end of the file.
  printf '\xff\xff\xff\x00\x00\x00\x00\x00' |
    dd of="$work/corrupt/$bad/model.safetensors" bs=1 seek=0 conv=notrunc status=none
  sed -e "s|$work/moe|$work/corrupt|g" "$(job moe)" >"$work/job-corrupt.ini"
  expect_error 1 "$bad" mpi 3 --job "$work/job-corrupt.ini" --store "$work/corrupt.h5"
  grep -q "given up" <<<"$out" || fail "the report does not list the given-up units"
  status=$(sweep --status --store "$work/corrupt.h5")
  grep -q "^incomplete: 7/8 checkpoints attributed" <<<"$status" || fail "--status: $status"
  check equal_done "$work/ref-moe.h5" "$work/corrupt.h5"
  # With the ablation on: the attribution of the others completes, and rank 0
  # alone decides that the ablation phase does not start (no unit of it runs).
  printf '[ablation]\nenabled = true\n' >>"$work/job-corrupt.ini"
  rm -f "$work/corrupt-abl.h5"
  expect_error 1 "so the ablation phase does not start" \
    mpi 3 --job "$work/job-corrupt.ini" --store "$work/corrupt-abl.h5"
  grep -q "resume the sweep (--resume)" <<<"$out" || fail "no advice on what to do: $out"
  if grep -q "ablation of the unit failed" <<<"$out"; then
    fail "ablation units ran although rank 0 refused the phase: $out"
  fi
  "$py" - "$work/corrupt-abl.h5" <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    started = int(f["ablation/unit_done"][...].sum()) + int(f["ablation/mask_done"][...].sum())
    if started:
        sys.exit(f"FAIL: {started} ablation flags set although the phase did not start")
print("ok: no ablation unit or mask written")
PY
  status=$(sweep --status --store "$work/corrupt-abl.h5")
  grep -q "^incomplete: 7/8 checkpoints attributed" <<<"$status" || fail "--status: $status"
  ;;
refusals)
  store=$work/refusals.h5
  rm -f "$store"
  sweep --job "$(job moe)" --store "$store" --set checkpoints.steps=0:9 >/dev/null 2>&1
  sum=$(sha256sum <"$store")
  expect_error 2 "units.prompts_per_unit: store has '1', given '7'" \
    sweep --resume --store "$store" --set units.prompts_per_unit=7
  expect_error 2 "checkpoints.steps: store has ':9', given ''" \
    sweep --resume --store "$store" --job "$(job moe)"
  expect_error 2 "exists: continue it with --resume" \
    sweep --job "$(job moe)" --store "$store" --set checkpoints.steps=0:9
  rm -rf "$work/changed" && cp -r "$work/moe" "$work/changed"
  sed -e "s|$work/moe|$work/changed|g" "$(job moe)" >"$work/job-changed.ini"
  rm -f "$work/changed.h5"
  sweep --job "$work/job-changed.ini" --store "$work/changed.h5" --set checkpoints.steps=0:9 >/dev/null 2>&1
  echo " " >>"$work/changed/step6-tokens1536/config.json"
  expect_error 2 "$work/changed/step6-tokens1536: " sweep --resume --store "$work/changed.h5"
  echo "not a store" >"$work/text.h5"
  expect_error 2 "is not an HDF5 file" sweep --resume --store "$work/text.h5"
  "$bin/lpi-attribute" --model "$work/moe/step0-tokens0" --relations "$work/moe/relations" \
    --out "$work/attribute.h5" >/dev/null
  expect_error 2 "is not an lpi-sweep store" sweep --resume --store "$work/attribute.h5"
  expect_error 2 "does not exist" sweep --resume --store "$work/nowhere.h5"
  [ "$(sha256sum <"$store")" = "$sum" ] || fail "a refused resume changed the store"
  ;;
job_errors)
  store=$work/never.h5
  rm -f "$store" "$store.partial"
  sed -e 's/prompts_per_unit = 1/prompts_per_units = 1/' "$(job moe)" >"$work/job-typo.ini"
  expect_error 2 "prompts_per_units" sweep --job "$work/job-typo.ini" --store "$store"
  expect_error 2 "model.revisions" sweep --job "$(job moe)" --store "$store" --set model.revisions=/no/such
  expect_error 2 "nosuch.key" sweep --job "$(job moe)" --store "$store" --nosuch.key=1
  expect_error 2 "checkpoints.list" sweep --job "$(job moe)" --store "$store" \
    --set checkpoints.list=step5-tokens5
  expect_error 2 "ablation.heads: '0' is not a head count" sweep --job "$(job moe)" --store "$store" \
    --ablation.enabled=true --ablation.heads=1,0
  expect_error 2 "ablation.ffn_fraction: must be in [0, 1]" sweep --job "$(job moe)" --store "$store" \
    --ablation.enabled=true --ablation.ffn_fraction=2
  printf '[ablation]\nenabled = true\nheads =\nffn_fraction = 0\n' | cat "$(job moe)" - >"$work/job-noabl.ini"
  expect_error 2 "ablation: enabled, but no condition" sweep --job "$work/job-noabl.ini" --store "$store"
  rm -rf "$work/empty-relations" && cp -r "$work/moe/relations" "$work/empty-relations"
  victim=$(find "$work/empty-relations" -name '*.json' | sort | head -1)
  "$py" -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["samples"]=[]; json.dump(d,open(p,"w"))' "$victim"
  expect_error 2 "$(basename "$victim")" sweep --job "$(job moe)" --store "$store" \
    --relations.folder="$work/empty-relations"
  [ ! -e "$store" ] && [ ! -e "$store.partial" ] || fail "a refused job wrote $store"
  ;;
disk_full)
  full=$work/full-fs
  mkdir -p "$full"
  if ! mount -t tmpfs -o size=512k tmpfs "$full" 2>/dev/null; then
    echo "SKIP: cannot mount a 512 KiB tmpfs at $full here (needs root and mount rights)"
    exit 77
  fi
  trap 'umount "$full" 2>/dev/null || true' EXIT
  expect_error 2 "has only" sweep --job "$(job moe)" --store "$full/s.h5"
  grep -q "cannot create store $full/s.h5: it needs about" <<<"$out" || fail "not named: $out"
  grep -q "(disk full)" <<<"$out" || fail "no 'disk full': $out"
  expect_error 2 "(disk full)" mpi 2 --job "$(job moe)" --store "$full/s.h5"
  [ -z "$(ls -A "$full")" ] || fail "a refused store left files: $(ls -A "$full")"
  if grep -q "Segmentation\|signal" <<<"$out"; then fail "died of a signal: $out"; fi
  umount "$full"
  # The file system fills up while units are written (another job takes the
  # space): those units fail and are not flagged, the run says so and exits
  # 1; once space is free again, a resume completes the same store.
  size=$(($(stat -c %s "$work/ref-moe.h5") + (2 << 20)))
  mount -t tmpfs -o size=$size tmpfs "$full" || fail "cannot mount a $size-byte tmpfs"
  store=$full/s.h5
  "$bin/lpi-sweep" --progress-every 60 --job "$(job moe)" --store "$store" >"$work/full-run.log" 2>&1 &
  launcher=$!
  check wait_units "$store" 40 60 || fail "the sweep did not start: $(tail -3 "$work/full-run.log")"
  signal_run STOP "$store"
  dd if=/dev/zero of="$full/filler" bs=64k 2>/dev/null || true
  signal_run CONT "$store"
  finish "$work/full-run.log"
  [ "$rc" = 1 ] || fail "a sweep on a file system that filled up exited $rc: $(tail -5 <<<"$out")"
  grep -q "No space left on device" <<<"$out" || fail "the disk full is not named: $(tail -5 <<<"$out")"
  grep -q "$store" <<<"$out" || fail "the store is not named: $(tail -5 <<<"$out")"
  grep -q "given up" <<<"$out" || fail "no unit given up: $(tail -5 <<<"$out")"
  done_then=$("$py" -c 'import h5py,sys; print(int(h5py.File(sys.argv[1],"r")["units/done"][...].sum()))' "$store")
  [ "$done_then" -lt 560 ] || fail "every unit flagged although the disk filled up"
  check equal_done "$work/ref-moe.h5" "$store"
  rm -f "$full/filler"
  sweep --resume --store "$store" >"$work/full-resume.log" 2>&1 || fail "the resume after freeing space: $(tail -3 "$work/full-resume.log")"
  check complete "$store"
  check equal "$work/ref-moe.h5" "$store"
  echo "disk filled after $done_then of 560 units: exit 1, the rest flagged by the resume"
  ;;
lock)
  # Two runs on one store: the second is refused by the first's lock (held
  # for the whole run, here while the first is stopped), naming the holder.
  store=$work/lock.h5
  rm -f "$store" "$store.lock"
  "$bin/lpi-sweep" --progress-every 60 --job "$(job moe)" --store "$store" >"$work/lock-1.log" 2>&1 &
  first=$!
  # Stopped past its third checkpoint, so that lpi-analyze --allow-partial gets as far as writing.
  check wait_units "$store" 220 60 || fail "the first run did not start: $(tail -3 "$work/lock-1.log")"
  signal_run STOP "$store"
  expect_error 2 "is in use by lpi-sweep" sweep --resume --store "$store"
  grep -qF "pid $first on host" <<<"$out" || fail "the holder (pid $first) is not named: $out"
  expect_error 2 "is in use by lpi-sweep" mpi 2 --resume --store "$store"
  expect_error 2 "is in use by lpi-sweep" "$bin/lpi-analyze" -q --store "$store" --allow-partial --bootstrap 2
  sweep --status --store "$store" >/dev/null || fail "--status of a store in use"
  signal_run CONT "$store"
  wait "$first" || fail "the first run failed: $(tail -3 "$work/lock-1.log")"
  [ ! -e "$store.lock" ] || fail "the lock file stayed after the run ended"
  check complete "$store"
  check equal "$work/ref-moe.h5" "$store"
  # A run killed with its lock: the kernel released it; the resume takes over the file.
  rm -f "$store"
  "$bin/lpi-sweep" --progress-every 60 --job "$(job moe)" --store "$store" >"$work/lock-2.log" 2>&1 &
  first=$!
  check wait_units "$store" 20 60 || fail "the run did not start"
  kill -9 "$first"
  wait "$first" 2>/dev/null || true
  [ -e "$store.lock" ] || fail "kill -9 left no lock file (expected one, unlocked)"
  sweep --resume --store "$store" >"$work/lock-3.log" 2>&1 || fail "resume after kill -9: $(tail -3 "$work/lock-3.log")"
  check equal "$work/ref-moe.h5" "$store"
  ;;
hang)
  # A worker that hangs mid-lease (SIGSTOP: alive, silent). Its lease's units
  # go to the other worker after --unit-timeout per unit of the lease (leases
  # of 4 here: 12 s); at the end rank 0 waits 3 s, then ends the job (exit
  # 4): every flagged unit is complete.
  store=$work/hang.h5
  rm -f "$store"
  "$mpiexec" -np 3 --oversubscribe "$bin/lpi-sweep" --progress-every 60 --unit-timeout 3 \
    --lease-units 4 --job "$(job moe)" --store "$store" >"$work/hang-1.log" 2>&1 &
  launcher=$!
  check wait_units "$store" 30 60 || fail "the sweep did not start: $(tail -3 "$work/hang-1.log")"
  victim=$(rank_pid "$store" 2)
  [ -n "$victim" ] || fail "no rank 2"
  kill -STOP "$victim"
  set +e
  wait "$launcher"
  rc=$?
  set -e
  kill -9 "$victim" 2>/dev/null || true
  out=$(cat "$work/hang-1.log")
  [ "$rc" = 4 ] || fail "a sweep with a hung rank exited $rc: $(tail -5 <<<"$out")"
  grep -q "rank 2 has not reported unit(s) .* within the unit timeout of 3 s each" <<<"$out" ||
    fail "the hung rank is not reported: $(tail -5 <<<"$out")"
  grep -q "rank(s) 2 hung and never answered again" <<<"$out" || fail "no end message: $(tail -3 <<<"$out")"
  check complete "$store"
  check equal "$work/ref-moe.h5" "$store"
  "$py" -c 'import h5py,sys; r=[x.decode() for x in h5py.File(sys.argv[1],"r")["runs/log"][...] if x]; assert "ended by MPI_Abort" in r[-1], r' "$store" ||
    fail "the run history does not record the end"
  echo "rank 2 stopped: its lease redone by rank 1, exit 4, store complete and equal to the reference"
  # The hung worker comes back after the timeout: it is told to stop and the
  # job ends normally with the other worker's results.
  rm -f "$store"
  "$mpiexec" -np 3 --oversubscribe "$bin/lpi-sweep" --progress-every 60 --unit-timeout 3 \
    --lease-units 4 --job "$(job moe)" --store "$store" >"$work/hang-2.log" 2>&1 &
  launcher=$!
  check wait_units "$store" 30 60 || fail "the sweep did not start"
  victim=$(rank_pid "$store" 2)
  kill -STOP "$victim"
  wait_log "$work/hang-2.log" "taken as hung" 60
  kill -CONT "$victim"
  wait "$launcher" || fail "the run whose worker came back failed: $(tail -5 "$work/hang-2.log")"
  grep -q "rank 2 speaks again after its unit timed out" "$work/hang-2.log" || fail "no word of rank 2's return"
  check complete "$store"
  check equal "$work/ref-moe.h5" "$store"
  ;;
changed)
  # A checkpoint's files replaced while the sweep runs (another revision of
  # the same shapes: same header, other weights): its units fail by name and
  # are not flagged; the others complete; a resume refuses the store.
  rm -rf "$work/midrun" "$work/midrun.h5"
  cp -r "$work/moe" "$work/midrun"
  sed -e "s|$work/moe|$work/midrun|g" "$(job moe)" >"$work/job-midrun.ini"
  last=$work/midrun/step40-tokens10240
  "$bin/lpi-sweep" --progress-every 60 --job "$work/job-midrun.ini" --store "$work/midrun.h5" >"$work/midrun.log" 2>&1 &
  launcher=$!
  check wait_units "$work/midrun.h5" 20 60 || fail "the sweep did not start"
  signal_run STOP "$work/midrun.h5"
  cp "$work/midrun/step0-tokens0/model.safetensors" "$last/model.safetensors"
  signal_run CONT "$work/midrun.h5"
  finish "$work/midrun.log"
  [ "$rc" = 1 ] || fail "exit $rc: $(tail -5 <<<"$out")"
  grep -q "checkpoint $last changed since the sweep started" <<<"$out" || fail "not named: $(tail -5 <<<"$out")"
  status=$(sweep --status --store "$work/midrun.h5")
  grep -q "^incomplete: 7/8 checkpoints attributed" <<<"$status" || fail "--status: $status"
  check equal_done "$work/ref-moe.h5" "$work/midrun.h5"
  expect_error 2 "$last: " sweep --resume --store "$work/midrun.h5"
  ;;
nonfinite)
  # NaN in a checkpoint's weights, and weights that make the importances
  # overflow: each checkpoint reported by name, nothing non-finite written.
  rm -rf "$work/nan" "$work/nan.h5"
  cp -r "$work/moe" "$work/nan"
  "$py" - "$work/nan/step6-tokens1536/model.safetensors" "$work/nan/step27-tokens6912/model.safetensors" <<'PY'
import json, struct, sys
import numpy as np
def poke(path, name, value, count):
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        info = header[name]
        assert info["dtype"] == "F32", info["dtype"]
        begin = 8 + n + info["data_offsets"][0]
        f.seek(begin)
        f.write(np.full(count, value, dtype="<f4").tobytes())
poke(sys.argv[1], "model.layers.1.mlp.experts.0.up_proj.weight", np.nan, 1)
poke(sys.argv[2], "model.norm.weight", 3e38, 64)
PY
  sed -e "s|$work/moe|$work/nan|g" "$(job moe)" >"$work/job-nan.ini"
  expect_error 1 "given up" mpi 3 --job "$work/job-nan.ini" --store "$work/nan.h5"
  grep -q "step6-tokens1536: tensor 'model.layers.1.mlp.experts.0.up_proj.weight' holds 1 non-finite value" <<<"$out" ||
    fail "the NaN weight is not named: $(grep -i "non-finite\|step6" <<<"$out" | head -3)"
  grep -q "step27-tokens6912, prompts .*non-finite value(s) (NaN or Inf) in" <<<"$out" ||
    fail "the non-finite importances are not named: $(grep -i "non-finite\|step27" <<<"$out" | head -3)"
  status=$(sweep --status --store "$work/nan.h5")
  grep -q "^incomplete: 6/8 checkpoints attributed" <<<"$status" || fail "--status: $status"
  check equal_done "$work/ref-moe.h5" "$work/nan.h5"
  "$py" - "$work/nan.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    done = f["units/done"][...].astype(bool)
    units = np.flatnonzero(done)
    sums = [f[n][units] for n in ["aggregates/unit_attn_sum", "aggregates/unit_ffn_sum"]]
    assert all(np.isfinite(x).all() for x in sums), "a flagged unit has non-finite sums"
    for u in units[::7]:
        c, p0, n = (int(f["units/" + k][u]) for k in ["checkpoint", "first_prompt", "prompt_count"])
        for name in ["importance/attn", "importance/ffn", "importance/base_logprob"]:
            assert np.isfinite(f[name][c, p0:p0 + n]).all(), (name, u)
print(f"ok: the {len(units)} flagged units hold finite values")
PY
  ;;
stop)
  # SIGTERM or SIGINT to any rank (what Slurm sends before the time limit and
  # at preemption): nothing more is assigned, the units in flight finish, the
  # history records the stop, the store is closed, exit 75 ("resume me"); a
  # second signal exits at once (75 too). Each time only complete units are
  # flagged, and a resume finishes a store equal to the reference.
  # Leases of 4 units: a worker passes its stop on in its next work request,
  # which a lease of a whole checkpoint delays past the sweep's end (it
  # takes a fraction of a second here).
  store=$work/stop.h5
  round=0
  for how in "one INT 0" "mpi TERM 2" "mpi TERM 0" "one INT-TERM 0"; do
    read -r launch sig target <<<"$how"
    round=$((round + 1))
    rm -f "$store"
    if [ "$launch" = one ]; then
      "$bin/lpi-sweep" --progress-every 60 --job "$(job moe)" --store "$store" --lease-units 4 \
        >"$work/stop-$round.log" 2>&1 &
    else
      "$mpiexec" -np 3 --oversubscribe "$bin/lpi-sweep" --progress-every 60 --job "$(job moe)" \
        --store "$store" --lease-units 4 >"$work/stop-$round.log" 2>&1 &
    fi
    launcher=$!
    check wait_units "$store" 60 60 || fail "the sweep did not start: $(tail -3 "$work/stop-$round.log")"
    victim=$launcher
    [ "$launch" = mpi ] && victim=$(rank_pid "$store" "$target")
    [ -n "$victim" ] || fail "no rank $target"
    if [ "$sig" = INT-TERM ]; then
      # Both pending while it is stopped (two of one kind would merge into one).
      kill -STOP "$victim" && kill -INT "$victim" && kill -TERM "$victim" && kill -CONT "$victim"
    else
      kill -"$sig" "$victim"
    fi
    finish "$work/stop-$round.log"
    [ "$rc" = 75 ] || fail "$how: exit $rc, expected 75: $(tail -5 <<<"$out")"
    left=$("$py" -c 'import h5py,sys; print(int((h5py.File(sys.argv[1],"r")["units/done"][...]==0).sum()))' "$store")
    [ "$left" -gt 0 ] || fail "$how: the stop came after the last unit"
    check equal_done "$work/ref-moe.h5" "$store" >/dev/null
    if [ "$sig" = INT-TERM ]; then
      grep -q "second stop signal, exiting now" <<<"$out" || fail "no word of the second signal: $(tail -3 <<<"$out")"
    else
      # One process: its worker thread sees the process's signal too, and
      # under load its work request can name it first (as rank 1).
      named="on rank $target"
      [ "$launch" = one ] && named="on rank [01]"
      grep -q "a stop was asked (SIG$sig $named)" <<<"$out" || fail "$how: the stop is not named: $(grep -m 3 "stop" <<<"$out")"
      "$py" -c 'import h5py,sys; r=[x.decode() for x in h5py.File(sys.argv[1],"r")["runs/log"][...] if x]; assert r[-1].endswith("stopped by SIG" + sys.argv[2]), r' "$store" "$sig" ||
        fail "$how: the run history does not record the stop"
    fi
    sweep --resume --store "$store" >"$work/stop-$round-resume.log" 2>&1 || fail "$how: the resume failed"
    check complete "$store" >/dev/null
    check equal "$work/ref-moe.h5" "$store" >/dev/null
    echo "ok: $how: exit 75 with $left units left; the resume completed a store equal to the reference"
  done
  ;;
damaged)
  # Stores truncated or partly overwritten (a copy interrupted, a disk that
  # lost blocks): every tool exits 1..127 with the file named, never by a
  # signal, and the original is untouched.
  d=$work/damaged
  rm -rf "$d" && mkdir -p "$d"
  ref=$work/ref-moe.h5
  size=$(stat -c %s "$ref")
  head -c $((size / 2)) "$ref" >"$d/half.h5"
  head -c 1500 "$ref" >"$d/head.h5"
  cp "$ref" "$d/super.h5"
  dd if=/dev/urandom of="$d/super.h5" bs=512 count=1 conv=notrunc status=none
  cp "$ref" "$d/tail.h5"
  truncate -s $((size - 4096)) "$d/tail.h5"
  : >"$d/empty.h5"
  sum=$(sha256sum <"$ref")
  for f in half head super tail empty; do
    store=$d/$f.h5
    for tool in status resume analyze query; do
      case $tool in
      status) cmd=("$bin/lpi-sweep" --status --store "$store") ;;
      resume) cmd=("$bin/lpi-sweep" --progress-every 60 --resume --store "$store") ;;
      analyze) cmd=("$bin/lpi-analyze" -q --store "$store" --bootstrap 2) ;;
      query) cmd=("$bin/lpi-query" top --store "$store" --checkpoint 0 --family ffn) ;;
      esac
      set +e
      out=$("${cmd[@]}" 2>&1)
      rc=$?
      set -e
      if [ "$rc" -lt 1 ] || [ "$rc" -gt 127 ]; then
        fail "$tool on the $f store exited $rc: $(tail -3 <<<"$out")"
      fi
      grep -qF "$store" <<<"$out" || fail "$tool on the $f store does not name it: $(tail -3 <<<"$out")"
      echo "ok: $tool, $f store: exit $rc: $(grep -F "$store" <<<"$out" | head -1 | cut -c1-160)"
    done
  done
  [ "$(sha256sum <"$ref")" = "$sum" ] || fail "the original store changed"
  # Raw data overwritten where HDF5 sees nothing wrong (its metadata intact):
  # lpi-analyze recomputes every unit's sums from the per-prompt tensors and
  # refuses the store, naming the unit.
  cp "$ref" "$d/raw.h5"
  "$py" -c 'import h5py,sys; f=h5py.File(sys.argv[1],"r+"); f["importance/attn"][5, 3, 0, 7] += 1.0' "$d/raw.h5"
  expect_error 2 "do not add up to the sums written with them" "$bin/lpi-analyze" -q --store "$d/raw.h5" --bootstrap 2
  grep -q "store $d/raw.h5: unit [0-9]* (checkpoint [^,]*, prompts 3..3)" <<<"$out" || fail "the unit is not named: $out"
  ;;
inputs)
  # The relations files and the tokenizer disappear (or turn to garbage)
  # between a killed run and its resume: the store holds the prompts and
  # their token ids, so the resume needs neither and completes the same store;
  # a new sweep with them broken is refused by name.
  rm -rf "$work/inputs" "$work/inputs.h5"
  cp -r "$work/moe" "$work/inputs"
  sed -e "s|$work/moe|$work/inputs|g" "$(job moe)" >"$work/job-inputs.ini"
  "$bin/lpi-sweep" --progress-every 60 --job "$work/job-inputs.ini" --store "$work/inputs.h5" >"$work/inputs-1.log" 2>&1 &
  first=$!
  check wait_units "$work/inputs.h5" 100 60 || fail "the sweep did not start"
  kill -9 "$first"
  wait "$first" 2>/dev/null || true
  first_relation=$(cd "$work/inputs/relations" && ls */*.json | head -1)
  mv "$work/inputs/relations" "$work/inputs/relations.away"
  for t in "$work/inputs"/step*/tokenizer.json; do echo "{ not json" >"$t"; done
  sweep --resume --store "$work/inputs.h5" >"$work/inputs-2.log" 2>&1 ||
    fail "the resume needed the relations or the tokenizer: $(tail -3 "$work/inputs-2.log")"
  check complete "$work/inputs.h5"
  check equal "$work/ref-moe.h5" "$work/inputs.h5"
  rm -f "$work/inputs-new.h5"
  expect_error 2 "relations.folder: $work/inputs/relations is not a folder" \
    sweep --job "$work/job-inputs.ini" --store "$work/inputs-new.h5"
  mv "$work/inputs/relations.away" "$work/inputs/relations"
  expect_error 2 "$work/inputs/step0-tokens0/tokenizer.json" \
    sweep --job "$work/job-inputs.ini" --store "$work/inputs-new.h5"
  cp "$work/moe/step0-tokens0/tokenizer.json" "$work/inputs/step0-tokens0/tokenizer.json"
  echo "[1, 2" >"$work/inputs/relations/$first_relation"
  expect_error 2 "$first_relation" sweep --job "$work/job-inputs.ini" --store "$work/inputs-new.h5"
  [ ! -e "$work/inputs-new.h5" ] || fail "a refused sweep wrote a store"
  ;;
hub)
  # The MoE trajectory as `huggingface-cli download --revision R` leaves it:
  # each file's bytes in blobs/ under their hash (one blob for the files that
  # are alike), snapshots/COMMIT/FILE a relative symlink to it, refs/R the
  # commit (no newline), refs/main the last one. lpi-sweep reads it in place;
  # the store equals the reference bit for bit, only the paths differ.
  hub=$work/hub
  repo=$hub/models--allenai--sweep-test-moe
  rm -rf "$hub" "$work"/hub*.h5 && mkdir -p "$repo/blobs" "$repo/refs"
  for d in "$work/moe"/step*-tokens*; do
    r=$(basename "$d")
    commit=$(printf '%s' "$r" | sha1sum | cut -c1-40)
    mkdir -p "$repo/snapshots/$commit"
    for f in "$d"/*; do
      etag=$(sha256sum <"$f" | cut -c1-64)
      [ -e "$repo/blobs/$etag" ] || cp "$f" "$repo/blobs/$etag"
      ln -s "../../blobs/$etag" "$repo/snapshots/$commit/$(basename "$f")"
    done
    printf '%s' "$commit" >"$repo/refs/$r"
  done
  printf '%s' "$commit" >"$repo/refs/main"
  [ -z "$(find "$repo/snapshots" -type f)" ] || fail "a snapshot holds a file that is not a symlink"
  echo "hub cache: $(ls "$repo/refs" | wc -l) refs, $(ls "$repo/snapshots" | wc -l) snapshots, $(ls "$repo/blobs" | wc -l) blobs"
  jobfile=$work/job-hub.ini
  sed -e "s|^revisions = .*|hub_cache = $hub\nrepo = allenai/sweep-test-moe|" "$(job moe)" >"$jobfile"
  grep -q "^hub_cache = $hub$" "$jobfile" || fail "the job has no hub_cache: $(cat "$jobfile")"
  out=$(sweep --job "$jobfile" --store "$work/hub.h5" --dry-run)
  grep -q "^checkpoints: 8 " <<<"$out" || fail "dry run: $out"
  grep -q "^  step40-tokens10240  $repo/snapshots/[0-9a-f]\{40\}$" <<<"$out" || fail "dry run paths: $out"
  # Killed mid-run, resumed from the job the store recorded (its hub keys).
  store=$work/hub.h5
  "$bin/lpi-sweep" --progress-every 60 --job "$jobfile" --store "$store" >"$work/hub-1.log" 2>&1 &
  first=$!
  check wait_units "$store" 100 60 || fail "the sweep did not start: $(tail -3 "$work/hub-1.log")"
  kill -9 "$first"
  wait "$first" 2>/dev/null || true
  sweep --resume --store "$store" >"$work/hub-2.log" 2>&1 || fail "the resume: $(tail -3 "$work/hub-2.log")"
  check complete "$store"
  check equal "$work/ref-moe.h5" "$store"
  "$py" - "$work/ref-moe.h5" "$store" "$repo" <<'PY' || fail "the checkpoints differ"
import sys, h5py
with h5py.File(sys.argv[1], "r") as ref, h5py.File(sys.argv[2], "r") as hub:
    for name in ["name", "step", "tokens", "bytes", "header_hash"]:
        a, b = ref["checkpoints/" + name][...].tolist(), hub["checkpoints/" + name][...].tolist()
        assert a == b, (name, a, b)
    paths = [p.decode() for p in hub["checkpoints/path"][...]]
    assert all(p.startswith(sys.argv[3] + "/snapshots/") for p in paths), paths
    job = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in hub["job"].attrs.items()}
    assert job["model.hub_cache"] == sys.argv[3].rsplit("/", 1)[0] and "model.revisions" not in job, job
print(f"names, steps, sizes and fingerprints equal the reference's; {len(paths)} paths are snapshots")
PY
  # A ref moved to another commit since the store was written: refused.
  moved=$(printf 'moved' | sha1sum | cut -c1-40)
  old=$(cat "$repo/refs/step13-tokens3328")
  cp -a "$repo/snapshots/$old" "$repo/snapshots/$moved"
  printf '%s' "$moved" >"$repo/refs/step13-tokens3328"
  expect_error 2 "step13-tokens3328: the store has $repo/snapshots/$old, the job selects $repo/snapshots/$moved" \
    sweep --resume --store "$store"
  printf '%s' "$old" >"$repo/refs/step13-tokens3328"
  # A blob gone (the cache cleaned by hand): the revision is named, nothing written.
  blob=$(readlink -f "$repo/snapshots/$old/model.safetensors")
  mv "$blob" "$blob.away"
  expect_error 2 "step13-tokens3328: $repo/snapshots/$old/model.safetensors is a symlink to ../../blobs/" \
    sweep --job "$jobfile" --store "$work/hub-new.h5"
  grep -qF "job file $jobfile: model.repo: " <<<"$out" || fail "the job file and key are not named: $out"
  [ ! -e "$work/hub-new.h5" ] || fail "a refused sweep wrote a store"
  mv "$blob.away" "$blob"
  ;;
dry_run)
  rm -f "$work/dry.h5"
  out=$(sweep --job "$(job moe)" --store "$work/dry.h5" --dry-run --ablation.enabled=true)
  grep -q "^units: 560 " <<<"$out" || fail "dry run: $out"
  grep -q "^ablation after the attribution, conditions: none heads:1 heads:10 ffn:0.01$" <<<"$out" ||
    fail "dry run shows no ablation: $out"
  grep -q "^store size: about" <<<"$out" || fail "dry run: $out"
  [ ! -e "$work/dry.h5" ] || fail "--dry-run wrote the store"
  echo "$out" | head -3
  # --create-only: every dataset, no unit done; a resume then sweeps it to
  # the reference store.
  rm -f "$work/created.h5"
  out=$(sweep --job "$(job moe)" --store "$work/created.h5" --create-only)
  grep -q "^created $work/created.h5 in .* (560 units, nothing computed" <<<"$out" ||
    fail "--create-only printed: $out"
  status=$(sweep --status --store "$work/created.h5")
  grep -q "units done 0/560" <<<"$status" || fail "--status after --create-only: $status"
  grep -q "end: created only (--create-only)" <<<"$status" || fail "no run entry: $status"
  expect_error 2 "not with --resume" sweep --resume --store "$work/created.h5" --create-only
  sweep --resume --store "$work/created.h5"
  check complete "$work/created.h5"
  check equal "$work/ref-moe.h5" "$work/created.h5"
  ;;
*)
  echo "usage: $0 train|single|mpi NP|crash worker|coordinator N|corrupt|refusals|job_errors|dry_run|hub|disk_full|lock|hang|changed|nonfinite|damaged|inputs|ablation|analysis"
  exit 2
  ;;
esac
