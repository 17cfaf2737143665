#!/usr/bin/env bash
# One GPU time slice for the built-in model: grow its training suite with new boxes, train on the packed
# union, and write the model card, all inside ~10 minutes of an H200 (each phase has its own time budget).
#
#   NEW_SEED=20261128 OUT=runs/gpu-$(date +%F) bash tools/gpu_grow_and_train.sh
#
# Environment: NEW_SEED (required: the suite seed of the new boxes, one not in training/default/suite.h5 yet;
# 20261126 and 20261127 are), OUT (output folder), SUITE_SECONDS (simulation budget, 240), WORKERS (16),
# TRAIN_MINUTES (2.5), CONFIG (resources/models/default.toml: the v0.5 architecture, relative phases included;
# training/default/config.toml is v0.4's), CARD_SECONDS (150), BF16 (--bf16; empty for a
# CPU dry run). Writes to $OUT: new_boxes.h5 (the new boxes, packed), run.tar (run directory without
# train_state.safetensors; ship/ = the early-stopping weights with their card and calibration),
# train_state.safetensors.part-* (split below 16 MB). Back on the workstation, `python tools/union_suite.py
# --old training/default/suite.h5 --new new_boxes.h5 --union U.h5` rebuilds the same union (then U.h5
# replaces training/default/suite.h5, and ship/ resources/models/default/: training/default/README.md).
# Stops at the first failed step (exit status 1).
set -uo pipefail
OUT=${OUT:-runs/gpu}
SUITE_SECONDS=${SUITE_SECONDS:-240}
WORKERS=${WORKERS:-16}
NEW_SEED=${NEW_SEED:?set NEW_SEED to a suite seed not yet in training/default/suite.h5}
TRAIN_MINUTES=${TRAIN_MINUTES:-2.5}
CONFIG=${CONFIG:-resources/models/default.toml}
CARD_SECONDS=${CARD_SECONDS:-150}
PY=${PYTHON:-python3}
BF16=${BF16---bf16}  # BF16= for a CPU dry run
WORK=${WORK:-/tmp/gpu_run}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
die() { stamp "FAILED: $*"; exit 1; }

stamp "suite: seed $NEW_SEED, ${SUITE_SECONDS}s, $WORKERS workers"
timeout --signal=INT "$SUITE_SECONDS" $PY -m lssviewer suite -n 4000 --seed "$NEW_SEED" -o "$WORK/new.h5" \
  --workers "$WORKERS" --batch 8 --no-progress
stamp "suite exit $?"
$PY tools/union_suite.py --old training/default/suite.h5 --new "$WORK/new.h5" \
  --new-packed "$OUT/new_boxes.h5" --union "$WORK/union.h5" || die "union"
stamp "union written"

$PY -m lssviewer train --data "$WORK/union.h5" --out "$WORK/run" --config "$CONFIG" $BF16 \
  --max-minutes "$TRAIN_MINUTES" --no-progress || die "train"
stamp "trained"
tail -4 "$WORK/run/metrics.csv"

ship="$WORK/run/best"
[ -f "$ship/model.json" ] || ship="$WORK/run"
rm -rf "$WORK/run/ship" && cp -r "$ship" "$WORK/run/ship" && rm -f "$WORK/run/ship/train_state."* || die "copy"
timeout "$CARD_SECONDS" $PY -m lssviewer.model.validation --model "$WORK/run/ship" --heldout "$WORK/union.h5" \
  --heldout-indices val --skip-heldout 32 --max-heldout 50 --calibrate 64 --information \
  --fresh training/default/fresh.h5 --write-card -o "$WORK/run/ship/card_out.json" >/dev/null
stamp "card exit $?"

(cd "$WORK/run" && tar cf "$OUT/run.tar" --exclude=train_state.safetensors --exclude=./best/model.safetensors .) \
  || die "tar"
split -b 15000000 -d "$WORK/run/train_state.safetensors" "$OUT/train_state.safetensors.part-" || die "split"
ls -la "$OUT"
stamp "done"
