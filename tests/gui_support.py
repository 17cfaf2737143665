"""Helpers for the GUI tests (not a conftest: imported explicitly by tests/test_gui_*.py).

``tiny_model_dir`` writes a small *real* lssviewer model (untrained weights, real architecture,
real checkpoint format) with the model package's own public functions, so the GUI tests run the
real sampler and the real ELBO scan, only faster than the built-in model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology


def tiny_model_dir(directory: Path, n_halos: int = 300, box_size: float = 300.0, redshift: float = 0.5,
                   d_model: int = 32, n_layers: int = 1, default_steps: int = 20, seed: int = 0) -> Path:
    """Write an untrained but complete model directory (model.json + model.safetensors + card.json)."""
    import torch

    from lssviewer.model import checkpoint
    from lssviewer.model.api import build_vdm

    torch.manual_seed(seed)
    meta = {
        "architecture": {
            "network": {"d_model": d_model, "n_layers": n_layers, "n_heads": 2, "mlp_ratio": 2,
                        "fourier_features": 2, "cond_dim": d_model, "induced_points": 0},
            "schedule": {"kind": "linear", "gamma_min": -8.0, "gamma_max": 14.0, "learn_endpoints": False},
        },
        "prior": {"omega_m": [0.1, 0.5], "sigma_8": [0.6, 1.0]},
        "n_halos": n_halos, "box_size": box_size, "redshift": redshift,
        "features": {"box_size": box_size, "velocity_std": 300.0, "mass_mean": 13.5, "mass_std": 0.4},
        "fixed_cosmology": {"omega_b": 0.049, "h": 0.6711, "n_s": 0.9624},
        "sampler": {"default_steps": default_steps, "method": "ancestral"},
    }
    vdm = build_vdm(meta)
    checkpoint.save_model(directory, {k: v.contiguous() for k, v in vdm.state_dict().items()}, meta)
    checkpoint.write_card(directory, {"name": "tiny-test-model", "purpose": "GUI tests (untrained weights)",
                                      "n_halos": n_halos})
    return Path(directory)


def toy_suite(path: Path, n_cosmologies: int = 2, realisations: int = 2, n_halos: int = 400,
              box_size: float = 300.0, redshift: float = 0.5, seed: int = 0) -> list[HaloCatalog]:
    """Write a small suite of random catalogs (realisations at a few cosmologies) with lssviewer.io."""
    from lssviewer import io

    rng = np.random.default_rng(seed)
    cats = []
    for c in range(n_cosmologies):
        cosmo = Cosmology(0.25 + 0.05 * c, 0.75 + 0.05 * c)
        for r in range(realisations):
            cats.append(HaloCatalog(rng.uniform(0, box_size, (n_halos, 3)), rng.normal(0, 300, (n_halos, 3)),
                                    10 ** rng.uniform(13, 14.5, n_halos), box_size, redshift=redshift,
                                    cosmology=cosmo, name=f"toy c{c} r{r}"))
    io.save(cats, path)
    return cats


def grab_stats(arr: np.ndarray) -> tuple[int, float]:
    """(number of distinct colours, mean brightness) of an (H, W, 3) uint8 image."""
    flat = arr.reshape(-1, 3)
    distinct = len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0))
    return distinct, float(flat.mean())
