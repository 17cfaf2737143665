#!/usr/bin/env bash
# One GPU time slice for the built-in model: grow its training suite with new boxes, train on the packed
# union, and write the model card, all inside ~10 minutes of an H200 (each phase has its own time budget).
#
#   OUT=runs/gpu-$(date +%F) bash tools/gpu_grow_and_train.sh
#
# Environment: OUT (output folder), SUITE_SECONDS (simulation budget, 240), WORKERS (16), NEW_SEED (suite seed
# of the new boxes, 20261127), TRAIN_MINUTES (2.5), CONFIG (training/default/config-gpu.toml), CARD_SECONDS (150).
# Writes to $OUT: new_boxes.h5 (the new boxes, packed), run.tar (run directory without train_state.safetensors;
# ship/ = the early-stopping weights with their card and calibration), train_state.safetensors.part-* (split
# below 16 MB), log lines on stdout. `lssviewer convert` / lssviewer.io.hdf5 rebuilds the same union from
# training/default/suite.h5 + new_boxes.h5 (tools/union_suite.py).
set -uo pipefail
OUT=${OUT:-runs/gpu}
SUITE_SECONDS=${SUITE_SECONDS:-240}
WORKERS=${WORKERS:-16}
NEW_SEED=${NEW_SEED:-20261127}
TRAIN_MINUTES=${TRAIN_MINUTES:-2.5}
CONFIG=${CONFIG:-training/default/config-gpu.toml}
CARD_SECONDS=${CARD_SECONDS:-150}
PY=${PYTHON:-python3}
BF16=${BF16---bf16}  # BF16= for a CPU dry run
WORK=${WORK:-/tmp/gpu_run}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

stamp "suite: seed $NEW_SEED, ${SUITE_SECONDS}s, $WORKERS workers"
timeout --signal=INT "$SUITE_SECONDS" $PY -m lssviewer suite -n 4000 --seed "$NEW_SEED" -o "$WORK/new.h5" \
  --workers "$WORKERS" --batch 8 --no-progress
stamp "suite exit $?"
$PY tools/union_suite.py --old training/default/suite.h5 --new "$WORK/new.h5" \
  --new-packed "$OUT/new_boxes.h5" --union "$WORK/union.h5" || { stamp "union failed"; exit 1; }
stamp "union written"

$PY -m lssviewer train --data "$WORK/union.h5" --out "$WORK/run" --config "$CONFIG" $BF16 \
  --max-minutes "$TRAIN_MINUTES" --no-progress
stamp "train exit $?"
tail -4 "$WORK/run/metrics.csv"

ship="$WORK/run/best"
[ -f "$ship/model.json" ] || ship="$WORK/run"
rm -rf "$WORK/run/ship" && cp -r "$ship" "$WORK/run/ship" && rm -f "$WORK/run/ship/train_state."*
timeout "$CARD_SECONDS" $PY -m lssviewer.model.validation --model "$WORK/run/ship" --heldout "$WORK/union.h5" \
  --heldout-indices val --skip-heldout 32 --max-heldout 50 --calibrate 64 --information \
  --fresh training/default/fresh.h5 --write-card -o "$WORK/run/ship/card_out.json" >/dev/null
stamp "card exit $?"

(cd "$WORK/run" && tar cf "$OUT/run.tar" --exclude=train_state.safetensors --exclude=./best/model.safetensors .)
split -b 15000000 -d "$WORK/run/train_state.safetensors" "$OUT/train_state.safetensors.part-"
ls -la "$OUT"
stamp "done"
