"""The box statistics of a training suite and their scatter: what box standardisation rests on.

    python benchmarks/bench_box_scatter.py [--suite training/default/suite.h5] [--config training/default/config.toml]

The three box statistics s = (mean log10 M, log std log10 M, log rms velocity component) of every box
(lssviewer.model.features.box_statistics), with their mean as polynomials of theta (the config's
``feature_theta_degree``) fitted on the training boxes of the config's split:

* scatter model selection: for log standard deviations of degree 0 (a constant covariance), 1 and 2 in
  theta, the 5-fold cross-validated log predictive density of the training boxes' statistics (nats per
  box, paired differences against degree 0) and the excess kurtosis of the standardised residuals
  (a Gaussian has 0);
* the likelihood of the box statistics alone (:meth:`FeatureTransform.box_log_prob`, no network, no
  temperature) on the held-out boxes of the split: 1-D profiles in Omega_m (sigma_8 at its truth) and
  sigma_8 (Omega_m at its truth) on 30-point grids over the prior, the fraction whose 68 % / 95 % interval
  contains the truth, the median 68 % width and the MAP errors, for each scatter degree.

Prints a table and writes benchmarks/results/bench_box_scatter.json (``--first 50``: the model card's 50
coverage boxes, to compare with its ``coverage``; written to bench_box_scatter_first50.json). About 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats as sps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lssviewer.model.data import load_suite, split_indices, theta_to_unit  # noqa: E402
from lssviewer.model.features import FeatureTransform, box_statistics  # noqa: E402
from lssviewer.model.likelihood import PARAMS, summarize_profile  # noqa: E402
from lssviewer.model.train import load_config  # noqa: E402

DEGREES = (0, 1, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default=str(HERE.parent / "training/default/suite.h5"))
    ap.add_argument("--config", default=str(HERE.parent / "training/default/config.toml"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--first", type=int, help="profile only the first N held-out boxes (50: the model card's "
                    "coverage boxes)")
    ap.add_argument("-o", "--output", help="JSON output (default: benchmarks/results/bench_box_scatter[_firstN].json)")
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    suite = load_suite(args.suite, n_halos=cfg.n_halos)
    train_idx, val_idx = split_indices(len(suite), cfg.val_fraction, cfg.seed)
    unit = theta_to_unit(suite.theta, cfg.prior)
    s_all = box_statistics(suite.raw)
    deg = cfg.feature_theta_degree
    rng = np.random.default_rng(0)
    folds = np.array_split(rng.permutation(train_idx), args.folds)

    def fit(idx: np.ndarray, sd_degree: int) -> FeatureTransform:
        return FeatureTransform.fit(suite.raw[idx], suite.box_size, unit[idx], deg, per_box=True, sd_degree=sd_degree)

    prof_idx = val_idx if args.first is None else val_idx[:args.first]
    result: dict = {"suite": args.suite, "n_train": len(train_idx), "n_heldout": len(val_idx),
                    "n_profiled": len(prof_idx),
                    "theta_degree": deg, "folds": args.folds, "scatter": {}, "profiles": {}}
    cv = {d: np.concatenate([fit(np.setdiff1d(train_idx, f), d).box_log_prob(s_all[f], unit[f])
                             for f in folds]) for d in DEGREES}
    print(f"{len(train_idx)} training boxes, {len(val_idx)} held out; mean: degree-{deg} polynomials of theta")
    print(f"\n{'sd degree':>9} | {'CV log density':>14} | {'gain vs 0':>15} | excess kurtosis of residuals")
    for d in DEGREES:
        tf = fit(train_idx, d)
        z = (s_all[train_idx] - tf.box_mean(unit[train_idx])) / tf.box_sd(unit[train_idx])
        kurt = [float(sps.kurtosis(z[:, j])) for j in range(3)]
        gain = cv[d] - cv[0]
        se = float(gain.std(ddof=1) / np.sqrt(len(gain)))
        result["scatter"][str(d)] = {"cv_log_density_per_box": float(cv[d].mean()), "gain_vs_0": float(gain.mean()),
                                     "gain_se": se, "excess_kurtosis": kurt}
        print(f"{d:>9} | {cv[d].mean():14.3f} | {gain.mean():+7.3f} +- {se:5.3f} | "
              + " ".join(f"{k:5.2f}" for k in kurt))

    print(f"\nlikelihood of the box statistics alone on {len(prof_idx)} held-out boxes ({args.points}-point profiles)")
    print(f"{'sd degree':>9} | {'param':>7} | {'cov68':>5} | {'cov95':>5} | {'width68':>7} | "
          f"{'med |err|':>9} | {'mean err':>8}")
    lo, hi = cfg.prior.bounds()[:, 0], cfg.prior.bounds()[:, 1]
    for d in DEGREES:
        tf = fit(train_idx, d)
        res: dict = {}
        for i, param in enumerate(PARAMS):
            hit68, hit95, width, err = [], [], [], []
            for b in prof_idx:
                grid = np.tile(suite.theta[b], (args.points, 1))
                grid[:, i] = np.linspace(lo[i], hi[i], args.points)
                ll = tf.box_log_prob(s_all[b], theta_to_unit(grid, cfg.prior))
                summ = summarize_profile(grid[:, i], ll)
                t = suite.theta[b, i]
                hit68.append(summ["interval68"][0] <= t <= summ["interval68"][1])
                hit95.append(summ["interval95"][0] <= t <= summ["interval95"][1])
                width.append(summ["interval68"][1] - summ["interval68"][0])
                err.append(summ["map"] - t)
            res[param] = {"coverage68": float(np.mean(hit68)), "coverage95": float(np.mean(hit95)),
                          "median_width68": float(np.median(width)),
                          "median_abs_map_error": float(np.median(np.abs(err))), "mean_map_error": float(np.mean(err))}
            r = res[param]
            print(f"{d:>9} | {param:>7} | {r['coverage68']:5.2f} | {r['coverage95']:5.2f} | "
                  f"{r['median_width68']:7.4f} | {r['median_abs_map_error']:9.4f} | {r['mean_map_error']:+8.4f}")
        result["profiles"][str(d)] = res
    n = len(prof_idx)
    result["coverage68_binomial_sd"] = float(np.sqrt(0.68 * 0.32 / n))
    print(f"(binomial sd of a 68 % coverage on {n} boxes: {result['coverage68_binomial_sd']:.3f})")
    out = Path(args.output or HERE / "results" / ("bench_box_scatter.json" if args.first is None
                                                   else f"bench_box_scatter_first{args.first}.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
