"""Toy test of feature scales: clustered halos whose velocities fall in towards their group centre.

Box 100 Mpc/h, 16 groups x 4 halos at offsets N(0, 3 Mpc/h) per axis around uniform centres; velocity
v = -A (x - c) + N(0, 150 km/s) with A = 80 (km/s)/(Mpc/h) x (0.5 + Omega_m) (infall); log M ~ N(14, 0.3).
Trains a small model (the real code path: box standardisation, relative phases, distance bias) with the
given feature_velocity_scale and prints xi and v12 of 64 samples and 64 fresh toy catalogs at Omega_m 0.2 / 0.4
(`toy_eval.py` compares saved runs with bootstrap errors). Like the built-in model, its samples have too little
infall at the larger separations (8-12 Mpc/h: 77-78 % of the catalogs' after 16k steps). Results: toy_results.json.

    NT=2 python training/experiments/feature_scales/toy_infall.py VSCALE MINUTES SEED OUT [STEPS]

(STEPS: stop after exactly this many steps, for runs compared at equal steps; ~25-30 steps/s on 2 cores.)
"""
import json
import os
import sys
import time

import numpy as np
import torch

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology
from lssviewer.model.api import load_model
from lssviewer.model.network import NetworkConfig
from lssviewer.model.train import TrainConfig, train
from lssviewer.stats.pairs import analytic_rr, pair_counts
from lssviewer.stats.velocity import pairwise_velocity

L = 100.0
EDGES = np.array([0.5, 1.5, 3.0, 5.0, 8.0, 12.0, 20.0])


def catalog(om, s8, rng):
    c = rng.uniform(0, L, (16, 3))
    off = rng.normal(0, 3.0, (16, 4, 3))
    pos = np.mod(c[:, None, :] + off, L).reshape(-1, 3)
    a = 80.0 * (0.5 + om)
    vel = (-a * off + rng.normal(0, 150.0, off.shape)).reshape(-1, 3)
    logm = rng.normal(14.0, 0.3, 64)
    return HaloCatalog(pos, vel, 10 ** logm, box_size=L, redshift=0.5, cosmology=Cosmology(om, s8))


def stats(cats):
    dd = sum(pair_counts(c.positions, L, EDGES) for c in cats)
    rr = sum(analytic_rr(c.n_halos, L, EDGES) for c in cats)
    parts = [pairwise_velocity(c.positions, c.velocities, L, EDGES) for c in cats]
    n = sum(np.nan_to_num(p[2]) for p in parts)
    v12 = sum(np.nan_to_num(p[0]) * p[2] for p in parts) / n
    return (dd / rr - 1).round(3).tolist(), v12.round(1).tolist()


def main():
    vs, minutes, seed, out = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    stop_after = int(sys.argv[5]) if len(sys.argv) > 5 else None  # train exactly this many steps
    torch.set_num_threads(int(os.environ.get("NT", "2")))
    rng = np.random.default_rng(100)
    (a, b), (c, d) = DEFAULT_PRIOR.omega_m, DEFAULT_PRIOR.sigma_8
    suite = [catalog(rng.uniform(a, b), rng.uniform(c, d), rng) for _ in range(512)]
    net = NetworkConfig(d_model=64, n_layers=3, n_heads=4, mlp_ratio=2, fourier_features=5, fourier_geometric=1,
                        distance_bias=1, relative_phases=4, cond_dim=64)
    cfg = TrainConfig(steps=100000, batch_size=16, lr=3e-4, warmup=200, val_boxes=8, val_noise=4, val_every=100000,
                      ckpt_every=100000, log_every=200, feature_theta_degree=1, feature_per_box=True,
                      feature_velocity_scale=vs, seed=seed, network=net)
    t0 = time.time()
    res = train(suite, out, cfg, progress=False, time_limit=minutes * 60, stop_after=stop_after)
    model = load_model(out, device="cpu")
    test_rng = np.random.default_rng(7)
    report = {"velocity_scale": vs, "steps": res.step, "seconds": round(time.time() - t0)}
    for om in (0.2, 0.4):
        sims = [catalog(om, 0.8, test_rng) for _ in range(64)]
        samples = model.sample(om, 0.8, n=64, seed=seed, steps=50, method="ancestral")
        report[str(om)] = {"sims": stats(sims), "samples": stats(samples)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
