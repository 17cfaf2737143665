"""Cosmological parameters, the prior box of the built-in model, and linear theory.

Conventions (used everywhere in lssviewer):

* flat LambdaCDM, no radiation: ``H(z) = 100 h E(z)`` km/s/Mpc with
  ``E(z) = sqrt(Omega_m (1+z)^3 + 1 - Omega_m)``; in lssviewer units ``H(z)`` is quoted in
  ``h km/s/Mpc`` i.e. ``100 E(z)``;
* wavenumbers in h/Mpc, power spectra in (Mpc/h)^3, masses in Msun/h, lengths in Mpc/h;
* the growth factor ``D(z)`` is normalised to ``D(0) = 1``.

Linear theory (growth, ``P_lin`` from the Eisenstein & Hu 1998 transfer function, sigma(R), FoF
mass functions) is delegated to colossus (Diemer 2018), created lazily and cached per parameter
set, with ``relspecies=False`` so that it matches the matter + Lambda background of our N-body
simulator.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lssviewer.errors import ParameterError

#: Quijote fiducial values of the parameters the built-in model does not vary.
QUIJOTE_OMEGA_B = 0.049
QUIJOTE_H = 0.6711
QUIJOTE_N_S = 0.9624


@dataclasses.dataclass(frozen=True)
class Cosmology:
    """A flat LambdaCDM cosmology.

    Attributes:
        omega_m: total matter density today, Omega_m (> 0, < 1 for a flat Lambda model).
        sigma_8: rms linear matter fluctuation in 8 Mpc/h spheres at z = 0; ``None`` if unknown
            (e.g. a Rockstar catalog whose header does not state it).
        omega_b: baryon density today, Omega_b.
        h: dimensionless Hubble constant, H0 = 100 h km/s/Mpc.
        n_s: spectral index of the primordial power spectrum.
    """

    omega_m: float
    sigma_8: float | None = None
    omega_b: float = QUIJOTE_OMEGA_B
    h: float = QUIJOTE_H
    n_s: float = QUIJOTE_N_S

    def __post_init__(self) -> None:
        for name in ("omega_m", "omega_b", "h", "n_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise ParameterError(f"{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.sigma_8 is not None:
            if not math.isfinite(float(self.sigma_8)):
                raise ParameterError(f"sigma_8 must be a finite number, got {self.sigma_8!r}")
            object.__setattr__(self, "sigma_8", float(self.sigma_8))
            if self.sigma_8 <= 0:
                raise ParameterError(f"sigma_8 must be > 0, got {self.sigma_8:g}")
        if not 0 < self.omega_m < 1:
            raise ParameterError(f"omega_m must be in (0, 1), got {self.omega_m:g}")
        if not 0 <= self.omega_b < self.omega_m:
            raise ParameterError(f"omega_b must be in [0, omega_m), got {self.omega_b:g}")
        if self.h <= 0:
            raise ParameterError(f"h must be > 0, got {self.h:g}")

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, float | None]:
        """Plain dict (JSON/HDF5-attribute friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Cosmology:
        """Build from a mapping; unknown keys are ignored, missing ones take the defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: (None if v is None else float(v)) for k, v in values.items() if k in known}
        if "omega_m" not in kwargs or kwargs["omega_m"] is None:
            raise ParameterError("cosmology has no omega_m")
        if "sigma_8" in kwargs and kwargs["sigma_8"] is not None and not math.isfinite(kwargs["sigma_8"]):
            kwargs["sigma_8"] = None  # NaN is how unknown sigma_8 is stored in arrays
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Cosmology:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ background
    def efunc(self, z: float | np.ndarray) -> float | np.ndarray:
        """E(z) = H(z)/H0 = sqrt(Omega_m (1+z)^3 + 1 - Omega_m) (flat, no radiation)."""
        z = np.asarray(z, dtype=float)
        e = np.sqrt(self.omega_m * (1.0 + z) ** 3 + 1.0 - self.omega_m)
        return float(e) if e.ndim == 0 else e

    def hubble(self, z: float | np.ndarray) -> float | np.ndarray:
        """H(z) in h km/s/Mpc, i.e. 100 E(z)."""
        return 100.0 * self.efunc(z)

    def rsd_factor(self, z: float) -> float:
        """a H(z) in h km/s/Mpc: a peculiar velocity v [km/s] shifts a position by v / (a H) [Mpc/h]."""
        return float(self.hubble(z)) / (1.0 + z)

    def omega_m_z(self, z: float | np.ndarray) -> float | np.ndarray:
        """Omega_m(z) = Omega_m (1+z)^3 / E(z)^2."""
        z = np.asarray(z, dtype=float)
        out = self.omega_m * (1.0 + z) ** 3 / np.asarray(self.efunc(z)) ** 2
        return float(out) if out.ndim == 0 else out

    # ------------------------------------------------------------------ linear theory (colossus)
    def colossus(self):
        """The matching colossus Cosmology object (requires sigma_8)."""
        if self.sigma_8 is None:
            raise ParameterError("sigma_8 is unknown: linear theory needs it")
        return _colossus_cosmology(self)

    def growth_factor(self, z: float | np.ndarray) -> float | np.ndarray:
        """Linear growth factor D(z), normalised to D(0) = 1 (exact integral for flat LambdaCDM)."""
        return _colossus_cosmology(self.replace(sigma_8=self.sigma_8 or 0.8)).growthFactor(z)

    def growth_rate(self, z: float) -> float:
        """Logarithmic growth rate f = dlnD/dlna at redshift z (numerical derivative of D)."""
        a = 1.0 / (1.0 + z)
        eps = 1e-4
        za, zb = 1.0 / (a * (1 + eps)) - 1.0, 1.0 / (a * (1 - eps)) - 1.0
        da, db = self.growth_factor(za), self.growth_factor(zb)
        return float((math.log(da) - math.log(db)) / (math.log(1 + eps) - math.log(1 - eps)))

    def linear_power(self, k: np.ndarray, z: float = 0.0) -> np.ndarray:
        """Linear matter power spectrum P_lin(k, z) in (Mpc/h)^3 (Eisenstein & Hu 1998), k in h/Mpc."""
        k = np.asarray(k, dtype=float)
        out = np.zeros_like(k)
        pos = k > 0
        out[pos] = self.colossus().matterPowerSpectrum(k[pos], z=z, model="eisenstein98")
        return out

    def sigma_r(self, radius: float | np.ndarray, z: float = 0.0) -> float | np.ndarray:
        """rms linear fluctuation in top-hat spheres of radius R [Mpc/h] at redshift z."""
        return self.colossus().sigma(radius, z)

    def mass_function(self, mass: np.ndarray, z: float, model: str = "watson13") -> np.ndarray:
        """FoF halo mass function dn/dlnM in (h/Mpc)^3 at masses ``mass`` [Msun/h].

        Default: the Watson et al. 2013 FoF (b = 0.2) fit, as appropriate for FoF masses.
        """
        from colossus.cosmology import cosmology as cc
        from colossus.lss import mass_function as mf

        cc.setCurrent(self.colossus())
        return np.asarray(mf.massFunction(np.asarray(mass, float), z, mdef="fof", model=model,
                                          q_out="dndlnM"))


@functools.lru_cache(maxsize=256)
def _colossus_cosmology(cosmo: Cosmology):
    from colossus import settings
    from colossus.cosmology import cosmology as cc

    settings.PERSISTENCE = ""  # no disk cache: we loop over many cosmologies
    params = {
        "flat": True,
        "H0": 100.0 * cosmo.h,
        "Om0": cosmo.omega_m,
        "Ob0": cosmo.omega_b,
        "sigma8": cosmo.sigma_8,
        "ns": cosmo.n_s,
        "relspecies": False,
    }
    return cc.Cosmology(name="lssviewer", persistence="", **params)


@dataclasses.dataclass(frozen=True)
class PriorBox:
    """A rectangular prior over (Omega_m, sigma_8); bounds are inclusive."""

    omega_m: tuple[float, float] = (0.1, 0.5)
    sigma_8: tuple[float, float] = (0.6, 1.0)

    names = ("omega_m", "sigma_8")

    def bounds(self) -> np.ndarray:
        """(2, 2) array: rows (omega_m, sigma_8), columns (low, high)."""
        return np.array([self.omega_m, self.sigma_8], dtype=float)

    def contains(self, omega_m: float, sigma_8: float, tol: float = 1e-9) -> bool:
        lo, hi = self.bounds().T
        theta = np.array([omega_m, sigma_8])
        return bool(np.all(theta >= lo - tol) and np.all(theta <= hi + tol))

    def check(self, omega_m: float, sigma_8: float) -> None:
        """Raise ParameterError if (omega_m, sigma_8) is outside the box."""
        if not self.contains(omega_m, sigma_8):
            raise ParameterError(
                f"(omega_m={omega_m:g}, sigma_8={sigma_8:g}) is outside the prior box "
                f"omega_m in [{self.omega_m[0]:g}, {self.omega_m[1]:g}], "
                f"sigma_8 in [{self.sigma_8[0]:g}, {self.sigma_8[1]:g}]"
            )

    def to_dict(self) -> dict[str, list[float]]:
        return {"omega_m": list(self.omega_m), "sigma_8": list(self.sigma_8)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PriorBox:
        return cls(omega_m=tuple(map(float, values["omega_m"])), sigma_8=tuple(map(float, values["sigma_8"])))


#: The prior box of the built-in model (Quijote latin hypercube ranges).
DEFAULT_PRIOR = PriorBox()
#: The Quijote fiducial cosmology.
FIDUCIAL = Cosmology(omega_m=0.3175, sigma_8=0.834)
