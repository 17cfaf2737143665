"""2-D contour coverage of a model's likelihood on held-out boxes, with zoomed grids (lssviewer.model.zoom).

    python benchmarks/bench_coverage_2d.py --model resources/models/default --suite training/default/suite.h5 \
        [--boxes 50] [--points 11] [-o benchmarks/results/bench_coverage_2d.json]   # resumable: reruns skip done boxes
    python benchmarks/bench_coverage_2d.py ... --analyse     # the table again from the stored grids
    python benchmarks/bench_coverage_2d.py ... --skip 40 -o b.json        # on another core: boxes 40 on
    python benchmarks/bench_coverage_2d.py ... --analyse --merge b.json   # both processes' boxes in -o, scored

The boxes: the model's validation boxes that its temperature was not fitted on and that early stopping did not
see (``bench_heldout_coverage.common_heldout``). Each box is scanned as ``lssviewer scan --param both`` does
(coarse 7 x 7 grid over the prior with 4 noise draws, then zoom windows with ``--points`` per axis and 16 draws,
sized for the model's pooled temperature, stored as ``window_temperature``: a resumed run keeps it); the last
stage's grid is stored per box. The first 8 boxes of the stored run were scanned with an earlier first window (a
quadratic fit to the coarse grid; ``first_window`` absent); the rest with the coarse grid's interpolant. The
table gives, for several ways of tempering the 2-D likelihood, the fraction of boxes whose truth lies inside the
68 % / 95 % contour (Delta log L = 1.15 / 3.00 on the tempered surface) and inside the 68 % / 95 % intervals of
the two profile likelihoods (maximum over the other parameter, Delta = 0.5 T) the panel shows, and the 2-D MAP's
errors:

* ``raw``: log L; ``pooled``: log L / T with the model's pooled temperature (what 2-D grids used before
  ``calibration.grid_temperature``);
* ``fitted_2d``: log L / T2, T2 fitted on the boxes' own 2-D truth deficits (68th percentile / 1.15, as
  ``tools/refit_temperature.py --grid``), scored by 2-fold cross-validation (random halves, 2,000 splits);
* ``stretch``: the per-parameter profile temperatures applied as a stretch of the surface about its MAP,
  log L(MAP + S (theta - MAP)) with S = diag(T_om, T_s8)^(-1/2): a Gaussian's curvature along each axis is
  divided by that axis's T, its correlation kept.

    python benchmarks/bench_coverage_2d.py --network-temperature 10 -o benchmarks/results/bench_coverage_2d_network.json

sizes the windows instead for box + network / 10 (``window_network_temperature``; the network's term tempered
alone, :class:`lssviewer.model.likelihood.Tempering`: a broader surface than the pooled T's) and stores each
grid's box statistics' term (``box_log_likelihood``), from which ``tools/refit_temperature.py --grid --network``
fits T_net; the table then adds ``network_window`` (box + network / the windows' T_net, not cross-validated) and
``box_only`` (the box statistics' Gaussian alone).

    python benchmarks/bench_coverage_2d.py --network-temperature 10 --test --boxes 30 \
        -o benchmarks/results/bench_coverage_2d_test.json

scans held-out boxes that no calibration of the model used (less the grids' own fit, ``grid_calibration.indices``;
``bench_profiles_1d.py --heldout`` avoids only the boxes T_net was chosen on, so the two test sets may share
boxes) and adds ``shipped_grid_tempering``: the model's stored grid tempering scored as it is, out of sample.

    lssviewer suite -n 60 --seed 779 --device cpu -o runs/cov2d/fresh779.h5      # 10 min on 2 cores
    python benchmarks/bench_coverage_2d.py --network-temperature 10 --fresh --suite runs/cov2d/fresh779.h5 \
        --boxes 60 -o benchmarks/results/bench_coverage_2d_fresh779.json

does the same on fresh simulations (a Latin hypercube of a suite seed no training suite used): every box of the
file is a test box, whatever the model's split says.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout_coverage import common_heldout  # noqa: E402

from lssviewer.io import hdf5  # noqa: E402
from lssviewer.io.atomic import atomic_path  # noqa: E402
from lssviewer.model import load_model  # noqa: E402
from lssviewer.model.likelihood import (  # noqa: E402
    LEVELS,
    Tempering,
    _delta,
    calibrate_temperature,
    fine_grid_2d,
    summarize_grid_2d,
    tempered_grid_2d,
    truth_deficit_2d,
    truth_profile_deficits_2d,
)
from lssviewer.model.zoom import collect, zoomed_grid_2d  # noqa: E402

RESULTS = Path(__file__).parent / "results"
D68, D95 = _delta(LEVELS[0], 2), _delta(LEVELS[1], 2)


def deficit(box: dict, stretch: tuple[float, float] = (1.0, 1.0)) -> float:
    """max log L - log L(truth) on the box's last grid (interpolated, :func:`truth_deficit_2d`), after a stretch of
    sqrt(T) per axis about the MAP; inf when the (stretched) truth falls outside the grid."""
    om, s8, ll = np.asarray(box["omega_m"]), np.asarray(box["sigma_8"]), np.asarray(box["log_likelihood"])
    at = np.asarray(box["truth"], dtype=np.float64)
    if tuple(stretch) != (1.0, 1.0):  # the stretched surface at the truth = the surface at the mapped truth
        fo, fs, fine = fine_grid_2d(om, s8, ll)
        i, j = np.unravel_index(int(np.argmax(fine)), fine.shape)
        peak = np.array([fo[i], fs[j]])
        at = peak + (at - peak) / np.sqrt(np.asarray(stretch))
    return truth_deficit_2d(om, s8, ll, at)


def profile_deficits(box: dict) -> np.ndarray:
    """Per parameter, the truth's deficit in its profile likelihood over the other parameter (raw nats)."""
    return truth_profile_deficits_2d(box["omega_m"], box["sigma_8"], np.asarray(box["log_likelihood"]), box["truth"])


def map_errors(box: dict) -> np.ndarray:
    s = summarize_grid_2d(box["omega_m"], box["sigma_8"], np.asarray(box["log_likelihood"]))
    return np.asarray(s["map"]) - np.asarray(box["truth"])


def analyse(report: dict, shipped: Tempering | None = None) -> dict:
    """The table's numbers from the stored grids; ``shipped``: the model's grid tempering to score as it is (on
    boxes it was not fitted on: ``--test``)."""
    boxes = [b for b in report["boxes"].values()]
    n = len(boxes)
    t_pool = report["temperature"]
    stretch = tuple(report["profile_temperatures"])
    raw = np.array([deficit(b) for b in boxes])
    prof = np.array([profile_deficits(b) for b in boxes])  # (n, 2)
    errs = np.array([map_errors(b) for b in boxes])
    d1 = _delta(LEVELS[0], 1)
    variants: dict[str, dict] = {}

    d1_95 = _delta(LEVELS[1], 1)

    def scores(d2: np.ndarray, dp: np.ndarray, t: float) -> dict:
        return {"coverage68": float(np.mean(d2 <= D68 * t)), "coverage95": float(np.mean(d2 <= D95 * t)),
                "profile68": {"omega_m": float(np.mean(dp[:, 0] <= d1 * t)),
                              "sigma_8": float(np.mean(dp[:, 1] <= d1 * t))},
                "profile95": {"omega_m": float(np.mean(dp[:, 0] <= d1_95 * t)),
                              "sigma_8": float(np.mean(dp[:, 1] <= d1_95 * t))}}

    for name, t in (("raw", 1.0), ("pooled", t_pool)):
        variants[name] = {"temperature": t, **scores(raw, prof, t)}
    st = np.array([deficit(b, stretch) for b in boxes])
    variants["stretch"] = {"temperatures": list(stretch), "coverage68": float(np.mean(st <= D68)),
                           "coverage95": float(np.mean(st <= D95))}
    if n >= 20:
        # a truth outside the last window (inf deficit) is a miss at any T (calibrate_temperature counts it as
        # beyond every contour). Fitted as the 68th percentile, the cross-validated 68 % contour coverage is ~68 %
        # by construction: its 95 % column and the profile intervals' coverage test the shape of the likelihood.
        # three fits: the contours' T (2-D deficits), the profile intervals' T (both parameters' profile deficits
        # pooled, 1 dof) and the larger of the two (refit_temperature --grid's); each scored on the other half
        fits = {"fitted_2d": lambda i: calibrate_temperature(raw[i], dof=2),
                "fitted_profiles_2d": lambda i: calibrate_temperature(prof[i].ravel(), dof=1),
                "fitted_max_2d": lambda i: max(calibrate_temperature(raw[i], dof=2),
                                               calibrate_temperature(prof[i].ravel(), dof=1))}
        rng = np.random.default_rng(0)
        cv: dict[str, list[dict]] = {k: [] for k in fits}
        ts: dict[str, list[float]] = {k: [] for k in fits}
        for _ in range(2000):
            perm = rng.permutation(n)
            a, b = perm[: n // 2], perm[n // 2:]
            for fit, test in ((a, b), (b, a)):
                for name, f in fits.items():
                    t2 = f(fit)
                    ts[name].append(t2)
                    cv[name].append(scores(raw[test], prof[test], t2))
        for name, f in fits.items():
            variants[name] = {
                "temperature": f(np.arange(n)), "half_sample_temperature_sd": float(np.std(ts[name])),
                "cross_validated": True, "coverage68": float(np.mean([c["coverage68"] for c in cv[name]])),
                "coverage95": float(np.mean([c["coverage95"] for c in cv[name]])),
                **{f"profile{q}": {p: float(np.mean([c[f"profile{q}"][p] for c in cv[name]]))
                                   for p in ("omega_m", "sigma_8")} for q in (68, 95)}}
    if all("box_log_likelihood" in b for b in boxes):
        # tempering the network's term alone (not cross-validated here: tools/refit_temperature.py --grid
        # --network fits T_net); at the T_net the windows were sized for, and the box statistics' term alone
        t_w = report.get("window_network_temperature")
        for name, tp in (("network_window", None if t_w is None else Tempering(network=t_w)),
                         ("box_only", Tempering(network=1e9)), ("shipped_grid_tempering", shipped)):
            if tp is None:
                continue
            tempered = [dict(b, log_likelihood=tempered_grid_2d(b["omega_m"], b["sigma_8"], b["log_likelihood"],
                                                                tp, b["box_log_likelihood"]))
                        for b in boxes]
            e = np.array([map_errors(b) for b in tempered])
            variants[name] = {"network_temperature": tp.network, "temperature": tp.temperature,
                              **scores(np.array([deficit(b) for b in tempered]),
                                       np.array([profile_deficits(b) for b in tempered]), 1.0),
                              "map_abs_error_median": {"omega_m": float(np.median(np.abs(e[:, 0]))),
                                                       "sigma_8": float(np.median(np.abs(e[:, 1])))}}
    stages = [len(b["stages"]) for b in boxes if b.get("first_window") == "interpolant"]
    direct = np.array([b["elbo_at_map_and_truth"][0] - b["elbo_at_map_and_truth"][1] for b in boxes])
    ok = np.isfinite(raw)
    diff = raw[ok] - direct[ok]
    return {"n_boxes": n, "binomial_sd68": float(np.sqrt(0.68 * 0.32 / max(n, 1))), "variants": variants,
            "map_abs_error_median": {"omega_m": float(np.median(np.abs(errs[:, 0]))),
                                     "sigma_8": float(np.median(np.abs(errs[:, 1])))},
            "map_error_mean": {"omega_m": float(np.mean(errs[:, 0])), "sigma_8": float(np.mean(errs[:, 1]))},
            "zoom_stages": {str(k): stages.count(k) for k in sorted(set(stages))},
            "window_cut_after_last_stage": int(sum(b["cut"] for b in boxes)),
            "truth_outside_last_window": int(np.sum(~ok)),
            "interpolated_minus_direct_deficit": {"median": float(np.median(diff)) if diff.size else None,
                                                  "max_abs": float(np.max(np.abs(diff))) if diff.size else None},
            "median_seconds_per_box": float(np.median([b["seconds"] for b in boxes
                                                       if b.get("first_window") == "interpolant"] or [np.nan]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resources/models/default")
    ap.add_argument("--suite", default="training/default/suite.h5")
    ap.add_argument("--boxes", type=int, default=50)
    ap.add_argument("--skip", type=int, default=0, metavar="K",
                    help="leave out the first K boxes of the selection (a second process, with another -o, scores "
                         "the next ones)")
    ap.add_argument("--points", type=int, default=11)
    ap.add_argument("--coarse", type=int, default=7)
    ap.add_argument("--analyse", action="store_true", help="only print the table of the stored grids")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="with --analyse: first add these results' boxes (the same model and scan settings, no box "
                         "shared, e.g. a second process's --skip run) to -o")
    ap.add_argument("--network-temperature", type=float, default=None,
                    help="size the windows for box + network / T (lssviewer.model.likelihood.Tempering) instead of "
                         "the pooled temperature (a new output file)")
    ap.add_argument("--test", action="store_true",
                    help="boxes the model's 2-D calibration was not fitted on either (grid_calibration.indices), "
                         "scored under its grid tempering as stored (shipped_grid_tempering)")
    ap.add_argument("--fresh", action="store_true",
                    help="every box of --suite is a fresh simulation no model saw (implies --test; the box keys are "
                         "the file's indices)")
    ap.add_argument("-o", "--output", default=str(RESULTS / "bench_coverage_2d.json"))
    args = ap.parse_args(argv)
    args.test = args.test or args.fresh
    if args.skip < 0:
        raise SystemExit(f"--skip must be >= 0, got {args.skip}")
    if args.network_temperature is not None and not args.network_temperature >= 1:
        raise SystemExit(f"--network-temperature must be >= 1, got {args.network_temperature}")
    out = Path(args.output)
    model = load_model(args.model)
    report = json.loads(out.read_text()) if out.exists() else {
        "model": args.model, "suite": args.suite, "points": args.points, "coarse": args.coarse,
        "temperature": float(model.temperature),
        "profile_temperatures": [float(model.profile_temperature(p)) for p in ("omega_m", "sigma_8")],
        "boxes": {},
        **({"window_temperature": float(model.temperature)} if args.network_temperature is None else
           {"window_network_temperature": float(args.network_temperature)})}
    stored = report.get("window_network_temperature")
    if args.network_temperature is not None and stored != args.network_temperature:
        raise SystemExit(f"{out}: its windows were sized for "
                         f"{'network temperature ' + str(stored) if stored else 'the pooled temperature'}")
    tempering = (Tempering(network=stored) if stored is not None else
                 Tempering(temperature=float(report.get("window_temperature", report["temperature"]))))
    if args.merge and not args.analyse:
        raise SystemExit("--merge needs --analyse")
    for path in args.merge or []:
        other = json.loads(Path(path).read_text())
        keys = ("suite", "points", "coarse", "window_network_temperature", "window_temperature", "n_noise",
                "test_set", "fresh")
        differ = [k for k in keys if other.get(k) != report.get(k)]
        if differ or Path(other["model"]).resolve() != Path(report["model"]).resolve():
            raise SystemExit(f"{path}: another model or other scan settings than {out} "
                             f"({', '.join(differ) or 'model'})")
        if set(other["boxes"]) & set(report["boxes"]):
            raise SystemExit(f"{path}: shares boxes with {out}")
        report["boxes"] = dict(sorted({**report["boxes"], **other["boxes"]}.items(), key=lambda kv: int(kv[0])))
    if not args.analyse:
        from lssviewer.model.zoom import assess

        grid_fit = set((model.meta.get("calibration", {}).get("grid_calibration") or {}).get("indices", []))
        if args.test != bool(report.get("test_set")) and report["boxes"]:
            kind = "test" if report.get("test_set") else "calibration"
            raise SystemExit(f"{out}: holds {kind} boxes; give another -o")
        if args.fresh != bool(report.get("fresh")) and report["boxes"]:
            raise SystemExit(f"{out}: holds {'fresh' if report.get('fresh') else 'suite'} boxes; give another -o")
        if report["boxes"] and Path(report["suite"]).resolve() != Path(args.suite).resolve():
            raise SystemExit(f"{out}: holds boxes of {report['suite']}, not of {args.suite}; give another -o")
        report["test_set"] = bool(args.test)
        report["fresh"] = bool(args.fresh)
        n_file = hdf5.count(args.suite)
        idx = (list(range(n_file)) if args.fresh else
               [i for i in common_heldout([model], n_file, 0) if not (args.test and i in grid_fit)])
        idx = idx[args.skip: args.skip + args.boxes]
        if not idx and not report["boxes"]:
            raise SystemExit(f"{args.suite}: no boxes left to score after --skip {args.skip}")
        todo = [i for i in idx if str(i) not in report["boxes"]]
        bounds = model.prior.bounds()
        for k, i in enumerate(todo):
            (cat,) = hdf5.read(args.suite, [i])
            t0 = time.perf_counter()
            stages = collect(zoomed_grid_2d(model, cat, points=report["points"], coarse=report["coarse"],
                                            tempering=tempering))
            last = stages[-1]
            box = last["box_log_likelihood"] if tempering.network_only else None
            tempered = tempered_grid_2d(last["omega_m"], last["sigma_8"], last["log_likelihood"], tempering, box)
            # the ELBO itself (same seed and draws as the last stage) at the interpolated MAP and at the truth: their
            # difference is a lower bound on the truth's deficit that does not depend on the interpolation
            summ = summarize_grid_2d(last["omega_m"], last["sigma_8"], last["log_likelihood"])
            direct = [pt.log_likelihood for pt in model.scan(cat, [summ["map"], [cat.omega_m, cat.sigma_8]])]
            report["boxes"][str(i)] = {
                "truth": [float(cat.omega_m), float(cat.sigma_8)], "seconds": round(time.perf_counter() - t0, 1),
                "first_window": "interpolant",  # lssviewer.model.zoom.window (boxes without it: quadratic fit)
                "stages": [{"reason": s["reason"], "n_noise": s["n_noise"],
                            "window": [[float(s["omega_m"][0]), float(s["omega_m"][-1])],
                                       [float(s["sigma_8"][0]), float(s["sigma_8"][-1])]]} for s in stages],
                "cut": assess(last["omega_m"], last["sigma_8"], tempered, bounds) == "window cut the likelihood",
                "elbo_at_map_and_truth": [round(float(v), 3) for v in direct],
                "omega_m": last["omega_m"].tolist(), "sigma_8": last["sigma_8"].tolist(),
                "log_likelihood": np.round(last["log_likelihood"], 3).tolist()}
            if np.all(np.isfinite(last["box_log_likelihood"])):  # the box statistics' term (analytic, exact)
                report["boxes"][str(i)]["box_log_likelihood"] = last["box_log_likelihood"].tolist()
            with atomic_path(out) as tmp:
                tmp.write_text(json.dumps(report) + "\n")
            print(f"box {i} ({k + 1}/{len(todo)}): {len(stages)} stages, "
                  f"{report['boxes'][str(i)]['seconds']} s", flush=True)
    res = analyse(report, model.grid_tempering() if report.get("test_set") else None)
    report["analysis"] = res
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report) + "\n")
    print(f"{res['n_boxes']} boxes (binomial sd of a 68 % coverage {res['binomial_sd68']:.3f}); zoom stages "
          f"{res['zoom_stages']}; window still cut {res['window_cut_after_last_stage']}; "
          f"{res['median_seconds_per_box']:.0f} s per box")
    print(f"interpolated - direct truth deficit (nats): {res['interpolated_minus_direct_deficit']}")
    print(f"2-D MAP: median |error| {res['map_abs_error_median']}, mean error {res['map_error_mean']}")
    print(f"{'tempering':>10} {'T':>14} {'2-D 68%':>8} {'2-D 95%':>8} {'prof68 Om':>10} {'prof68 s8':>10}")
    for name, v in res["variants"].items():
        t = v.get("temperature", v.get("temperatures", f"T_net {v.get('network_temperature')}"))
        prof = v.get("profile68", {})
        print(f"{name:>10} {str(t):>14} {v['coverage68']:8.3f} {v['coverage95']:8.3f} "
              f"{prof.get('omega_m', float('nan')):10.3f} {prof.get('sigma_8', float('nan')):10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
