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

(Standardised velocities and log masses then have spread 1, or ``velocity_scale`` / ``mass_scale`` where
those are set: smaller spreads make the reverse diffusion settle them after the positions; docs/model.md,
"Feature scales".)

With ``theta_degree = d > 0`` (*conditional standardisation*) the velocity std and the log-mass mean
and std are instead smooth functions of the cosmology: polynomials of degree d in theta (mapped to
[0, 1]^2 in the prior box), fitted by least squares to the per-box values of the training suite (the
stds through their logarithms). The mass scale and the velocity dispersion at given theta are then
exact, smooth and explicit, and the diffusion model learns only what is left: the shape of the
distributions and the correlations between halos. These collective numbers are a handful of the
7 N dimensions, so the diffusion loss barely rewards learning them, and a model without this
conditioning drew samples whose whole mass function was shifted at random by ~0.3-0.4 dex
(docs/model.md). The density transforms with the theta-dependent Jacobian :meth:`log_jacobian`.

With ``per_box`` (*box standardisation*, also conditional) each catalog is standardised by its *own*
three box statistics s = (mean of log10 M [dex], log of the std of log10 M, log of the rms velocity
component [log km/s]), and the model is hierarchical:

    p(x | theta) = N(s(x); mu(theta), C) * p_net(z(x) | theta) * |J(x)|,

where mu(theta) are the polynomials above, C(theta) is the covariance of the training boxes' statistics
about them (box-to-box scatter: cosmic variance of the large-scale modes in one box; standard deviations
exp(polynomial of degree ``box_sd_degree`` in theta), fitted to log r^2, and one correlation matrix), p_net is the
diffusion model of the standardised catalog z (which then has exactly zero-mean, unit-spread masses and
unit-rms velocities) and |J| depends on x only. The box statistics are thereby described with the
scatter a finite box really has, which a density of (nearly) independent halos cannot express: with
theta-standardisation the built-in model v0.2's log L was ~6 x too sharp (temperature 5.8: intervals ~2.4 x
too narrow), whereas
a Gaussian on s alone covers the truth at the nominal rate (docs/model.md). Sampling draws s from the
Gaussian and z from the network (:meth:`FeatureTransform.draw_box_statistics`, :meth:`project`).

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
#: -E[log chi^2_1] = Euler gamma + log 2: log r^2 of a Gaussian residual of variance s^2 averages log s^2 - 1.27.
_MINUS_MEAN_LOG_CHI2_1 = 0.5772156649015329 + math.log(2.0)


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
        per_box: box standardisation (module docstring): each catalog by its own statistics, whose
            distribution given theta is Gaussian with mean from ``theta_coefs`` and covariance :meth:`box_cov`.
        box_sd_degree, box_sd_coefs: with ``per_box``, the log standard deviations of the three box statistics
            about their means, as polynomials of this degree in theta_unit (three rows of coefficients).
        box_corr: with ``per_box``, the 3 x 3 correlation matrix of the box statistics about their means.
        velocity_scale, mass_scale: standard deviations of the standardised velocities and log masses
            (default 1, as for positions). The VDM adds noise of the same size to every standardised
            feature, so a scale below 1 makes the reverse process settle that feature later (at lower noise)
            than the positions, i.e. conditioned on structure already formed; the Jacobian includes it.
    """

    box_size: float
    velocity_std: float
    mass_mean: float
    mass_std: float
    theta_degree: int = 0
    theta_coefs: tuple[tuple[float, ...], ...] = ()
    per_box: bool = False
    box_sd_degree: int = 0
    box_sd_coefs: tuple[tuple[float, ...], ...] = ()
    box_corr: tuple[tuple[float, ...], ...] = ()
    velocity_scale: float = 1.0
    mass_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("velocity_scale", "mass_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    @classmethod
    def fit(cls, raw: np.ndarray, box_size: float, theta_unit: np.ndarray | None = None,
            degree: int = 0, per_box: bool = False, sd_degree: int = 1, velocity_scale: float = 1.0,
            mass_scale: float = 1.0) -> FeatureTransform:
        """Statistics of a training set of raw features (B, N, 7); with ``degree`` > 0 and the boxes'
        ``theta_unit`` (B, 2), also the conditional polynomials; with ``per_box`` (needs ``degree`` > 0)
        also the scatter of the box statistics about them: log standard deviations as polynomials of degree
        ``sd_degree`` (least squares on log r^2 + 1.27, the mean of log chi^2_1, then rescaled so that the
        standardised residuals have unit variance) and their correlation matrix. ``velocity_scale`` and
        ``mass_scale``: see the class docstring."""
        if per_box and degree < 1:
            raise CatalogError("box standardisation needs feature_theta_degree >= 1")
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
            with np.errstate(divide="ignore"):
                stats = box_statistics(raw)
            if not np.all(np.isfinite(stats)):
                raise CatalogError("a training box has zero velocity or log-mass spread: cannot standardise")
            design = theta_monomials(np.asarray(theta_unit, dtype=np.float64), degree)
            if np.linalg.matrix_rank(design) < n_monomials(degree):
                raise CatalogError(f"the training cosmologies cannot determine a degree-{degree} polynomial "
                                   "(too few distinct theta); lower feature_theta_degree")
            sol, *_ = np.linalg.lstsq(design, stats, rcond=None)
            coefs = tuple(tuple(float(c) for c in row) for row in sol.T)
        extra: dict[str, Any] = {}
        if per_box:
            resid = stats - design @ sol
            sd_design = theta_monomials(np.asarray(theta_unit, dtype=np.float64), sd_degree)
            if len(raw) <= n_monomials(degree) + n_monomials(sd_degree) + 3:
                raise CatalogError(f"box standardisation with degrees {degree} / {sd_degree} needs more than "
                                   f"{n_monomials(degree) + n_monomials(sd_degree) + 3} training boxes")
            with np.errstate(divide="ignore"):
                log_r2 = np.log(resid**2)
            if not np.all(np.isfinite(log_r2)):
                raise CatalogError("a training box's statistics equal their fit exactly: cannot fit the scatter")
            sd_sol, *_ = np.linalg.lstsq(sd_design, 0.5 * (log_r2 + _MINUS_MEAN_LOG_CHI2_1), rcond=None)
            z = resid / np.exp(sd_design @ sd_sol)
            scale = np.sqrt(np.sum(z**2, axis=0) / (len(raw) - n_monomials(degree)))
            sd_sol[0] += np.log(scale)  # the first monomial is the constant
            corr = np.corrcoef((z / scale).T)
            if np.linalg.eigvalsh(corr).min() <= 1e-9:
                raise CatalogError("the training boxes' statistics have a singular scatter: cannot use box "
                                   "standardisation")
            extra = dict(per_box=True, box_sd_degree=int(sd_degree),
                         box_sd_coefs=tuple(tuple(float(c) for c in row) for row in sd_sol.T),
                         box_corr=tuple(tuple(float(c) for c in row) for row in corr))
        return cls(box_size=float(box_size), velocity_std=vstd, mass_mean=float(flat[:, MASS].mean()),
                   mass_std=mstd, theta_degree=int(degree), theta_coefs=coefs, velocity_scale=float(velocity_scale),
                   mass_scale=float(mass_scale), **extra)

    @property
    def conditional(self) -> bool:
        return self.theta_degree > 0

    @property
    def theta_dependent(self) -> bool:
        """Whether a catalog's standardised features depend on theta (conditional, not box-standardised)."""
        return self.conditional and not self.per_box

    @property
    def mean(self) -> np.ndarray:
        """(7,) means of the raw features (unconditional statistics)."""
        return np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.0, self.mass_mean])

    @property
    def std(self) -> np.ndarray:
        """(7,) raw-feature units per standardised unit (unconditional statistics): the raw standard deviations,
        divided by ``velocity_scale`` / ``mass_scale``."""
        return np.array([UNIFORM_STD] * 3 + [self.velocity_std / self.velocity_scale] * 3
                        + [self.mass_std / self.mass_scale])

    @property
    def spreads(self) -> np.ndarray:
        """(4,) standard deviations the standardisation gives velocities (3) and log masses (1): the scales."""
        return np.array([self.velocity_scale] * 3 + [self.mass_scale])

    def box_mean(self, theta_unit: Any) -> np.ndarray:
        """(..., 3) mean box statistics at theta_unit (..., 2): the theta polynomials (conditional models)."""
        if isinstance(theta_unit, torch.Tensor):
            theta_unit = theta_unit.detach().cpu().numpy()
        mono = theta_monomials(np.asarray(theta_unit, dtype=np.float64), self.theta_degree)
        return mono @ np.asarray(self.theta_coefs).T

    def stats(self, theta_unit: Any = None, box: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the raw features: (7,), or, conditional, (..., 7) for theta_unit (..., 2)
        (numpy or torch; evaluated in float64 numpy on the CPU); with ``box`` (..., 3) box statistics
        (:func:`box_statistics`), those of a catalog with these statistics."""
        if box is None:
            if not self.conditional:
                return self.mean, self.std
            if theta_unit is None:
                raise ValueError("this model standardises features conditionally on theta: pass theta_unit")
            box = self.box_mean(theta_unit)
        elif isinstance(box, torch.Tensor):
            box = box.detach().cpu().numpy()
        mass_mean, log_mass_std, log_vstd = np.moveaxis(np.asarray(box, dtype=np.float64), -1, 0)
        ones = np.ones_like(mass_mean)
        mean = np.stack([0.5 * ones] * 3 + [0.0 * ones] * 3 + [mass_mean], axis=-1)
        std = np.stack([UNIFORM_STD * ones] * 3 + [np.exp(log_vstd) / self.velocity_scale] * 3
                       + [np.exp(log_mass_std) / self.mass_scale], axis=-1)
        return mean, std

    def standardise(self, raw: Any, theta_unit: Any = None) -> Any:
        """Raw (..., N, 7) -> standardised (numpy or torch); theta_unit (..., 2) if conditional (ignored with
        ``per_box``: each catalog by its own statistics)."""
        if self.per_box:
            return self.project(raw)
        mean, std = self._like(raw, theta_unit)
        return (raw - mean) / std

    def unstandardise(self, z: Any, theta_unit: Any = None, box: Any = None) -> Any:
        """Standardised (..., N, 7) -> raw (numpy or torch); theta_unit (..., 2) if conditional; ``per_box``
        models need the catalogs' box statistics ``box`` (..., 3) instead."""
        if self.per_box and box is None:
            raise ValueError("a box-standardised model needs the box statistics to unstandardise")
        mean, std = self._like(z, theta_unit, box)
        return z * std + mean

    def project(self, arr: Any, standardised: bool = False) -> Any:
        """Standardise each catalog (..., N, 7) by its own statistics (numpy or torch): log masses to zero
        mean and std ``mass_scale``, velocities to rms ``velocity_scale`` (1 by default); positions (box
        fractions) as in :meth:`stats`, or, with ``standardised`` (the catalogs are standardised features
        already, e.g. samples), left as they are. A box-standardised model's data lie exactly on this set; its
        samples are projected onto it."""
        m_mean, m_var, v_ms = _box_moments(arr)
        pos = arr[..., POS] if standardised else (arr[..., POS] - 0.5) / UNIFORM_STD
        parts = [pos, arr[..., VEL] * (self.velocity_scale / v_ms**0.5),
                 ((arr[..., MASS] - m_mean) * (self.mass_scale / m_var**0.5))[..., None]]
        return torch.cat(parts, dim=-1) if isinstance(arr, torch.Tensor) else np.concatenate(parts, axis=-1)

    def _like(self, arr: Any, theta_unit: Any = None, box: Any = None) -> tuple[Any, Any]:
        mean, std = self.stats(theta_unit, box)
        if self.conditional or box is not None:  # (..., 7) -> (..., 1, 7): one set per catalog
            mean, std = mean[..., None, :], std[..., None, :]
        if isinstance(arr, torch.Tensor):
            return (torch.as_tensor(mean, dtype=arr.dtype, device=arr.device),
                    torch.as_tensor(std, dtype=arr.dtype, device=arr.device))
        return mean, std

    def physical_scales(self, theta_unit: Any = None, box: Any = None) -> np.ndarray:
        """(7,) or (..., 7) d(physical feature)/d(standardised feature): L/sqrt(12) Mpc/h, sigma_v km/s,
        sigma_m dex."""
        std = np.array(self.stats(theta_unit, box)[1], dtype=np.float64)
        std[..., POS] = UNIFORM_STD * self.box_size
        return std

    def log_jacobian(self, n_halos: int, theta_unit: Any = None, box: Any = None) -> Any:
        """log |d z / d physical| for one catalog (a float, or (...,) for conditional theta_unit (..., 2)):
        add it to a log density of standardised features to get the log density of (x, y, z [Mpc/h],
        vx, vy, vz [km/s], log10 M [dex]). ``box``: at these box statistics (..., 3) instead."""
        out = -float(n_halos) * np.sum(np.log(self.physical_scales(theta_unit, box)), axis=-1)
        return float(out) if np.ndim(out) == 0 else out

    def box_sd(self, theta_unit: Any) -> np.ndarray:
        """(..., 3) standard deviations of the box statistics about their means at theta_unit (..., 2)."""
        if not self.per_box:
            raise ValueError("only box-standardised models have a distribution of box statistics")
        mono = theta_monomials(np.asarray(theta_unit, dtype=np.float64), self.box_sd_degree)
        return np.exp(mono @ np.asarray(self.box_sd_coefs).T)

    def box_cov(self, theta_unit: Any) -> np.ndarray:
        """(..., 3, 3) covariance of the box statistics at theta_unit (..., 2) (``per_box``)."""
        sd = self.box_sd(theta_unit)
        return sd[..., :, None] * np.asarray(self.box_corr) * sd[..., None, :]

    def box_log_prob(self, box: Any, theta_unit: Any) -> np.ndarray:
        """(...,) Gaussian log density of box statistics (..., 3) given theta_unit (..., 2) (``per_box``)."""
        sd = self.box_sd(theta_unit)
        z = (np.asarray(box, dtype=np.float64) - self.box_mean(theta_unit)) / sd
        corr = np.asarray(self.box_corr)
        quad = np.sum(z * np.linalg.solve(corr, z[..., None])[..., 0], axis=-1)
        log_det = np.linalg.slogdet(2.0 * math.pi * corr)[1] + 2.0 * np.sum(np.log(sd), axis=-1)
        return -0.5 * (quad + log_det)

    def draw_box_statistics(self, theta_unit: Any, rng: np.random.Generator) -> np.ndarray:
        """(B, 3) box statistics drawn from their Gaussian at theta_unit (B, 2) (``per_box``)."""
        mu = self.box_mean(theta_unit)
        z = rng.standard_normal(mu.shape) @ np.linalg.cholesky(np.asarray(self.box_corr)).T
        return mu + self.box_sd(theta_unit) * z

    def log_density_terms(self, raw: np.ndarray, theta_unit: Any = None) -> Any:
        """What turns the log density of a standardised catalog (N, 7) into its log p(x | theta) at
        theta_unit (P, 2) (a float for theta-independent models): the Jacobian, and with ``per_box`` the
        box statistics' log density (the Jacobian, at the box's own statistics, is then theta-independent;
        docs/model.md)."""
        n = np.shape(raw)[-2]
        if not self.per_box:
            return self.log_jacobian(n, theta_unit if self.conditional else None)
        box = box_statistics(np.asarray(raw, dtype=np.float64))
        return self.log_jacobian(n, box=box) + self.box_log_prob(box, theta_unit)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box_size": self.box_size, "velocity_std": self.velocity_std,
                             "mass_mean": self.mass_mean, "mass_std": self.mass_std}
        if (self.velocity_scale, self.mass_scale) != (1.0, 1.0):  # absent: 1 (checkpoints before the option)
            d.update(velocity_scale=self.velocity_scale, mass_scale=self.mass_scale)
        if self.conditional:
            d.update(theta_degree=self.theta_degree, theta_coefs=[list(r) for r in self.theta_coefs])
        if self.per_box:
            d.update(per_box=True, box_sd_degree=self.box_sd_degree,
                     box_sd_coefs=[list(r) for r in self.box_sd_coefs], box_corr=[list(r) for r in self.box_corr])
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
        extra: dict[str, Any] = {}
        if values.get("per_box", False):
            sd_degree = int(values["box_sd_degree"])
            sd_coefs = tuple(tuple(float(c) for c in row) for row in values["box_sd_coefs"])
            corr = tuple(tuple(float(c) for c in row) for row in values["box_corr"])
            arr = np.asarray(corr)
            if (degree < 1 or sd_degree < 0 or len(sd_coefs) != 3
                    or any(len(r) != n_monomials(sd_degree) for r in sd_coefs) or not np.all(np.isfinite(sd_coefs))):
                raise ValueError(f"box_sd_coefs must be 3 rows of {n_monomials(sd_degree)} coefficients "
                                 "(with theta_degree >= 1)")
            if (arr.shape != (3, 3) or not np.allclose(arr, arr.T) or not np.allclose(np.diag(arr), 1.0)
                    or np.linalg.eigvalsh(arr).min() <= 0):
                raise ValueError("box_corr must be a positive definite 3 x 3 correlation matrix")
            extra = dict(per_box=True, box_sd_degree=sd_degree, box_sd_coefs=sd_coefs, box_corr=corr)
        scales = {k: float(values.get(k, 1.0)) for k in ("velocity_scale", "mass_scale")}
        return cls(**base, theta_degree=degree, theta_coefs=coefs, **scales, **extra)


def _box_moments(arr: Any) -> tuple[Any, Any, Any]:
    """Per catalog of (..., N, 7) (numpy or torch): mean (..., 1) and population variance (..., 1) of the
    log masses, mean square (..., 1, 1) of the velocity components."""
    m = arr[..., MASS]
    mean = m.mean(-1, keepdims=True)
    return mean, ((m - mean) ** 2).mean(-1, keepdims=True), (arr[..., VEL] ** 2).mean((-1, -2), keepdims=True)


def box_statistics(raw: Any) -> Any:
    """(..., 3) statistics of catalogs (..., N, 7) (numpy or torch): mean of log10 M [dex], log of its
    (population) std, log of the rms velocity component [log km/s]."""
    mean, var, v_ms = _box_moments(raw)
    torch_like = isinstance(raw, torch.Tensor)
    log, stack = (torch.log, torch.stack) if torch_like else (np.log, np.stack)
    return stack([mean[..., 0], 0.5 * log(var[..., 0]), 0.5 * log(v_ms[..., 0, 0])], -1)


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
