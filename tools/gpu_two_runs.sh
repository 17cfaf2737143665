#!/usr/bin/env bash
# One GPU time slice, two trainings of the built-in model's configuration side by side on one GPU (at batch 64 x
# 400 halos a process is bound by kernel launches more than by the GPU: on an H200 one run alone makes ~22 steps/s,
# two together 16.6 each, 1.5x the throughput; cycle 1 of v0.8 and its control): "ft" = all of the shipped
# model's weights trained on jointly (warm start from resources/models/default), "scratch" = the same
# configuration from scratch.
# Each run's step count is sized by a 200-step probe run at the same time as the other's (so the rate measured is
# the shared one) to TRAIN_SECONDS; --max-minutes is the backstop. Writes $OUT/{ft,scratch}.tar (run directory
# without train_state.safetensors: best/ = early-stopping weights) and the logs.
#   OUT=runs/two TRAIN_SECONDS=400 bash tools/gpu_two_runs.sh
set -u
OUT=${OUT:-runs/two}
TRAIN_SECONDS=${TRAIN_SECONDS:-400}
CONFIG=${CONFIG:-resources/models/default.toml}
DATA=${DATA:-training/default/suite.h5}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HDF5_USE_FILE_LOCKING=FALSE OMP_NUM_THREADS=${OMP_NUM_THREADS:-6}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute: the tar step runs from inside the run directory
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

one() {  # name max_steps [extra train args]
  local name=$1 cap=$2; shift 2
  local W=/tmp/two_$name
  rm -rf "$W" && mkdir -p "$W"
  $PY -m lssviewer train --data "$DATA" --out "$W/probe" --config "$CONFIG" --bf16 "$@" --steps 200 \
    --no-progress >"$W/probe.log" 2>&1 || { stamp "$name probe failed"; tail -5 "$W/probe.log"; return 1; }
  local steps
  steps=$($PY tools/probe_steps.py "$W/probe/metrics.csv" "$TRAIN_SECONDS" "$cap") || { stamp "$name rate failed"; return 1; }
  stamp "$name: $steps steps"
  local rc
  $PY -m lssviewer train --data "$DATA" --out "$W/run" --config "$CONFIG" --bf16 "$@" --steps "$steps" \
    --max-minutes "$(printf '%d.%02d' $(( (TRAIN_SECONDS + 20) / 60 )) $(( ((TRAIN_SECONDS + 20) % 60) * 100 / 60 )))" \
    --no-progress >"$W/train.log" 2>&1
  rc=$?
  stamp "$name train exit $rc"
  tail -c 3000 "$W/train.log" >"$OUT/$name.log"
  [ "$rc" -eq 0 ] || return 1
  tail -3 "$W/run/metrics.csv"
  cp "$W/run/metrics.csv" "$OUT/$name.metrics.csv"
  (cd "$W/run" && tar cf "$OUT/$name.tar" --exclude=train_state.safetensors .) || return 1
  stamp "$name saved"
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
one ft 12000 --init-from resources/models/default &
p1=$!
one scratch 6000 &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
ls -la "$OUT"
stamp "done (ft exit $r1, scratch exit $r2)"
[ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]
