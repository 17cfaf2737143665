"""HaloCatalog: the one data type every layer of lssviewer speaks.

Units and conventions:

* ``positions``  (N, 3) comoving Mpc/h, inside the periodic box ``[0, box_size)``;
* ``velocities`` (N, 3) peculiar velocities in km/s;
* ``masses``     (N,)   halo masses in Msun/h (FoF ``N_p * m_p`` for our simulator; Mvir for Rockstar);
* ``box_size``   side of the periodic cube in Mpc/h; ``redshift`` z of the snapshot;
* ``cosmology``  a :class:`~lssviewer.cosmology.Cosmology` (``sigma_8`` may be ``None`` if unknown);
* ``provenance`` a JSON-serialisable dict (code, seed, settings, source file ...).

Arrays are stored as float64 and are never modified in place by lssviewer; derived catalogs are
new objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError

#: Feature order of the (N, 7) array form used by the model and the CM23 file layout.
FEATURES = ("x", "y", "z", "vx", "vy", "vz", "mass")
AXES = {"x": 0, "y": 1, "z": 2}


def _as_array(name: str, value: Any, shape_tail: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)  # always a private copy (made read-only below)
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{name} is not numeric ({exc})") from None
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        want = "(N, " + ", ".join(map(str, shape_tail)) + ")" if shape_tail else "(N,)"
        raise CatalogError(f"{name} has shape {arr.shape}, expected {want}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise CatalogError(f"{name} has {bad} non-finite value(s) (NaN or inf)")
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class HaloCatalog:
    """A halo catalog in a periodic box. See the module docstring for units.

    Construction validates everything; pass ``wrap=True`` to map positions outside
    ``[0, box_size)`` periodically into the box instead of rejecting them.
    """

    positions: np.ndarray
    velocities: np.ndarray
    masses: np.ndarray
    box_size: float
    redshift: float = 0.0
    cosmology: Cosmology | None = None
    name: str = ""
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    wrap: dataclasses.InitVar[bool] = False

    def __post_init__(self, wrap: bool) -> None:
        try:
            box = float(self.box_size)
        except (TypeError, ValueError):
            raise CatalogError(f"box_size must be a number, got {self.box_size!r}") from None
        if not np.isfinite(box) or box <= 0:
            raise CatalogError(f"box_size must be a positive finite length in Mpc/h, got {self.box_size!r}")
        z = float(self.redshift)
        if not np.isfinite(z) or z < 0:
            raise CatalogError(f"redshift must be finite and >= 0, got {self.redshift!r}")
        pos = _as_array("positions", self.positions, (3,))
        vel = _as_array("velocities", self.velocities, (3,))
        mass = _as_array("masses", self.masses, ())
        n = len(pos)
        if len(vel) != n or len(mass) != n:
            raise CatalogError(
                f"inconsistent lengths: {n} positions, {len(vel)} velocities, {len(mass)} masses"
            )
        if n and mass.min() <= 0:
            raise CatalogError(f"masses must be > 0 Msun/h ({int(np.count_nonzero(mass <= 0))} are not)")
        if wrap:
            pos = np.mod(pos, box)
            pos[pos >= box] = 0.0  # np.mod can round up to exactly box
        elif n and (pos.min() < 0 or pos.max() >= box):
            outside = int(np.count_nonzero((pos < 0) | (pos >= box)).__int__())
            raise CatalogError(
                f"{outside} position coordinate(s) outside the box [0, {box:g}) Mpc/h "
                f"(range {pos.min():g} to {pos.max():g}); use wrap=True / --wrap to wrap periodically"
            )
        if self.cosmology is not None and not isinstance(self.cosmology, Cosmology):
            raise CatalogError(f"cosmology must be a Cosmology, got {type(self.cosmology).__name__}")
        for arr in (pos, vel, mass):
            arr.setflags(write=False)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "velocities", vel)
        object.__setattr__(self, "masses", mass)
        object.__setattr__(self, "box_size", box)
        object.__setattr__(self, "redshift", z)
        object.__setattr__(self, "provenance", dict(self.provenance))

    # ------------------------------------------------------------------ basic properties
    def __len__(self) -> int:
        return len(self.masses)

    @property
    def n_halos(self) -> int:
        return len(self.masses)

    @property
    def volume(self) -> float:
        """Box volume in (Mpc/h)^3."""
        return self.box_size**3

    @property
    def number_density(self) -> float:
        """Mean number density in (h/Mpc)^3."""
        return self.n_halos / self.volume

    @property
    def log10_mass(self) -> np.ndarray:
        """log10 of the masses in Msun/h."""
        return np.log10(self.masses)

    @property
    def speed(self) -> np.ndarray:
        """|v| in km/s."""
        return np.linalg.norm(self.velocities, axis=1)

    @property
    def omega_m(self) -> float | None:
        return None if self.cosmology is None else self.cosmology.omega_m

    @property
    def sigma_8(self) -> float | None:
        return None if self.cosmology is None else self.cosmology.sigma_8

    def __repr__(self) -> str:
        cosmo = "" if self.cosmology is None else f", omega_m={self.omega_m:g}, sigma_8={self.sigma_8}"
        name = f"{self.name!r}, " if self.name else ""
        return f"HaloCatalog({name}n={self.n_halos}, box={self.box_size:g} Mpc/h, z={self.redshift:g}{cosmo})"

    # ------------------------------------------------------------------ derived catalogs
    def replace(self, **changes: Any) -> HaloCatalog:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def subset(self, index: np.ndarray) -> HaloCatalog:
        """Catalog of the halos selected by an integer or boolean index."""
        return self.replace(positions=self.positions[index], velocities=self.velocities[index],
                            masses=self.masses[index])

    def top_n(self, n: int) -> HaloCatalog:
        """The ``n`` most massive halos, sorted by decreasing mass (ties broken stably)."""
        if n < 0:
            raise CatalogError(f"top_n needs n >= 0, got {n}")
        order = np.argsort(-self.masses, kind="stable")[:n]
        return self.subset(order)

    def sorted_by_mass(self) -> HaloCatalog:
        return self.top_n(self.n_halos)

    def redshift_space_positions(self, axis: int | str = "z") -> np.ndarray:
        """Positions in redshift space along ``axis`` (0/1/2 or 'x'/'y'/'z'), wrapped into the box.

        s_i = x_i + v_i / (a H(z)) with H(z) = 100 E(z) h km/s/Mpc and a = 1/(1+z) (distant observer).
        Requires the catalog's cosmology.
        """
        if self.cosmology is None:
            raise CatalogError("redshift-space positions need the catalog's cosmology (omega_m)")
        i = AXES[axis] if isinstance(axis, str) else int(axis)
        if i not in (0, 1, 2):
            raise CatalogError(f"line-of-sight axis must be x, y or z, got {axis!r}")
        s = self.positions.copy()
        s[:, i] += self.velocities[:, i] / self.cosmology.rsd_factor(self.redshift)
        s = np.mod(s, self.box_size)
        s[s >= self.box_size] = 0.0
        return s

    def to_redshift_space(self, axis: int | str = "z") -> HaloCatalog:
        """A catalog whose positions are the redshift-space positions along ``axis``."""
        prov = dict(self.provenance, redshift_space_axis=str(axis))
        return self.replace(positions=self.redshift_space_positions(axis), provenance=prov)

    # ------------------------------------------------------------------ array form
    def to_array(self) -> np.ndarray:
        """(N, 7) array x, y, z, vx, vy, vz, M (the CM23 layout; M in Msun/h, not log)."""
        return np.column_stack([self.positions, self.velocities, self.masses])

    @classmethod
    def from_array(cls, array: np.ndarray, box_size: float, **kwargs: Any) -> HaloCatalog:
        """Inverse of :meth:`to_array`."""
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 7:
            raise CatalogError(f"array has shape {array.shape}, expected (N, 7): x y z vx vy vz M")
        return cls(positions=array[:, :3], velocities=array[:, 3:6], masses=array[:, 6],
                   box_size=box_size, **kwargs)

    def equals(self, other: HaloCatalog, rtol: float = 0.0, atol: float = 0.0) -> bool:
        """Value equality (arrays within tolerances; metadata exactly)."""
        same_meta = (self.box_size == other.box_size and self.redshift == other.redshift
                     and self.cosmology == other.cosmology and len(self) == len(other))
        return same_meta and all(
            np.allclose(a, b, rtol=rtol, atol=atol)
            for a, b in ((self.positions, other.positions), (self.velocities, other.velocities),
                         (self.masses, other.masses))
        )
