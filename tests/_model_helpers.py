"""Shared helpers of the model tests (not a test module): a toy conditional dataset with an exact likelihood.

Toy model, N halos per box, iid:
  positions  uniform in the periodic box [0, L)^3              (density L^-3, independent of theta)
  velocities each component ~ Normal(0, sigma_v(theta)^2),     sigma_v = 300 (0.5 + Omega_m) km/s
  log10 M    ~ Normal(mu_m(theta), 0.25^2),                    mu_m = 13 + 1.5 (sigma_8 - 0.8) dex
so log L(theta) of a catalog in (x, y, z [Mpc/h], v [km/s], log10 M [dex]) is a sum of closed forms.
"""

from __future__ import annotations

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology

TOY_BOX = 100.0
TOY_Z = 0.5
SIGMA_M = 0.25


def toy_params(omega_m: float, sigma_8: float) -> tuple[float, float]:
    """(sigma_v [km/s], mu_m [dex]) of the toy distribution at theta."""
    return 300.0 * (0.5 + omega_m), 13.0 + 1.5 * (sigma_8 - 0.8)


def toy_catalog(omega_m: float, sigma_8: float, n: int, rng: np.random.Generator) -> HaloCatalog:
    sv, mu = toy_params(omega_m, sigma_8)
    pos = rng.uniform(0.0, TOY_BOX, (n, 3))
    vel = rng.normal(0.0, sv, (n, 3))
    logm = rng.normal(mu, SIGMA_M, n)
    return HaloCatalog(pos, vel, 10.0**logm, box_size=TOY_BOX, redshift=TOY_Z,
                       cosmology=Cosmology(omega_m=omega_m, sigma_8=sigma_8), name="toy")


def toy_suite(n_boxes: int, n: int, seed: int) -> list[HaloCatalog]:
    rng = np.random.default_rng(seed)
    (a, b), (c, d) = DEFAULT_PRIOR.omega_m, DEFAULT_PRIOR.sigma_8
    return [toy_catalog(float(rng.uniform(a, b)), float(rng.uniform(c, d)), n, rng) for _ in range(n_boxes)]


def toy_log_likelihood(cat: HaloCatalog, omega_m: float, sigma_8: float) -> float:
    """Exact log density of the catalog in (x, y, z [Mpc/h], vx, vy, vz [km/s], log10 M [dex])."""
    sv, mu = toy_params(omega_m, sigma_8)
    n = cat.n_halos
    v = cat.velocities
    m = cat.log10_mass
    lp = -3 * n * np.log(cat.box_size)
    lp += np.sum(-0.5 * (v / sv) ** 2 - np.log(sv) - 0.5 * np.log(2 * np.pi))
    lp += np.sum(-0.5 * ((m - mu) / SIGMA_M) ** 2 - np.log(SIGMA_M) - 0.5 * np.log(2 * np.pi))
    return float(lp)


def tiny_config(**changes):
    """A very small, fast training configuration (for plumbing tests, not accuracy)."""
    from lssviewer.model.network import NetworkConfig
    from lssviewer.model.train import TrainConfig

    base = dict(steps=6, batch_size=4, lr=1e-3, warmup=2, log_every=2, val_every=3, ckpt_every=3,
                val_boxes=2, val_noise=2, sample_steps=4,
                network=NetworkConfig(d_model=16, n_layers=1, n_heads=2, mlp_ratio=2, fourier_features=1,
                                      cond_dim=16))
    base.update(changes)
    return TrainConfig(**base)


def ddp_worker(rank: int, world: int, init_file: str, out: str, cfg_dict: dict, n_boxes: int) -> None:
    """One process of the DDP smoke test (torch.multiprocessing.spawn target)."""
    import torch
    import torch.distributed as dist

    from lssviewer.model.train import TrainConfig, train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        train(toy_suite(n_boxes, 8, seed=4), out, TrainConfig.from_dict(cfg_dict), progress=False)
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's C++ teardown: in ~1 of 30 runs a worker that had trained, saved and
    # destroyed its process group still aborted at exit ("terminate called without an active exception",
    # SIGABRT: a joinable torch/gloo thread destroyed at exit), which failed this test after all its work
    # was done. Reached only on success (an exception above propagates to mp.spawn as usual).
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
