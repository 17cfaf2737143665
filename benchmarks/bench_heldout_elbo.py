"""Held-out ELBO of several models on the same boxes: which model gives unseen simulations more likelihood.

    python benchmarks/bench_heldout_elbo.py --models A B ... [--suite S --first-index I] [--fresh F]

A training run's validation loss is measured on its own split, so runs on different suites (or splits) are not
comparable through it. Here every model scores the same boxes at their true cosmology, with the same noise draws
and times (common random numbers, ``--n-noise`` stratified draws): boxes of ``--suite`` at index >=
``--first-index`` that no model trained, early-stopped or calibrated on
(``bench_heldout_coverage.common_heldout``), and all boxes of ``--fresh`` (simulations no model saw); each box
has its own draws (``--seed`` + its position). A higher ELBO is a better density model of the simulations; the
table gives, per box set, each model's mean ELBO in nats per box and per dimension (N x 7) and its mean paired
difference from the first model with the standard error of that mean. Writes
benchmarks/results/bench_heldout_elbo.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench_heldout_coverage import common_heldout  # noqa: E402
from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model import load_model  # noqa: E402

RESULTS = HERE / "results"


def elbos(model, cats, n_noise: int, seed: int) -> np.ndarray:
    """ELBO (nats) of each catalog at its own cosmology; catalog i uses the draws of ``seed + i``.

    The same draws for every model (common random numbers), different ones for each catalog: the error of a few
    stratified times is common to all catalogs that share them (tens of nats per box between two checkpoints
    with 8-16 shared draws), so it must average over the catalogs and enter the standard error.
    """
    return np.array([model.log_likelihood(c, c.cosmology.omega_m, c.cosmology.sigma_8, n_noise=n_noise,
                                          seed=seed + i)[0] for i, c in enumerate(cats)])


def compare(models, names: list[str], cats, n_noise: int, seed: int) -> dict:
    dims = cats[0].n_halos * 7
    values = {name: elbos(m, cats, n_noise, seed) for m, name in zip(models, names, strict=True)}
    base = values[names[0]]
    rows = []
    for name in names:
        d = values[name] - base
        rows.append({"model": name, "mean_elbo": round(float(values[name].mean()), 2),
                     "nelbo_per_dim": round(float(-values[name].mean() / dims), 5),
                     "diff_vs_first": round(float(d.mean()), 2),
                     "diff_se": round(float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0, 2),
                     "better_boxes": int((d > 0).sum())})
    return {"n_boxes": len(cats), "dims_per_box": dims, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, help="model directories (the first one's split is used)")
    ap.add_argument("--suite", help="suite whose held-out boxes to score")
    ap.add_argument("--first-index", type=int, default=0, help="only suite boxes at this index or later")
    ap.add_argument("--boxes", type=int, default=100, help="at most this many suite boxes")
    ap.add_argument("--fresh", help="fresh simulations no model saw (e.g. training/default/fresh.h5)")
    ap.add_argument("--n-noise", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="torch device of the models (default cpu; e.g. cuda)")
    ap.add_argument("-o", "--output", default=str(RESULTS / "bench_heldout_elbo.json"))
    args = ap.parse_args(argv)
    if not args.suite and not args.fresh:
        ap.error("give --suite and/or --fresh")
    models = [load_model(p, device=args.device) for p in args.models]
    names = list(args.models)
    result: dict = {"models": names, "n_noise": args.n_noise, "seed": args.seed, "sets": {}}
    t0 = time.perf_counter()
    if args.suite:
        idx = common_heldout(models, hdf5.count(args.suite), args.first_index)[: args.boxes]
        result["sets"]["suite"] = {"file": args.suite, "indices": idx,
                                   **compare(models, names, hdf5.read(args.suite, idx), args.n_noise, args.seed)}
    if args.fresh:
        fresh = hdf5.read(args.fresh)
        result["sets"]["fresh"] = {"file": args.fresh, **compare(models, names, fresh, args.n_noise, args.seed)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for label, s in result["sets"].items():
        print(f"{label}: {s['n_boxes']} boxes, {s['dims_per_box']} dims each")
        print(f"  {'model':<42} {'ELBO/box':>10} {'NELBO/dim':>10} {'vs first':>16} {'better':>7}")
        for r in s["rows"]:
            print(f"  {r['model'][-42:]:<42} {r['mean_elbo']:>10.1f} {r['nelbo_per_dim']:>10.5f} "
                  f"{r['diff_vs_first']:>+9.1f} +- {r['diff_se']:<4.1f} {r['better_boxes']:>4}/{s['n_boxes']}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(f"{result['seconds']} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
