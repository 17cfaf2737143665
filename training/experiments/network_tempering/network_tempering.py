"""Exploratory: temper only the network's term of the built-in model's 2-D likelihood grids.

    python training/experiments/network_tempering/network_tempering.py   # ~1 min on 2 cores

For each held-out box of ``benchmarks/results/bench_coverage_2d.json`` (zoomed 2-D grids of the built-in model,
windows sized for T = 1.135), log L is split into the box statistics' Gaussian (analytic,
``FeatureTransform.box_log_prob``) and the rest (the network's term), and the grid is re-summarised with
log L = box + network / T_net for several T_net (``box``: the Gaussian alone). Printed per T_net: 2-D contour
coverage (68 % / 95 %), coverage of the grid's 68 % profile intervals (an interval cut by the window counts as a
miss) and median |2-D MAP - truth|. Not cross-validated (T_net is read off the same boxes) and the tempered surface
can reach beyond the window: docs/model.md, "The joint constraint of the built-in model v0.8". Superseded by the
fitted, cross-validated tempering of ``tools/refit_temperature.py --grid --network`` on grids sized for it
(``benchmarks/results/bench_coverage_2d_network.json``; docs/model.md, "Tempering the network's term apart").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lssviewer.io import hdf5
from lssviewer.model import load_model
from lssviewer.model.data import theta_to_unit
from lssviewer.model.features import box_statistics, catalog_to_raw
from lssviewer.model.likelihood import summarize_grid_2d, truth_deficit_2d

ROOT = Path(__file__).resolve().parents[3]
T_NET = (1, 1.5, 2, 3, 4, 6, 8, 16, 1e9)


def main() -> None:
    model = load_model(ROOT / "resources/models/default")
    report = json.loads((ROOT / "benchmarks/results/bench_coverage_2d.json").read_text())
    rows = []
    for key, box in report["boxes"].items():
        (cat,) = hdf5.read(ROOT / "training/default/suite.h5", [int(key)])
        stats = box_statistics(np.asarray(catalog_to_raw(cat), dtype=np.float64))
        om, s8 = np.asarray(box["omega_m"]), np.asarray(box["sigma_8"])
        grid = np.array([(a, b) for a in om for b in s8])
        box_ll = np.asarray(model.transform.box_log_prob(stats, theta_to_unit(grid, model.prior)))
        box_ll = box_ll.reshape(len(om), len(s8))
        total = np.asarray(box["log_likelihood"])
        row = []
        for t in T_NET:
            ll = box_ll + (total - box_ll) / t
            s = summarize_grid_2d(om, s8, ll)
            hits = [s[p]["interval68"][0] <= v <= s[p]["interval68"][1] and not s[p]["truncated68"]
                    for p, v in zip(("omega_m", "sigma_8"), box["truth"], strict=True)]
            row.append((truth_deficit_2d(om, s8, ll, box["truth"]), *hits, *(np.array(s["map"]) - box["truth"])))
        rows.append(row)
    rows = np.array(rows)
    print(len(rows), "boxes")
    out = {}
    for j, t in enumerate(T_NET):
        d = rows[:, j, 0]
        name = "box" if t > 1e8 else t
        res = {"coverage68": float(np.mean(d <= 1.148)), "coverage95": float(np.mean(d <= 2.996)),
               "outside_window": int(np.sum(~np.isfinite(d))),
               "profile68": [float(rows[:, j, 1].mean()), float(rows[:, j, 2].mean())],
               "median_abs_map_error": [float(np.median(np.abs(rows[:, j, 3]))),
                                        float(np.median(np.abs(rows[:, j, 4])))]}
        out[str(name)] = res
        print(f"T_net {name}: 2-D cov68 {res['coverage68']:.2f} cov95 {res['coverage95']:.2f} "
              f"inf {res['outside_window']}  profile68 om {res['profile68'][0]:.2f} s8 {res['profile68'][1]:.2f}  "
              f"med|map err| {res['median_abs_map_error'][0]:.4f} {res['median_abs_map_error'][1]:.4f}")
    (Path(__file__).parent / "results.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
