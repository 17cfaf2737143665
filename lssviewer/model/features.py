"""Per-halo features of the diffusion model, their standardisation, and the periodic box.

A catalog of N halos becomes an (N, 7) array of *raw* features

    u_x, u_y, u_z   positions as fractions of the box, x / L in [0, 1)   (dimensionless)
    v_x, v_y, v_z   peculiar velocities in km/s
    m               log10 of the halo mass in Msun/h

and the model works with *standardised* features ``(raw - mean) / std``. The statistics are chosen
so that standardisation commutes with the symmetries of the periodic cube:

* positions: mean 1/2 and std 1/sqrt(12) (those of a uniform distribution in the box) for all
  three axes, so that a reflection u -> 1 - u is z -> -z;
* velocities: mean 0 and one common std (rms over all three components of the training set);
* log10 mass: training-set mean and std.

Periodic box (the choice made here, see docs/model.md): the diffusion acts on standardised
coordinates (a Gaussian process on R^3 has no notion of a torus), the training data are augmented
with the 48 symmetries of the cube and random periodic shifts (:func:`augment`), the score network
additionally sees Fourier features of the positions so that halos close across a face are close
in its input, and sampled positions are wrapped into [0, L) at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import CatalogError

N_FEATURES = 7
FEATURE_NAMES = ("x", "y", "z", "vx", "vy", "vz", "log10_mass")
FEATURE_UNITS = ("Mpc/h", "Mpc/h", "Mpc/h", "km/s", "km/s", "km/s", "dex (Msun/h)")
POS = slice(0, 3)
VEL = slice(3, 6)
MASS = 6
#: Standard deviation of a uniform variable on [0, 1).
UNIFORM_STD = 1.0 / math.sqrt(12.0)


def catalog_to_raw(catalog: HaloCatalog) -> np.ndarray:
    """(N, 7) float64 raw features: x/L, y/L, z/L, vx, vy, vz [km/s], log10 M [Msun/h]."""
    return np.column_stack([catalog.positions / catalog.box_size, catalog.velocities, catalog.log10_mass])


def raw_to_physical(raw: np.ndarray, box_size: float) -> np.ndarray:
    """(..., 7) raw features -> x, y, z [Mpc/h, wrapped into [0, L)], vx, vy, vz [km/s], log10 M."""
    out = np.array(raw, dtype=np.float64, copy=True)
    u = np.mod(out[..., POS], 1.0)
    u[u >= 1.0] = 0.0
    out[..., POS] = u * box_size
    pos = out[..., POS]
    pos[pos >= box_size] = 0.0  # rounding of u * L
    return out


@dataclasses.dataclass(frozen=True)
class FeatureTransform:
    """Standardisation of the raw features (stored in every checkpoint).

    Attributes:
        box_size: side of the periodic box in Mpc/h.
        velocity_std: common standard deviation of the velocity components in km/s.
        mass_mean, mass_std: mean and standard deviation of log10 M [Msun/h].
    """

    box_size: float
    velocity_std: float
    mass_mean: float
    mass_std: float

    @classmethod
    def fit(cls, raw: np.ndarray, box_size: float) -> FeatureTransform:
        """Statistics of a training set of raw features (..., 7)."""
        raw = np.asarray(raw, dtype=np.float64).reshape(-1, N_FEATURES)
        vstd = float(np.sqrt(np.mean(raw[:, VEL] ** 2)))
        mstd = float(raw[:, MASS].std())
        if not (vstd > 0 and mstd > 0):
            raise CatalogError("training data have zero velocity or log-mass spread: cannot standardise")
        return cls(box_size=float(box_size), velocity_std=vstd, mass_mean=float(raw[:, MASS].mean()),
                   mass_std=mstd)

    @property
    def mean(self) -> np.ndarray:
        """(7,) means of the raw features."""
        return np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.0, self.mass_mean])

    @property
    def std(self) -> np.ndarray:
        """(7,) standard deviations of the raw features."""
        return np.array([UNIFORM_STD] * 3 + [self.velocity_std] * 3 + [self.mass_std])

    def standardise(self, raw: Any) -> Any:
        """Raw -> standardised (numpy or torch, any leading shape)."""
        mean, std = self._like(raw)
        return (raw - mean) / std

    def unstandardise(self, z: Any) -> Any:
        """Standardised -> raw (numpy or torch, any leading shape)."""
        mean, std = self._like(z)
        return z * std + mean

    def _like(self, arr: Any) -> tuple[Any, Any]:
        if isinstance(arr, torch.Tensor):
            return (torch.as_tensor(self.mean, dtype=arr.dtype, device=arr.device),
                    torch.as_tensor(self.std, dtype=arr.dtype, device=arr.device))
        return self.mean, self.std

    def physical_scales(self) -> np.ndarray:
        """(7,) d(physical feature)/d(standardised feature): L/sqrt(12) Mpc/h, sigma_v km/s, sigma_m dex."""
        return np.array([UNIFORM_STD * self.box_size] * 3 + [self.velocity_std] * 3 + [self.mass_std])

    def log_jacobian(self, n_halos: int) -> float:
        """log |d z / d physical| for one catalog: add it to a log density of standardised features
        to get the log density of (x, y, z [Mpc/h], vx, vy, vz [km/s], log10 M [dex])."""
        return -float(n_halos) * float(np.sum(np.log(self.physical_scales())))

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FeatureTransform:
        return cls(**{f.name: float(values[f.name]) for f in dataclasses.fields(cls)})


# ---------------------------------------------------------------------------------------------- symmetries
def cube_symmetries() -> tuple[np.ndarray, np.ndarray]:
    """The 48 symmetries of the cube as (48, 3) axis permutations and (48, 3) signs (+1/-1).

    Symmetry k maps a vector a to b with b_i = signs[k, i] * a[perms[k, i]].
    """
    perms, signs = [], []
    for p in itertools.permutations(range(3)):
        for s in itertools.product((1.0, -1.0), repeat=3):
            perms.append(p)
            signs.append(s)
    return np.array(perms, dtype=np.int64), np.array(signs, dtype=np.float64)


_PERMS, _SIGNS = cube_symmetries()


def augment(raw: torch.Tensor, generator: torch.Generator | None = None,
            symmetries: bool = True, shifts: bool = True) -> torch.Tensor:
    """Apply an independent random symmetry of the periodic box to each catalog of a batch.

    Args:
        raw: (B, N, 7) raw features (positions as box fractions in [0, 1)).
        generator: a CPU torch.Generator (all random draws come from it, on the CPU, so that a
            run is reproducible and independent of the device).
        symmetries: apply one of the 48 rotations/reflections of the cube (to positions and velocities).
        shifts: add a uniform random periodic translation to the positions.

    Returns:
        (B, N, 7) raw features, positions wrapped into [0, 1). Pair separations on the torus and
        the relative velocity projected on them (hence pairwise velocities) are unchanged.
    """
    b = raw.shape[0]
    out = raw.clone()
    if symmetries:
        k = torch.randint(0, len(_PERMS), (b,), generator=generator)
        perm = torch.as_tensor(_PERMS, device=raw.device)[k.to(raw.device)]  # (B, 3)
        sign = torch.as_tensor(_SIGNS, dtype=raw.dtype, device=raw.device)[k.to(raw.device)]  # (B, 3)
        idx = perm[:, None, :].expand(b, raw.shape[1], 3)
        out[..., POS] = torch.gather(raw[..., POS], 2, idx) * sign[:, None, :]
        out[..., VEL] = torch.gather(raw[..., VEL], 2, idx) * sign[:, None, :]
    if shifts:
        shift = torch.rand((b, 1, 3), generator=generator, dtype=torch.float64).to(raw.device, raw.dtype)
        out[..., POS] = out[..., POS] + shift
    out[..., POS] = torch.remainder(out[..., POS], 1.0)
    return out


def fourier_features(u: torch.Tensor, n_frequencies: int, geometric: bool = False) -> torch.Tensor:
    """Periodic embedding of box fractions u (..., 3): sin and cos of 2 pi k u -> (..., 6K).

    k = 1..K (linear), or k = 1, 2, 4, ..., 2^(K-1) (``geometric``: wavelengths down to L / 2^(K-1),
    so the embedding resolves the scales of halo clustering, a few Mpc/h, and not only the box).
    """
    if geometric:
        k = 2.0 ** torch.arange(n_frequencies, dtype=u.dtype, device=u.device)
    else:
        k = torch.arange(1, n_frequencies + 1, dtype=u.dtype, device=u.device)
    ang = 2.0 * math.pi * u[..., :, None] * k  # (..., 3, K)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1).flatten(-2)


def stack_catalogs(catalogs: Sequence[HaloCatalog]) -> np.ndarray:
    """(B, N, 7) raw features of catalogs with identical N (CatalogError otherwise)."""
    sizes = {c.n_halos for c in catalogs}
    if len(sizes) != 1:
        raise CatalogError(f"catalogs have different numbers of halos ({sorted(sizes)[:5]}...); "
                           "the model needs the same N in every box")
    return np.stack([catalog_to_raw(c) for c in catalogs])
