#!/bin/bash
# End-to-end tests of lpi-sweep on two tiny trajectories trained here (an
# OLMoE and a dense OLMo, 8 checkpoints each), with real mpirun ranks and a
# real parallel HDF5 store. One case per call (CTest registers each):
#   train            train both trajectories (fixture)
#   single           one process, no mpirun: the reference stores (fixture)
#   mpi NP           mpirun -np NP: equal to the reference and to lpi-attribute, bit for bit
#   crash ROLE N     N kill -9 of a worker (ROLE=worker) or the coordinator
#                    (ROLE=coordinator) at random instants, resumed each time
#   corrupt          a corrupt checkpoint mid-sweep: the rest completes, exit 1, named
#   refusals         wrong --resume, changed checkpoint, foreign files, existing store
#   job_errors       unknown key, missing folder, empty relation: nothing written
#   dry_run          grid and size printed, nothing written
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
    for c in step0-tokens0 step40-tokens10240; do
      "$bin/lpi-attribute" --model "$work/$m/$c" --relations "$work/$m/relations" \
        --out "$work/attr-np$np-$m-$c.h5" >/dev/null
      check attribute "$store" "$c" "$work/attr-np$np-$m-$c.h5"
    done
  done
  ;;
crash)
  # Each round starts lpi-sweep (fresh, or --resume with 1 or 2 workers) and
  # kill -9s one rank: at a random instant of the first 2 s (start-up, store
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
      when=$(awk -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.3f", 0.2 + 1.8 * r / 1000 }')
      sleep "$when"
      when="${when}s"
    else
      goal=$((before + 1 + RANDOM % (total - before - 2)))
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
  rm -rf "$work/empty-relations" && cp -r "$work/moe/relations" "$work/empty-relations"
  victim=$(find "$work/empty-relations" -name '*.json' | sort | head -1)
  "$py" -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["samples"]=[]; json.dump(d,open(p,"w"))' "$victim"
  expect_error 2 "$(basename "$victim")" sweep --job "$(job moe)" --store "$store" \
    --relations.folder="$work/empty-relations"
  [ ! -e "$store" ] && [ ! -e "$store.partial" ] || fail "a refused job wrote $store"
  ;;
dry_run)
  rm -f "$work/dry.h5"
  out=$(sweep --job "$(job moe)" --store "$work/dry.h5" --dry-run)
  grep -q "^units: 560 " <<<"$out" || fail "dry run: $out"
  grep -q "^store size: about" <<<"$out" || fail "dry run: $out"
  [ ! -e "$work/dry.h5" ] || fail "--dry-run wrote the store"
  echo "$out" | head -3
  ;;
*)
  echo "usage: $0 train|single|mpi NP|crash worker|coordinator N|corrupt|refusals|job_errors|dry_run"
  exit 2
  ;;
esac
