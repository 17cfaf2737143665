"""Compare toy runs of toy_infall.py: xi and v12 of 128 samples vs 128 fresh toy catalogs at Omega_m 0.2 / 0.4,
as ratios and residuals in sigma (bootstrap over catalogs, 200 resamples), and their chi2 over the 12 bins.

    python training/experiments/feature_scales/toy_eval.py RUN_DIR [RUN_DIR ...]
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_infall import EDGES, L, catalog  # noqa: E402

from lssviewer.model.api import load_model  # noqa: E402
from lssviewer.stats.pairs import analytic_rr, pair_counts  # noqa: E402
from lssviewer.stats.velocity import pairwise_velocity  # noqa: E402


def per_cat(cats):
    dd = np.array([pair_counts(c.positions, L, EDGES) for c in cats])
    rr = np.array([analytic_rr(c.n_halos, L, EDGES) for c in cats])
    parts = [pairwise_velocity(c.positions, c.velocities, L, EDGES) for c in cats]
    n = np.array([np.nan_to_num(p[2]) for p in parts])
    s = np.array([np.nan_to_num(p[0]) * np.nan_to_num(p[2]) for p in parts])
    return dd, rr, n, s


def summary(arrs, rng, nboot=200):
    dd, rr, n, s = arrs
    def est(idx):
        return np.concatenate([dd[idx].sum(0) / rr[idx].sum(0) - 1, s[idx].sum(0) / n[idx].sum(0)])
    full = est(np.arange(len(dd)))
    boots = np.array([est(rng.integers(0, len(dd), len(dd))) for _ in range(nboot)])
    return full, boots.std(0)


torch.set_num_threads(2)
rng = np.random.default_rng(0)
nb = len(EDGES) - 1
for om in (0.2, 0.4):
    trng = np.random.default_rng(11 + int(om * 10))
    sims = per_cat([catalog(om, 0.8, trng) for _ in range(128)])
    ref, ref_err = summary(sims, rng)

    for d in sys.argv[1:]:
        m = load_model(d, device="cpu")
        smp = per_cat(m.sample(om, 0.8, n=128, seed=5, steps=50, method="ancestral"))
        val, err = summary(smp, rng)
        z = (val - ref) / np.sqrt(err**2 + ref_err**2)
        print(f"Om {om} {d.split('/')[-1]:>6} xi ratio", np.round(val[:nb] / ref[:nb], 2), "v12 ratio",
              np.round(val[nb:] / ref[nb:], 2), "| z xi", np.round(z[:nb], 1), "z v12", np.round(z[nb:], 1),
              "chi2", round(float(np.sum(z**2)), 1))
