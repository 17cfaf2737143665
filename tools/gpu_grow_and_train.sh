#!/usr/bin/env bash
# One GPU time slice for the built-in model: grow its training suite with new boxes, train on the packed
# union, and write the model card, all inside ~10 minutes of an H200 (each phase has its own time budget).
#
#   NEW_SEED=20261128 OUT=runs/gpu-$(date +%F) bash tools/gpu_grow_and_train.sh
#
# Environment: NEW_SEED (the suite seed of the new boxes, one not in training/default/suite.h5 yet; required unless
# SUITE_SECONDS=0; 20261126-28 are used), OUT (output folder), SUITE_SECONDS (simulation budget, 240), WORKERS (16),
# TRAIN_SECONDS (210: the step count is sized to it by a probe), MAX_STEPS (12000), BENCH_SECONDS (40; empty: no GPU
# benchmark), CONFIG (resources/models/default.toml: the built-in model's configuration, relative phases and mesh
# gravity included; = training/default/config.toml plus mesh_gravity = 32), CARD_SECONDS (150), BF16 (--bf16; empty
# for a CPU dry run), INIT_FROM (a model directory to warm-start from, e.g. resources/models/default: a fine-tune of
# the built-in model; empty: from scratch). SUITE_SECONDS=0 trains on training/default/suite.h5 as it is (no new
# boxes: the tree a device call carries is near its 64 MiB). Writes to $OUT: new_boxes.h5 (the new boxes, packed),
# run.tar (run directory without train_state.safetensors; ship/ = the early-stopping weights), ship.tar (ship/: the
# weights and model.json, with the staging calibration once staged), card.json, bench_model_gpu.json,
# train_state.safetensors.part-* (split below 16 MB; STATE= leaves them out). Back on the workstation, `python
# tools/union_suite.py --old training/default/suite.h5 --new new_boxes.h5 --union U.h5` rebuilds the same union (then
# U.h5 replaces training/default/suite.h5, and ship/ resources/models/default/: training/default/README.md).
# Calibration benchmarks of the new weights on the GPU (each phase skipped at 0 seconds, the default; a profile or
# grid phase cut short by its budget leaves a valid result that a CPU run with the same -o and the same --suite path
# finishes; the held-out ELBO writes only when done): ELBO_SECONDS (the held-out ELBO of ship/ against BASE, default
# INIT_FROM or resources/models/default: 80 unseen suite boxes from index 3288 and training/default/fresh.h5 ->
# heldout_elbo.json, on ELBO_DEVICE, cuda), PROFILE_SECONDS (the 1-D profiles of the boxes of BASE's pooled
# calibration -> profiles_1d.json), GRID_SECONDS (80 zoomed 2-D grids at BASE's T_net -> coverage_2d.json),
# FRESH_SUITE and FRESH_SECONDS (1-D profiles of that file's first 30 fresh simulations -> profiles_1d_fresh.json).
# ship/ first gets the staging calibration from BASE (tools/refit_temperature.py --stage-from), which the refits then
# replace (training/default/README.md, "Model v0.10"). The card (CARD_SECONDS; 0 skips it) -> card.json: the samples'
# residuals against training/default/fresh.h5 and the 1-D coverage of the stored calibration on the 50 validation
# boxes after the first CARD_SKIP (286: those of the early stopping, the 1-D profiles and the 2-D grids), which no fit
# used; after the staging calibration that coverage is the raw one: rerun the card after the refits.
# On an H200 (2026-11-27, model v0.10's two cycles): 16-17 steps/s of batch 64 (bf16, N = 400, positions on the
# torus); the held-out ELBO of two models 5-6 s, the 174 1-D profiles 31 s, the 80 2-D grids 41 s, 30 fresh
# profiles 6 s (0.18 s per profiled box, 0.5 s per grid, against 25-30 s and ~80 s on one CPU core; the log L of
# a GPU profile and a CPU one agree to 1e-3 nats). A cycle plus its calibration benchmarks fits in 350 s:
#   SUITE_SECONDS=0 INIT_FROM=resources/models/default TRAIN_SECONDS=180 CARD_SECONDS=0 BENCH_SECONDS= STATE= \
#   ELBO_SECONDS=45 PROFILE_SECONDS=100 GRID_SECONDS=120 FRESH_SECONDS=30 FRESH_SUITE=runs/cov2d/fresh779.h5 \
#   OUT=$OUT bash tools/gpu_grow_and_train.sh      (FRESH_SUITE carried: it is git-ignored)
# Run it from the repository root. BENCH_SECONDS=0 means no limit (timeout 0); empty skips the benchmark. Stops at
# the first failed step (exit status 1), except the timed benchmark phases, whose exit status is printed.
set -uo pipefail
OUT=${OUT:-runs/gpu}
SUITE_SECONDS=${SUITE_SECONDS:-240}
WORKERS=${WORKERS:-16}
NEW_SEED=${NEW_SEED:-}
TRAIN_SECONDS=${TRAIN_SECONDS:-210}
MAX_STEPS=${MAX_STEPS:-12000}
BENCH_SECONDS=${BENCH_SECONDS-40}
CONFIG=${CONFIG:-resources/models/default.toml}
CARD_SECONDS=${CARD_SECONDS:-150}
PY=${PYTHON:-python3}
BF16=${BF16---bf16}  # BF16= for a CPU dry run
INIT=${INIT_FROM:+--init-from $INIT_FROM}
WORK=${WORK:-/tmp/gpu_run}
ELBO_SECONDS=${ELBO_SECONDS:-0}
PROFILE_SECONDS=${PROFILE_SECONDS:-0}
GRID_SECONDS=${GRID_SECONDS:-0}
FRESH_SECONDS=${FRESH_SECONDS:-0}
FRESH_SUITE=${FRESH_SUITE:-}
BASE=${BASE:-${INIT_FROM:-resources/models/default}}
for v in SUITE_SECONDS TRAIN_SECONDS CARD_SECONDS ELBO_SECONDS PROFILE_SECONDS GRID_SECONDS FRESH_SECONDS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number of seconds, got '${!v}'"; exit 1; }
done
[ -f lssviewer/__init__.py ] || { echo "run tools/gpu_grow_and_train.sh from the repository root"; exit 1; }
[ "$SUITE_SECONDS" -eq 0 ] || [ -n "$NEW_SEED" ] || { echo "set NEW_SEED to a suite seed not yet in training/default/suite.h5 (or SUITE_SECONDS=0)"; exit 1; }
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # tools/ and benchmarks/ import lssviewer from this checkout
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)  # absolute: the tar steps below run from inside the run directory
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
tar_ship() { (cd "$WORK/run" && tar cf "$OUT/ship.tar.tmp" ship) && mv "$OUT/ship.tar.tmp" "$OUT/ship.tar"; }  # atomic
die() { stamp "FAILED: $*"; exit 1; }

if [ "$SUITE_SECONDS" -gt 0 ]; then
  stamp "suite: seed $NEW_SEED, ${SUITE_SECONDS}s, $WORKERS workers"
  timeout --signal=INT "$SUITE_SECONDS" $PY -m lssviewer suite -n 4000 --seed "$NEW_SEED" -o "$WORK/new.h5" \
    --workers "$WORKERS" --batch 8 --no-progress
  stamp "suite exit $?"
  $PY tools/union_suite.py --old training/default/suite.h5 --new "$WORK/new.h5" \
    --new-packed "$OUT/new_boxes.h5" --union "$WORK/union.h5" || die "union"
  stamp "union written"
else
  stamp "no new boxes: training/default/suite.h5 as it is"
fi
DATA="$WORK/union.h5"
[ "$SUITE_SECONDS" -gt 0 ] || DATA=training/default/suite.h5

# Size the run to the time budget: a 200-step probe measures this machine's steady rate (steps 100 -> 200 of the
# metrics log), and the cosine schedule is laid over the steps that fit in TRAIN_SECONDS (x 0.9 for validation
# and checkpoints), capped at MAX_STEPS; --max-minutes stays as a backstop.
rm -rf "$WORK/probe"
$PY -m lssviewer train --data "$DATA" --out "$WORK/probe" --config "$CONFIG" $BF16 $INIT --steps 200 \
  --no-progress >/dev/null || die "probe"
STEPS=$($PY tools/probe_steps.py "$WORK/probe/metrics.csv" "$TRAIN_SECONDS" "$MAX_STEPS") || die "probe rate"
stamp "probe: $STEPS steps fit in ${TRAIN_SECONDS}s"

$PY -m lssviewer train --data "$DATA" --out "$WORK/run" --config "$CONFIG" $BF16 $INIT --steps "$STEPS" \
  --max-minutes "$(( TRAIN_SECONDS / 60 + 1 ))" --no-progress || die "train"
stamp "trained"
tail -4 "$WORK/run/metrics.csv"

ship="$WORK/run/best"
[ -f "$ship/model.json" ] || ship="$WORK/run"
rm -rf "$WORK/run/ship" && cp -r "$ship" "$WORK/run/ship" && rm -f "$WORK/run/ship/train_state."* || die "copy"
# the run first (what matters most comes back even if a later step runs out of time)
if [ -n "${STATE-1}" ]; then  # STATE= : no optimiser state back (a warm restart needs only the weights)
  split -b 15000000 -d "$WORK/run/train_state.safetensors" "$OUT/train_state.safetensors.part-" || die "split"
fi
NOSTATE=()
[ -n "${STATE-1}" ] || NOSTATE=(--exclude=./train_state.json)  # without its tensors it would block --resume and reuse
(cd "$WORK/run" && tar cf "$OUT/run.tar" --exclude=train_state.safetensors --exclude=./best/model.safetensors \
  "${NOSTATE[@]}" .) || die "tar"
stamp "run saved"
tar_ship || die "tar ship"
if [ "$ELBO_SECONDS" -gt 0 ]; then
  timeout "$ELBO_SECONDS" $PY benchmarks/bench_heldout_elbo.py --models "$BASE" "$WORK/run/ship" --suite "$DATA" \
    --first-index 3288 --boxes 80 --fresh training/default/fresh.h5 --device "${ELBO_DEVICE:-cuda}" \
    -o "$OUT/heldout_elbo.json" | tail -12
  stamp "held-out ELBO exit ${PIPESTATUS[0]}"
fi
if [ $(( PROFILE_SECONDS + GRID_SECONDS + FRESH_SECONDS )) -gt 0 ]; then
  $PY tools/refit_temperature.py --model "$WORK/run/ship" --stage-from "$BASE" || die "staging calibration"
  tar_ship || die "tar ship"
fi
if [ "$PROFILE_SECONDS" -gt 0 ]; then
  timeout "$PROFILE_SECONDS" $PY benchmarks/bench_profiles_1d.py --model "$WORK/run/ship" --suite "$DATA" \
    -o "$OUT/profiles_1d.json" | tail -2
  stamp "1-D profiles exit ${PIPESTATUS[0]}"
fi
if [ "$GRID_SECONDS" -gt 0 ]; then
  TNET=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['calibration']['network_temperature'])" \
    "$WORK/run/ship/model.json" 2>/dev/null) || { stamp "2-D grids skipped: $BASE has no network_temperature"; TNET=; }
fi
if [ "$GRID_SECONDS" -gt 0 ] && [ -n "$TNET" ]; then
  timeout "$GRID_SECONDS" $PY benchmarks/bench_coverage_2d.py --model "$WORK/run/ship" --suite "$DATA" \
    --network-temperature "$TNET" --boxes 80 -o "$OUT/coverage_2d.json" | tail -2
  stamp "2-D grids exit ${PIPESTATUS[0]}"
fi
if [ "$FRESH_SECONDS" -gt 0 ] && [ -n "$FRESH_SUITE" ]; then
  timeout "$FRESH_SECONDS" $PY benchmarks/bench_profiles_1d.py --model "$WORK/run/ship" --fresh \
    --suite "$FRESH_SUITE" --heldout 30 -o "$OUT/profiles_1d_fresh.json" | tail -2
  stamp "fresh 1-D profiles exit ${PIPESTATUS[0]}"
fi
if [ "$CARD_SECONDS" -gt 0 ]; then
  # the card's test boxes come after those of the early stopping (32), the 1-D profiles (174) and the 2-D grids (80)
  timeout "$CARD_SECONDS" $PY -m lssviewer.model.validation --model "$WORK/run/ship" --heldout "$DATA" \
    --heldout-indices val --skip-heldout "${CARD_SKIP:-286}" --max-heldout 50 --fresh training/default/fresh.h5 \
    -o "$OUT/card.json" >/dev/null
  stamp "card exit $?"
fi
if [ -n "$BENCH_SECONDS" ]; then
  timeout "$BENCH_SECONDS" $PY benchmarks/bench_model.py --gpu --skip-cpu --model "$WORK/run/ship" \
    --out "$OUT/bench_model_gpu.json" >/dev/null
  stamp "bench exit $?"
fi
ls -la "$OUT"
stamp "done"
