"""How much the ELBO estimator's own randomness moves a likelihood profile: the MAP of 1-D profiles of
held-out simulations, recomputed with several seeds of the noise draws, for each estimator setting.

    python benchmarks/bench_scan_estimators.py                      # built-in model, 8 validation boxes
    python benchmarks/bench_scan_estimators.py --boxes 4 --seeds 3  # quicker

For every box, parameter and setting (n_noise, stratified or antithetic) the profile is computed with
``--seeds`` seeds; the table gives, per setting and parameter, the seed-to-seed standard deviation of
the MAP averaged over boxes (the estimator's share of the error; compare it with the interval width),
the mean MAP error (MAP - truth) over boxes and seeds, and the time of one 30-point profile. The
held-out boxes are the model's validation boxes of its training suite (never trained on).

Prints a table and writes benchmarks/results/bench_scan_estimators.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model.api import load_model  # noqa: E402
from lssviewer.model.likelihood import PARAMS, profile_1d, summarize_profile  # noqa: E402

SETTINGS = (("antithetic", 8), ("stratified", 8), ("stratified", 16))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: the built-in model)")
    ap.add_argument("--suite", default=str(HERE.parent / "training/default/suite.h5"),
                    help="the suite holding the model's validation boxes")
    ap.add_argument("--boxes", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", default=str(HERE / "results/bench_scan_estimators.json"))
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error("--seeds must be >= 2 (the seed-to-seed spread needs two)")
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    idx = list(model.meta["data"]["val_indices"])[: args.boxes]
    boxes = hdf5.read(args.suite, idx)
    rows: dict[str, dict[str, list]] = {}
    seconds: dict[str, list[float]] = {}
    for box_index, cat in zip(idx, boxes, strict=True):
        truth = (cat.omega_m, cat.sigma_8)
        for kind, n_noise in SETTINGS:
            tag = f"{kind} {n_noise}"
            for i, param in enumerate(PARAMS):
                maps = []
                for s in range(args.seeds):
                    t0 = time.perf_counter()
                    pts = list(profile_1d(model, cat, param, points=args.points, n_noise=n_noise,
                                          seed=1000 * box_index + s, antithetic=kind == "antithetic"))
                    seconds.setdefault(tag, []).append(time.perf_counter() - t0)
                    grid = [p.theta[i] for p in pts]
                    maps.append(summarize_profile(grid, [p.log_likelihood for p in pts])["map"] - truth[i])
                rows.setdefault(tag, {}).setdefault(param, []).append(maps)
        print(f"box {box_index} done", flush=True)
    table = []
    for tag, per in rows.items():
        for param, maps in per.items():
            m = np.asarray(maps)
            table.append({"setting": tag, "param": param, "seed_sd_of_map": float(m.std(axis=1, ddof=1).mean()),
                          "mean_map_error": float(m.mean()), "median_abs_map_error": float(np.median(np.abs(m))),
                          "seconds_per_profile": float(np.median(seconds[tag]))})
    print(f"\n{'setting':16s} {'param':8s} {'seed sd of MAP':>15s} {'mean MAP err':>13s} "
          f"{'median |err|':>13s} {'s/profile':>10s}")
    for r in table:
        print(f"{r['setting']:16s} {r['param']:8s} {r['seed_sd_of_map']:15.4f} {r['mean_map_error']:+13.4f} "
              f"{r['median_abs_map_error']:13.4f} {r['seconds_per_profile']:10.2f}")
    out = {"model": str(model.path), "boxes": idx, "seeds": args.seeds, "points": args.points,
           "threads": args.threads, "machine": platform.platform(), "processor": platform.processor(),
           "results": table}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
