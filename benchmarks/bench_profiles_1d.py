"""1-D ELBO profiles of held-out boxes, stored with the box statistics' part of log L (for tempering fits).

    python benchmarks/bench_profiles_1d.py --model resources/models/default --suite training/default/suite.h5 \
        [-o benchmarks/results/profiles_1d_v08.json]     # resumable: a rerun skips the boxes already stored
    python benchmarks/bench_profiles_1d.py --heldout 70   # -> benchmarks/results/profiles_1d_v08_heldout.json

The boxes: those the model's pooled temperature was fitted on (model.json ``calibration.indices``: held-out
boxes, none trained on); with ``--heldout N`` the first N held-out boxes that no calibration of the model used
(``bench_heldout_coverage.common_heldout``, less the boxes of the 1-D profiles' tempering fit and those the 2-D
grids' T_net, which the profiles take, was chosen on): a test set for temperatures fitted on the former (35 s per
box on one core). With ``--fresh`` every box of ``--suite`` (the first N with ``--heldout N``) is a fresh
simulation no model saw, e.g. a Latin hypercube of a new suite seed:

    lssviewer suite -n 60 --seed 779 --device cpu -o runs/cov2d/fresh779.h5
    python benchmarks/bench_profiles_1d.py --fresh --suite runs/cov2d/fresh779.h5 \
        -o benchmarks/results/profiles_1d_v08_fresh779.json
 Each box gets the two profiles of
the model card (``lssviewer.model.validation``: 30 points over the prior in one parameter, the other at its
truth, 16 noise draws, seed 0), so the raw truth
deficits reproduce those of the coverage runs (the built-in model's 110 such boxes: to 1.2e-3 nats, their
3-decimal rounding; its 64 boxes of the first calibration fit were profiled there with seed 1, and differ by
0.21 nats median: the noise of a deficit between seeds). The stored file is rounded (log L to 1e-4 nats). Per point
the JSON keeps log L and ``box_log_likelihood``, the analytic Gaussian of the box statistics
(``FeatureTransform.box_log_prob``, a part of log L): log L - box is the network's term, which
``tools/refit_temperature.py --network`` tempers on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_heldout_coverage import common_heldout  # noqa: E402

from lssviewer.io import hdf5
from lssviewer.io.atomic import atomic_path
from lssviewer.model import load_model
from lssviewer.model.checkpoint import network_temperature_indices
from lssviewer.model.likelihood import DEFAULT_NOISE, PARAMS, profile_grid, truth_deficit

RESULTS = Path(__file__).parent / "results"
CALIBRATION = "the boxes of the model's pooled calibration (calibration.indices)"
HELDOUT = "held-out boxes no calibration of the model used (--heldout)"
FRESH = "fresh simulations no model saw (--fresh)"


def box_profiles(model, catalog, points: int = 30, n_noise: int = DEFAULT_NOISE, seed: int = 0) -> dict:
    """The box's two 1-D profiles: grid, log L, stderr and the box statistics' term per point."""
    cat = catalog.top_n(model.n_halos) if catalog.n_halos > model.n_halos else catalog
    entry: dict = {"truth": [float(cat.omega_m), float(cat.sigma_8)]}
    for i, param in enumerate(PARAMS):
        grid = profile_grid(model, cat, param, points)
        pts = sorted(model.scan(cat, grid, n_noise=n_noise, seed=seed), key=lambda p: p.index)
        box = [p.box_log_likelihood for p in pts]
        entry[param] = {"grid": grid[:, i].tolist(), "log_likelihood": [p.log_likelihood for p in pts],
                        "stderr": [p.stderr for p in pts], "box_log_likelihood": None if None in box else box}
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resources/models/default")
    ap.add_argument("--suite", default="training/default/suite.h5")
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--heldout", type=int, metavar="N",
                    help="profile the first N held-out boxes no calibration used, not the calibration's boxes")
    ap.add_argument("--fresh", action="store_true",
                    help="every box of --suite is a fresh simulation (a test set; -o needed)")
    ap.add_argument("-o", "--output", help="default: results/profiles_1d_v08.json (with --heldout: "
                                           "results/profiles_1d_v08_heldout.json)")
    args = ap.parse_args(argv)
    if args.heldout is not None and args.heldout < 1:
        raise SystemExit(f"--heldout must be >= 1, got {args.heldout}")
    if args.fresh and not args.output:
        raise SystemExit("--fresh needs -o")
    selection = FRESH if args.fresh else HELDOUT if args.heldout is not None else CALIBRATION
    out_path = Path(args.output or RESULTS / ("profiles_1d_v08_heldout.json" if args.heldout is not None else
                                              "profiles_1d_v08.json"))
    model = load_model(args.model)
    report = json.loads(out_path.read_text()) if out_path.exists() else {
        "model": args.model, "suite": args.suite, "points": args.points, "n_noise": DEFAULT_NOISE, "seed": 0,
        "selection": selection, "boxes": {}}
    if report.get("selection", CALIBRATION) != selection:  # a resumed file holds one kind of box (none said: these)
        raise SystemExit(f"{out_path}: holds {report['selection']}; give another -o")
    if report["boxes"] and Path(report["suite"]).resolve() != Path(args.suite).resolve():
        raise SystemExit(f"{out_path}: holds boxes of {report['suite']}, not of {args.suite}; give another -o")
    cal = model.meta.get("calibration", {})
    if args.fresh:
        indices = list(range(hdf5.count(args.suite)))[: args.heldout]
    elif args.heldout is not None:
        # not the boxes of the profiles' fit, nor those the T_net they take from the grids was chosen on
        used = set((cal.get("profile_calibration") or {}).get("indices", [])) | set(network_temperature_indices(cal))
        indices = [i for i in common_heldout([model], hdf5.count(args.suite), 0) if i not in used][: args.heldout]
    else:
        indices = cal.get("indices")
    if not indices:
        raise SystemExit(f"{args.model}: no boxes to profile (calibration.indices, or --heldout)")
    t0 = time.time()
    for n, idx in enumerate(indices):
        if str(idx) in report["boxes"]:
            continue
        (cat,) = hdf5.read(args.suite, [idx])
        start = time.time()
        entry = box_profiles(model, cat, report["points"], report["n_noise"], report["seed"])
        entry["seconds"] = round(time.time() - start, 1)
        report["boxes"][str(idx)] = entry
        with atomic_path(out_path) as tmp:
            Path(tmp).write_text(json.dumps(report) + "\n")
        d = [truth_deficit(entry[p]["grid"], entry[p]["log_likelihood"], entry["truth"][i])
             for i, p in enumerate(PARAMS)]
        print(f"[{n + 1}/{len(indices)}] box {idx}: deficits {d[0]:.3f} / {d[1]:.3f} nats, "
              f"{entry['seconds']:.1f} s (total {time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
