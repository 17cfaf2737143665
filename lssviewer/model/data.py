"""Training data: a suite of halo catalogs -> tensors, train/validation split, augmented batches."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import PriorBox
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.model.features import FeatureTransform, augment, catalog_to_raw


@dataclasses.dataclass
class Suite:
    """A training suite in array form.

    Attributes:
        raw: (B, N, 7) float64 raw features (see :mod:`lssviewer.model.features`).
        theta: (B, 2) float64 (Omega_m, sigma_8) of each box.
        box_size: Mpc/h; redshift; n_halos: N.
        fixed_cosmology: omega_b, h, n_s of the suite (not modelled; stored in the checkpoint).
        provenance: JSON-able description (source, number of boxes, checksum, first catalog's provenance).
    """

    raw: np.ndarray
    theta: np.ndarray
    box_size: float
    redshift: float
    n_halos: int
    fixed_cosmology: dict[str, float]
    provenance: dict[str, Any]

    def __len__(self) -> int:
        return len(self.raw)


def suite_from_catalogs(catalogs: Sequence[HaloCatalog], n_halos: int | None = None,
                        source: str = "<memory>") -> Suite:
    """Check a list of catalogs (common box, redshift, N, known cosmology) and convert it.

    With ``n_halos`` each catalog is cut to its ``n_halos`` most massive halos.
    """
    if not catalogs:
        raise CatalogError("the training suite holds no catalogs")
    first = catalogs[0]
    raws, thetas = [], []
    for i, cat in enumerate(catalogs):
        if cat.cosmology is None or cat.sigma_8 is None:
            raise CatalogError(f"catalog {i} has no (omega_m, sigma_8): training needs the cosmology of every box")
        if not np.isclose(cat.box_size, first.box_size, rtol=1e-9):
            raise CatalogError(f"catalog {i} has box {cat.box_size:g} Mpc/h, catalog 0 has {first.box_size:g}")
        if not np.isclose(cat.redshift, first.redshift, rtol=1e-9, atol=1e-9):
            raise CatalogError(f"catalog {i} is at z = {cat.redshift:g}, catalog 0 at z = {first.redshift:g}")
        if n_halos is not None:
            if cat.n_halos < n_halos:
                raise CatalogError(f"catalog {i} has {cat.n_halos} halos, fewer than n_halos = {n_halos}")
            cat = cat.top_n(n_halos)
        elif cat.n_halos != first.n_halos:
            raise CatalogError(f"catalog {i} has {cat.n_halos} halos, catalog 0 has {first.n_halos}; "
                               "set n_halos in the training config to keep the most massive ones")
        raws.append(catalog_to_raw(cat))
        thetas.append((cat.omega_m, cat.sigma_8))
    raw = np.stack(raws)
    digest = features_sha256(raw)
    cosmo = first.cosmology
    return Suite(raw=raw, theta=np.array(thetas, dtype=np.float64), box_size=float(first.box_size),
                 redshift=float(first.redshift), n_halos=int(raw.shape[1]),
                 fixed_cosmology={"omega_b": cosmo.omega_b, "h": cosmo.h, "n_s": cosmo.n_s},
                 provenance={"source": source, "n_catalogs": len(catalogs), "features_sha256": digest,
                             "first_catalog": {"name": first.name, **dict(first.provenance)}})


def load_suite(path: str | os.PathLike[str], n_halos: int | None = None) -> Suite:
    """Read a native HDF5 suite (``lssviewer.io.hdf5``) and convert it."""
    from lssviewer.io import hdf5

    catalogs = hdf5.read(path)
    return suite_from_catalogs(catalogs, n_halos=n_halos, source=os.fspath(Path(path).resolve()))


def features_sha256(raw: np.ndarray) -> str:
    """Checksum of a suite's feature array (boxes, halos, features): a model's ``data.features_sha256``."""
    return hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of n boxes into (train, validation) indices, sorted; at least one of each if n >= 2."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def warm_start_split(n: int, val_fraction: float, seed: int, source_n: int,
                     source_val: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The (train, validation) split of a warm start on a suite whose first ``source_n`` boxes are those the source
    model was trained on: the source's validation boxes stay validation boxes, its training boxes stay training
    boxes, and only the boxes added since (indices >= ``source_n``) are split anew (:func:`split_indices`). A plain
    re-split of the grown suite would train on boxes the source held out (and that its calibration and held-out
    benchmarks score) and call boxes it trained on held out."""
    keep = min(n, source_n)
    val_old = np.asarray(sorted({int(i) for i in source_val if 0 <= int(i) < keep}), dtype=np.int64)
    if n > source_n:
        _, val_new = split_indices(n - source_n, val_fraction, seed)
        val = np.concatenate([val_old, val_new.astype(np.int64) + source_n])
    else:
        val = val_old
    return np.setdiff1d(np.arange(n), val), val


def theta_to_unit(theta: Any, prior: PriorBox) -> Any:
    """(…, 2) (Omega_m, sigma_8) -> [0, 1]^2 inside the prior box (numpy or torch)."""
    b = prior.bounds()
    lo, hi = b[:, 0], b[:, 1]
    if isinstance(theta, torch.Tensor):
        lo_t = torch.as_tensor(lo, dtype=theta.dtype, device=theta.device)
        hi_t = torch.as_tensor(hi, dtype=theta.dtype, device=theta.device)
        return (theta - lo_t) / (hi_t - lo_t)
    return (np.asarray(theta, dtype=np.float64) - lo) / (hi - lo)


def check_suite_in_prior(suite: Suite, prior: PriorBox) -> None:
    bad = [i for i, (om, s8) in enumerate(suite.theta) if not prior.contains(om, s8)]
    if bad:
        om, s8 = suite.theta[bad[0]]
        raise ParameterError(f"{len(bad)} training box(es) outside the prior box, e.g. box {bad[0]} "
                             f"(omega_m={om:g}, sigma_8={s8:g}); widen 'prior' in the config")


class BatchSource:
    """Random augmented batches drawn from tensors kept on the training device.

    All random numbers come from one CPU ``torch.Generator`` (saved in checkpoints), drawn for the
    *global* batch, so that a run is reproducible, resumable bit for bit, and a DDP run draws the
    same global batch as a single-process run (each rank keeps its slice).
    """

    def __init__(self, raw: np.ndarray, theta_unit: np.ndarray, transform: FeatureTransform,
                 device: torch.device, symmetries: bool = True, shifts: bool = True):
        self.raw = torch.as_tensor(raw, dtype=torch.float32, device=device)
        self.theta = torch.as_tensor(theta_unit, dtype=torch.float32, device=device)
        self.theta_cpu = np.asarray(theta_unit, dtype=np.float64)  # for the standardisation: no device sync
        self.transform = transform
        self.device = device
        self.symmetries = symmetries
        self.shifts = shifts

    def __len__(self) -> int:
        return len(self.raw)

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x standardised (B, N, 7), theta in [0, 1]^2 (B, 2)) for a global batch of B boxes."""
        idx_cpu = torch.randint(0, len(self.raw), (batch,), generator=generator)
        idx = idx_cpu.to(self.device)
        raw = augment(self.raw[idx], generator, symmetries=self.symmetries, shifts=self.shifts)
        return self.transform.standardise(raw, self.theta_cpu[idx_cpu.numpy()]), self.theta[idx]
