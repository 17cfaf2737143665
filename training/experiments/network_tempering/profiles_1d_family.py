"""Exploratory: the network tempering family on the built-in model's 1-D profiles (in-sample, not cross-validated).

    python training/experiments/network_tempering/profiles_1d_family.py   # ~1 min on 2 cores

For each parameter and each T_net, the T that calibrates the 1-D profiles of the 174 calibration boxes
(``benchmarks/results/profiles_1d_v08.json``, other parameter at its truth) when log L is tempered as
[box + network / T_net] / T (:class:`lssviewer.model.likelihood.Tempering`; T as ``calibrate_temperature``), and
the median 68 % width and |MAP - truth| it gives. T_net = 1 is the plain per-parameter temperature. The lead for
1-D profiles after the 2-D grids' tempering; what was made of it (the grids' T_net with each parameter's T,
cross-validated and tested on held-out boxes: ``tools/refit_temperature.py --network --profiles``) is in
docs/model.md, "Tempering the network's term apart".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lssviewer.model.likelihood import PARAMS, Tempering, calibrate_temperature, summarize_profile, truth_deficit

ROOT = Path(__file__).resolve().parents[3]
T_NET = (1, 1.5, 2, 3, 4, 6, 8, 12, 20, 50)


def main() -> None:
    boxes = list(json.loads((ROOT / "benchmarks/results/profiles_1d_v08.json").read_text())["boxes"].values())
    print(len(boxes), "boxes")
    for i, p in enumerate(PARAMS):
        print(p)
        for t_net in T_NET:
            tempered = [Tempering(network=t_net).apply(b[p]["log_likelihood"], b[p]["box_log_likelihood"])
                        for b in boxes]
            t = calibrate_temperature([truth_deficit(b[p]["grid"], ll, b["truth"][i])
                                       for b, ll in zip(boxes, tempered, strict=True)])
            widths, errors = [], []
            for b in boxes:
                s = summarize_profile(b[p]["grid"], b[p]["log_likelihood"], temperature=Tempering(t, t_net),
                                      box_log_likelihood=b[p]["box_log_likelihood"])
                widths.append(s["interval68"][1] - s["interval68"][0])
                errors.append(abs(s["map"] - b["truth"][i]))
            print(f"  T_net {t_net:>4g}: T {t:.3f}  median 68 % width {np.median(widths):.4f}  "
                  f"median |MAP - truth| {np.median(errors):.4f}")


if __name__ == "__main__":
    main()
