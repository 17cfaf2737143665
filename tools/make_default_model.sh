#!/usr/bin/env bash
# Make the built-in model's training suite and train the default model in one go (a GPU machine with many
# cores makes this minutes; on 2 CPU cores it is a day: use the resumable steps below instead).
#
#   OUT=runs/default-$(date +%F) bash tools/make_default_model.sh
#
# Environment: OUT (output folder, default runs/default), BOXES (Latin-hypercube size, 2000), SUITE_SECONDS
# (wall-clock budget for simulating; the suite is resumable and keeps every finished box, 240), WORKERS (12),
# TRAIN_MINUTES (budget for training; training is resumable with --resume, 4), STEPS (optimisation steps).
# Writes $OUT/suite.h5 (float32, the training suite; the held-out boxes are listed in model.json) and the model
# files (model.json, model.safetensors, train_state.*) in $OUT/run/.
set -uo pipefail
OUT=${OUT:-runs/default}
BOXES=${BOXES:-2000}
SUITE_SECONDS=${SUITE_SECONDS:-240}
WORKERS=${WORKERS:-12}
TRAIN_MINUTES=${TRAIN_MINUTES:-4}
STEPS=${STEPS:-14000}
SEED=${SEED:-20261126}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
echo "== suite: up to $BOXES boxes, ${SUITE_SECONDS}s, $WORKERS workers"
timeout --signal=INT "$SUITE_SECONDS" $PY -m lssviewer suite -n "$BOXES" --seed "$SEED" -o "$OUT/suite.h5" \
  --workers "$WORKERS" --batch 8 --no-progress
echo "suite exit $? after $(( $(date +%s) - t0 )) s"
$PY -m lssviewer info "$OUT/suite.h5" | head -3
echo "== train: ${TRAIN_MINUTES} min"
$PY -m lssviewer train --data "$OUT/suite.h5" --out "$OUT/run" --config resources/models/default.toml \
  --steps "$STEPS" --bf16 --max-minutes "$TRAIN_MINUTES" --no-progress
echo "train exit $? after $(( $(date +%s) - t0 )) s"
tail -3 "$OUT/run/metrics.csv" 2>/dev/null
ls -la "$OUT/run"
