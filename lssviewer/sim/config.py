"""Settings of the built-in N-body forward model and the default configuration.

A :class:`SimConfig` fixes everything about a box except its cosmology, seed and output redshift:
box size, particle grid, force-mesh factor, number of FastPM steps, starting redshift, halo finder
settings and the number of halos kept. :data:`DEFAULT_CONFIG` is the configuration of the built-in
model's training suite and of the demo data; the evidence for its choice is in ``docs/simulator.md``
(and reproduced by ``benchmarks/bench_sim.py``). In short:

* 128^3 particles in a (400 Mpc/h)^3 box: particle mass 2.69e12 Msun/h at the fiducial cosmology
  (8.5e11 at Omega_m = 0.1). In the poorest corner of the prior, (Omega_m, sigma_8) = (0.1, 0.6),
  the simulations hold 529-625 FoF groups of >= 20 particles (4 seeds; Watson et al. 2013 expects
  ~600), so 400 halos are always there (3.5 sigma of the box-to-box scatter) while 500 would make
  a few per cent of corner boxes fail; the 400th halo has 23-26 particles there, ~60 at the fiducial
  cosmology;
* a force mesh twice finer than the particle grid (256^3), FastPM's four-point finite-difference
  gradient, and 10 FastPM steps from z = 9 (Feng et al. 2016): large-scale P(k) within 2.5 % of
  linear theory, halo counts above 50 particles within 10 % of Watson 2013 at most of the prior;
* friends-of-friends with b = 0.2 and at least 20 particles per halo; the 400 most massive halos are kept;
* cost: ~13 s per box on 2 cores shared with other jobs (CPU time 12 s; ~7-9 s on an idle machine),
  1.5 s on an H200. 160^3 particles (1000 halos) would cost about twice as much.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from lssviewer.errors import ParameterError

#: Linear power spectra the initial conditions can be drawn from.
POWER_SPECTRA = ("eisenstein98", "camb")
#: Finite-difference schemes of the PM force (see :func:`lssviewer.sim.pm._mesh_wavenumbers`).
FORCE_GRADIENTS = ("fd2", "fd4", "ik")


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Settings of one simulated box (everything but cosmology, seed and output redshift).

    Attributes:
        box_size: side of the periodic cube, comoving Mpc/h.
        particles: particles per side (``particles**3`` in total), on a regular Lagrangian grid.
        mesh_factor: force-mesh cells per particle per side (FastPM's B); the mesh has
            ``round(mesh_factor * particles)`` cells per side.
        steps: number of FastPM kick-drift-kick steps, uniform in the scale factor a.
        n_halos: halos kept per box (the most massive ones, sorted by decreasing mass).
        z_init: redshift of the 2LPT initial conditions.
        min_particles: smallest friends-of-friends group counted as a halo.
        linking_length: FoF linking length in units of the mean interparticle separation (b).
        power_spectrum: linear P(k) of the initial field: ``"eisenstein98"`` (colossus, default)
            or ``"camb"`` (needs the camb package).
        fixed_amplitude: draw "fixed" initial conditions (|delta_k|^2 = P(k) exactly, random phases;
            Angulo & Pontzen 2016) instead of Gaussian ones; for validation against linear theory.
        invert_phases: flip the sign of the initial field (delta -> -delta), the "paired" companion of
            a box (Angulo & Pontzen 2016): averaging a pair cancels the leading nonlinear
            mode-coupling noise in P(k); for validation.
        force_gradient: differentiation of the potential on the mesh: "fd2" (two-point finite
            difference), "fd4" (four-point, default, as FastPM) or "ik" (spectral).
    """

    box_size: float = 400.0
    particles: int = 128
    mesh_factor: float = 2.0
    steps: int = 10
    n_halos: int = 400
    z_init: float = 9.0
    min_particles: int = 20
    linking_length: float = 0.2
    power_spectrum: str = "eisenstein98"
    fixed_amplitude: bool = False
    invert_phases: bool = False
    force_gradient: str = "fd4"

    def __post_init__(self) -> None:
        def number(name: str, integer: bool = False) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ParameterError(f"{name} must be a finite number, got {value!r}")
            if integer:
                if int(value) != value:
                    raise ParameterError(f"{name} must be a whole number, got {value!r}")
                value = int(value)
            else:
                value = float(value)
            object.__setattr__(self, name, value)
            return value

        if number("box_size") <= 0:
            raise ParameterError(f"box_size must be > 0 Mpc/h, got {self.box_size:g}")
        if number("particles", integer=True) < 8:
            raise ParameterError(f"particles per side must be >= 8, got {self.particles}")
        if number("mesh_factor") < 1:
            raise ParameterError(f"mesh_factor must be >= 1, got {self.mesh_factor:g}")
        if number("steps", integer=True) < 1:
            raise ParameterError(f"steps must be >= 1, got {self.steps}")
        if number("n_halos", integer=True) < 1:
            raise ParameterError(f"n_halos must be >= 1, got {self.n_halos}")
        if number("z_init") <= 0:
            raise ParameterError(f"z_init must be > 0, got {self.z_init:g}")
        if number("min_particles", integer=True) < 2:
            raise ParameterError(f"min_particles must be >= 2, got {self.min_particles}")
        if not 0 < number("linking_length") < 1:
            raise ParameterError(f"linking_length must be in (0, 1), got {self.linking_length:g}")
        if self.power_spectrum not in POWER_SPECTRA:
            raise ParameterError(f"power_spectrum must be one of {', '.join(POWER_SPECTRA)}, "
                                 f"got {self.power_spectrum!r}")
        object.__setattr__(self, "fixed_amplitude", bool(self.fixed_amplitude))
        object.__setattr__(self, "invert_phases", bool(self.invert_phases))
        if self.force_gradient not in FORCE_GRADIENTS:
            raise ParameterError(f"force_gradient must be one of {', '.join(FORCE_GRADIENTS)}, "
                                 f"got {self.force_gradient!r}")
        if self.mesh < 8:
            raise ParameterError(f"the force mesh must have >= 8 cells per side, got {self.mesh}")
        if self.n_halos * self.min_particles > self.n_particles:
            raise ParameterError(
                f"too few particles for {self.n_halos} halos of >= {self.min_particles} particles: "
                f"{self.particles}^3 = {self.n_particles} particles"
            )

    # ------------------------------------------------------------------ derived quantities
    @property
    def mesh(self) -> int:
        """Force-mesh cells per side."""
        return int(round(self.mesh_factor * self.particles))

    @property
    def n_particles(self) -> int:
        return self.particles**3

    @property
    def mean_separation(self) -> float:
        """Mean interparticle separation in Mpc/h."""
        return self.box_size / self.particles

    def particle_mass(self, omega_m: float) -> float:
        """Particle mass m_p = Omega_m rho_crit L^3 / N_p in Msun/h (rho_crit = 2.775e11 h^2 Msun/Mpc^3)."""
        return omega_m * RHO_CRIT * self.box_size**3 / self.n_particles

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SimConfig:
        """Build from a mapping; unknown keys are an error, missing ones take the defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown simulation setting(s): {', '.join(unknown)}")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with some settings changed (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Critical density today in h^2 Msun / Mpc^3, i.e. Msun/h per (Mpc/h)^3.
RHO_CRIT = 2.775e11

#: The configuration of the built-in model's training suite and the demo data (see module docstring).
DEFAULT_CONFIG = SimConfig()
