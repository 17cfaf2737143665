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

With ``theta_degree = d > 0`` (*conditional standardisation*) the velocity std and the log-mass mean
and std are instead smooth functions of the cosmology: polynomials of degree d in theta (mapped to
[0, 1]^2 in the prior box), fitted by least squares to the per-box values of the training suite (the
stds through their logarithms). The mass scale and the velocity dispersion at given theta are then
exact, smooth and explicit, and the diffusion model learns only what is left: the shape of the
distributions and the correlations between halos. These collective numbers are a handful of the
7 N dimensions, so the diffusion loss barely rewards learning them, and a model without this
conditioning drew samples whose whole mass function was shifted at random by ~0.3-0.4 dex
(docs/model.md). The density transforms with the theta-dependent Jacobian :meth:`log_jacobian`.

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


def theta_monomials(theta_unit: np.ndarray, degree: int) -> np.ndarray:
    """(..., M) monomials a^i b^j (i + j <= degree, ordered by total degree) of theta_unit (..., 2)."""
    a, b = theta_unit[..., 0], theta_unit[..., 1]
    return np.stack([a**i * b**(k - i) for k in range(degree + 1) for i in range(k, -1, -1)], axis=-1)


def n_monomials(degree: int) -> int:
    return (degree + 1) * (degree + 2) // 2


@dataclasses.dataclass(frozen=True)
class FeatureTransform:
    """Standardisation of the raw features (stored in every checkpoint).

    Attributes:
        box_size: side of the periodic box in Mpc/h.
        velocity_std: common standard deviation of the velocity components in km/s.
        mass_mean, mass_std: mean and standard deviation of log10 M [Msun/h].
        theta_degree: 0, or the degree of the polynomials in theta_unit of the conditional statistics.
        theta_coefs: with theta_degree > 0, three rows of monomial coefficients (:func:`theta_monomials`):
            log10 M mean [dex], log of the log10 M std [log dex], log of the velocity std [log km/s].
    """

    box_size: float
    velocity_std: float
    mass_mean: float
    mass_std: float
    theta_degree: int = 0
    theta_coefs: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def fit(cls, raw: np.ndarray, box_size: float, theta_unit: np.ndarray | None = None,
            degree: int = 0) -> FeatureTransform:
        """Statistics of a training set of raw features (B, N, 7); with ``degree`` > 0 and the boxes'
        ``theta_unit`` (B, 2), also the conditional polynomials."""
        raw = np.asarray(raw, dtype=np.float64)
        flat = raw.reshape(-1, N_FEATURES)
        vstd = float(np.sqrt(np.mean(flat[:, VEL] ** 2)))
        mstd = float(flat[:, MASS].std())
        if not (vstd > 0 and mstd > 0):
            raise CatalogError("training data have zero velocity or log-mass spread: cannot standardise")
        coefs: tuple[tuple[float, ...], ...] = ()
        if degree > 0:
            if theta_unit is None or raw.ndim != 3 or len(theta_unit) != len(raw):
                raise CatalogError("conditional standardisation needs (B, N, 7) features and (B, 2) theta")
            if len(raw) < 3 * n_monomials(degree):
                raise CatalogError(f"conditional standardisation of degree {degree} needs >= "
                                   f"{3 * n_monomials(degree)} training boxes, got {len(raw)}")
            per_box = np.column_stack([raw[:, :, MASS].mean(1), np.log(raw[:, :, MASS].std(1)),
                                       np.log(np.sqrt(np.mean(raw[:, :, VEL] ** 2, axis=(1, 2))))])
            if not np.all(np.isfinite(per_box)):
                raise CatalogError("a training box has zero velocity or log-mass spread: cannot standardise")
            design = theta_monomials(np.asarray(theta_unit, dtype=np.float64), degree)
            if np.linalg.matrix_rank(design) < n_monomials(degree):
                raise CatalogError(f"the training cosmologies cannot determine a degree-{degree} polynomial "
                                   "(too few distinct theta); lower feature_theta_degree")
            sol, *_ = np.linalg.lstsq(design, per_box, rcond=None)
            coefs = tuple(tuple(float(c) for c in row) for row in sol.T)
        return cls(box_size=float(box_size), velocity_std=vstd, mass_mean=float(flat[:, MASS].mean()),
                   mass_std=mstd, theta_degree=int(degree), theta_coefs=coefs)

    @property
    def conditional(self) -> bool:
        return self.theta_degree > 0

    @property
    def mean(self) -> np.ndarray:
        """(7,) means of the raw features (unconditional statistics)."""
        return np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.0, self.mass_mean])

    @property
    def std(self) -> np.ndarray:
        """(7,) standard deviations of the raw features (unconditional statistics)."""
        return np.array([UNIFORM_STD] * 3 + [self.velocity_std] * 3 + [self.mass_std])

    def stats(self, theta_unit: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the raw features: (7,), or, conditional, (..., 7) for theta_unit (..., 2)
        (numpy or torch; evaluated in float64 numpy on the CPU)."""
        if not self.conditional:
            return self.mean, self.std
        if theta_unit is None:
            raise ValueError("this model standardises features conditionally on theta: pass theta_unit")
        if isinstance(theta_unit, torch.Tensor):
            theta_unit = theta_unit.detach().cpu().numpy()
        mono = theta_monomials(np.asarray(theta_unit, dtype=np.float64), self.theta_degree)
        mass_mean, log_mass_std, log_vstd = np.moveaxis(mono @ np.asarray(self.theta_coefs).T, -1, 0)
        ones = np.ones_like(mass_mean)
        mean = np.stack([0.5 * ones] * 3 + [0.0 * ones] * 3 + [mass_mean], axis=-1)
        std = np.stack([UNIFORM_STD * ones] * 3 + [np.exp(log_vstd)] * 3 + [np.exp(log_mass_std)], axis=-1)
        return mean, std

    def standardise(self, raw: Any, theta_unit: Any = None) -> Any:
        """Raw (..., N, 7) -> standardised (numpy or torch); theta_unit (..., 2) if conditional."""
        mean, std = self._like(raw, theta_unit)
        return (raw - mean) / std

    def unstandardise(self, z: Any, theta_unit: Any = None) -> Any:
        """Standardised (..., N, 7) -> raw (numpy or torch); theta_unit (..., 2) if conditional."""
        mean, std = self._like(z, theta_unit)
        return z * std + mean

    def _like(self, arr: Any, theta_unit: Any = None) -> tuple[Any, Any]:
        mean, std = self.stats(theta_unit)
        if self.conditional:  # (..., 7) -> (..., 1, 7): one set per catalog, shared by its halos
            mean, std = mean[..., None, :], std[..., None, :]
        if isinstance(arr, torch.Tensor):
            return (torch.as_tensor(mean, dtype=arr.dtype, device=arr.device),
                    torch.as_tensor(std, dtype=arr.dtype, device=arr.device))
        return mean, std

    def physical_scales(self, theta_unit: Any = None) -> np.ndarray:
        """(7,) or (..., 7) d(physical feature)/d(standardised feature): L/sqrt(12) Mpc/h, sigma_v km/s,
        sigma_m dex."""
        std = np.array(self.stats(theta_unit)[1], dtype=np.float64)
        std[..., POS] = UNIFORM_STD * self.box_size
        return std

    def log_jacobian(self, n_halos: int, theta_unit: Any = None) -> Any:
        """log |d z / d physical| for one catalog (a float, or (...,) for conditional theta_unit (..., 2)):
        add it to a log density of standardised features to get the log density of (x, y, z [Mpc/h],
        vx, vy, vz [km/s], log10 M [dex])."""
        out = -float(n_halos) * np.sum(np.log(self.physical_scales(theta_unit)), axis=-1)
        return float(out) if np.ndim(out) == 0 else out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box_size": self.box_size, "velocity_std": self.velocity_std,
                             "mass_mean": self.mass_mean, "mass_std": self.mass_std}
        if self.conditional:
            d.update(theta_degree=self.theta_degree, theta_coefs=[list(r) for r in self.theta_coefs])
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FeatureTransform:
        base = {k: float(values[k]) for k in ("box_size", "velocity_std", "mass_mean", "mass_std")}
        degree = int(values.get("theta_degree", 0))
        coefs: tuple[tuple[float, ...], ...] = ()
        if degree > 0:
            coefs = tuple(tuple(float(c) for c in row) for row in values["theta_coefs"])
            if len(coefs) != 3 or any(len(r) != n_monomials(degree) for r in coefs):
                raise ValueError(f"theta_coefs must be 3 rows of {n_monomials(degree)} coefficients")
        return cls(**base, theta_degree=degree, theta_coefs=coefs)


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
