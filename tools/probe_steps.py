"""Training steps that fit a time budget, from a probe run's metrics log (used by the GPU slice scripts).

    python tools/probe_steps.py PROBE/metrics.csv SECONDS MAX_STEPS     # prints the step count

The rate is that of steps 100 -> 200 (the steady state after start-up and compilation); the steps are rate x
SECONDS x 0.9 (room for validations and checkpoints), rounded down to a multiple of 100, at most MAX_STEPS and
at least 1,000.
"""

from __future__ import annotations

import csv
import sys


def steps_for(metrics_csv: str, seconds: float, max_steps: int) -> int:
    with open(metrics_csv, newline="") as fh:
        rows = {int(r["step"]): float(r["wall_s"]) for r in csv.DictReader(fh)}
    rate = 100.0 / (rows[200] - rows[100])
    return max(1000, min(max_steps, int(rate * seconds * 0.9) // 100 * 100))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.splitlines()[2].strip())
    print(steps_for(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
