"""One simulated box: 2LPT initial conditions -> FastPM gravity -> friends-of-friends -> HaloCatalog.

>>> from lssviewer.cosmology import Cosmology
>>> from lssviewer.sim import simulate
>>> catalog, summary = simulate(Cosmology(0.3, 0.8), seed=1)        # doctest: +SKIP

The halo catalog holds the ``config.n_halos`` most massive FoF halos, sorted by decreasing mass:
positions = periodic centre of mass [Mpc/h, in [0, L)], velocities = mean particle peculiar
velocity [km/s], masses = N_p x m_p [Msun/h] with ``m_p = Omega_m rho_crit L^3 / N_p,total``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import integrate

from lssviewer._version import __version__
from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import LssviewerError, ParameterError
from lssviewer.sim.config import DEFAULT_CONFIG, SimConfig


class SimulationError(LssviewerError):
    """A simulation ran but cannot deliver what was asked (e.g. fewer halos than ``n_halos``)."""


@dataclasses.dataclass
class SimulationResult:
    """What :func:`simulate` returns; unpacks as ``catalog, summary = simulate(...)``.

    Attributes:
        catalog: the halo catalog.
        summary: run summary (settings, particle mass, timings in seconds; JSON-serialisable).
        power: matter power spectrum of the final particles (``k``, ``power``, ``modes`` arrays)
            when asked for with ``power_spectrum=True``, else None.
        particles: final particle positions (N, 3) [Mpc/h] and velocities (N, 3) [km/s] when asked
            for with ``keep_particles=True``, else None.
    """

    catalog: HaloCatalog
    summary: dict[str, Any]
    power: dict[str, np.ndarray] | None = None
    particles: tuple[np.ndarray, np.ndarray] | None = None

    def __iter__(self):
        yield self.catalog
        yield self.summary


# ---------------------------------------------------------------------------------------------------
# validation


def _nvidia_present() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def resolve_device(device: str | None = None) -> str:
    """The device to run gravity on: "cpu", "cuda" / "cuda:i", or "torch-cpu" (testing).

    ``None`` or "auto": ``$LSSVIEWER_DEVICE`` if set, else CUDA when an NVIDIA driver is present and
    torch sees a GPU, else the CPU. Torch is not imported on machines without an NVIDIA driver.
    """
    if device in (None, "", "auto"):
        device = os.environ.get("LSSVIEWER_DEVICE") or "auto"
    device = str(device).lower()
    if device == "auto":
        if _nvidia_present():
            import torch

            if torch.cuda.is_available():
                return "cuda"
        return "cpu"
    if device in ("cpu", "torch-cpu"):
        return device
    if device == "cuda" or device.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise ParameterError(f"device {device!r} asked for, but torch sees no CUDA GPU")
        return device
    raise ParameterError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N)")


def expected_halo_count(cosmology: Cosmology, config: SimConfig, redshift: float) -> float:
    """Expected number of FoF halos with >= ``min_particles`` particles in the box (Watson 2013 fit)."""
    m_min = config.min_particles * config.particle_mass(cosmology.omega_m)
    lnm = np.linspace(np.log(m_min), np.log(max(1e17, 10 * m_min)), 400)
    dndlnm = cosmology.mass_function(np.exp(lnm), redshift)
    return float(integrate.trapezoid(dndlnm, lnm) * config.box_size**3)


def check_inputs(cosmology: Cosmology, seed: int, config: SimConfig, redshift: float,
                 check_halo_count: bool = True) -> None:
    """Raise ParameterError for any bad input, before any work is done."""
    from lssviewer.sim.ics import check_power_spectrum_available, check_seed

    if not isinstance(cosmology, Cosmology):
        raise ParameterError(f"cosmology must be a Cosmology, got {type(cosmology).__name__}")
    if cosmology.sigma_8 is None:
        raise ParameterError("the simulator needs sigma_8")
    if not isinstance(config, SimConfig):
        raise ParameterError(f"config must be a SimConfig, got {type(config).__name__}")
    check_seed(seed)
    try:
        redshift = float(redshift)
    except (TypeError, ValueError):
        raise ParameterError(f"redshift must be a number, got {redshift!r}") from None
    if not math.isfinite(redshift) or redshift < 0:
        raise ParameterError(f"redshift must be finite and >= 0, got {redshift:g}")
    if redshift >= config.z_init:
        raise ParameterError(f"redshift {redshift:g} is not after the start of the simulation "
                             f"(z_init = {config.z_init:g})")
    check_power_spectrum_available(config.power_spectrum)
    if check_halo_count:
        expected = expected_halo_count(cosmology, config, redshift)
        if expected < config.n_halos:
            raise ParameterError(
                f"a {config.box_size:g} Mpc/h box with {config.particles}^3 particles is expected to hold "
                f"only ~{expected:.0f} halos of >= {config.min_particles} particles at omega_m="
                f"{cosmology.omega_m:g}, sigma_8={cosmology.sigma_8:g}, z={redshift:g} (Watson 2013); "
                f"{config.n_halos} asked for: lower n_halos or raise the box size or particle count"
            )


# ---------------------------------------------------------------------------------------------------
# the run


def simulate(cosmology: Cosmology, seed: int, config: SimConfig | None = None, redshift: float = 0.5,
             device: str | None = None, threads: int | None = None, power_spectrum: bool = False,
             keep_particles: bool = False, check_halo_count: bool = True,
             provenance: dict[str, Any] | None = None,
             progress: Callable[[int, int], None] | None = None) -> SimulationResult:
    """Simulate one periodic box and return its ``config.n_halos`` most massive FoF halos.

    Args:
        cosmology: flat LambdaCDM parameters (sigma_8 required).
        seed: whole number >= 0; the same seed, cosmology and config give a bit-identical catalog
            on the CPU (the initial white noise depends on the seed and the particle grid only).
        config: simulation settings (default :data:`~lssviewer.sim.config.DEFAULT_CONFIG`).
        redshift: output redshift (must be below ``config.z_init``).
        device: "auto" (default), "cpu", "cuda[:i]" or "torch-cpu"; see :func:`resolve_device`.
        threads: CPU threads for numba kernels and FFTs (default: all usable cores).
        power_spectrum: also measure the matter P(k) of the final particles (``result.power``).
        keep_particles: also return the final particle positions and velocities.
        check_halo_count: refuse to start when the Watson 2013 mass function predicts fewer than
            ``n_halos`` halos above ``min_particles`` particles.
        provenance: extra entries for the catalog's provenance (e.g. suite index).
        progress: ``progress(step, steps)`` after each gravity step.

    Returns:
        :class:`SimulationResult` (unpacks as ``catalog, summary``).

    Raises:
        ParameterError: bad input (before any work).
        SimulationError: the box holds fewer than ``n_halos`` halos of ``min_particles`` particles.
    """
    import numba

    from lssviewer.sim.fof import fof_labels, halo_properties, select_groups
    from lssviewer.sim.growth import Growth, velocity_factor
    from lssviewer.sim.pm import default_threads

    t_start = time.perf_counter()
    config = DEFAULT_CONFIG if config is None else config
    check_inputs(cosmology, seed, config, redshift, check_halo_count=check_halo_count)
    seed = int(seed)
    redshift = float(redshift)
    device = resolve_device(device)
    threads = min(int(threads or default_threads()), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    growth = Growth(cosmology.omega_m)
    a_final = 1.0 / (1.0 + redshift)

    particles = evolve_particles(cosmology, seed, config, redshift, device=device, threads=threads,
                                 progress=progress, growth=growth)
    positions, momenta = particles.positions, particles.momenta
    t_ics, t_gravity, gravity_split = particles.time_ics, particles.time_gravity, particles.gravity_split
    del particles

    t0 = time.perf_counter()
    velocities = momenta * velocity_factor(a_final)  # km/s, peculiar
    del momenta
    link = config.linking_length * config.mean_separation
    labels = fof_labels(positions, config.box_size, link)
    groups, sizes = select_groups(labels, config.min_particles)
    if len(groups) < config.n_halos:
        raise SimulationError(
            f"only {len(groups)} halos of >= {config.min_particles} particles formed (omega_m="
            f"{cosmology.omega_m:g}, sigma_8={cosmology.sigma_8:g}, seed={seed}); {config.n_halos} asked "
            f"for: lower n_halos or raise the box size or particle count"
        )
    keep = groups[: config.n_halos]
    centres, mean_vel, counts = halo_properties(positions, velocities, labels, keep, config.box_size)
    t_fof = time.perf_counter() - t0

    particle_mass = config.particle_mass(cosmology.omega_m)
    power = None
    t_power = 0.0
    if power_spectrum:
        from lssviewer.sim.power import particle_power

        t0 = time.perf_counter()
        power = particle_power(positions, config.box_size, config.mesh, threads=threads)
        t_power = time.perf_counter() - t0

    settings = config.to_dict()
    prov = {
        "code": "lssviewer.sim",
        "lssviewer_version": __version__,
        "seed": seed,
        "redshift": redshift,
        "config": settings,
        "mesh": config.mesh,
        "particle_mass": particle_mass,
        "device": device.split(":")[0],
    }
    prov.update(provenance or {})
    catalog = HaloCatalog(
        positions=centres, velocities=mean_vel, masses=counts * particle_mass, box_size=config.box_size,
        redshift=redshift, cosmology=cosmology,
        name=f"sim_om{cosmology.omega_m:.4f}_s8{cosmology.sigma_8:.4f}_seed{seed}", provenance=prov,
    )
    summary = {
        **settings,
        "omega_m": cosmology.omega_m,
        "sigma_8": cosmology.sigma_8,
        "omega_b": cosmology.omega_b,
        "h": cosmology.h,
        "n_s": cosmology.n_s,
        "seed": seed,
        "redshift": redshift,
        "mesh": config.mesh,
        "particle_mass": particle_mass,
        "linking_length_mpc": link,
        "n_groups": int(len(groups)),
        "nth_halo_particles": int(counts[-1]),
        "largest_halo_particles": int(counts[0]),
        "device": device,
        "threads": threads,
        "time_ics": round(t_ics, 4),
        "time_gravity": round(t_gravity, 4),
        "time_fof": round(t_fof, 4),
        "time_power": round(t_power, 4),
        "time_total": round(time.perf_counter() - t_start, 4),
        "gravity_split": gravity_split,
        "lssviewer_version": __version__,
    }
    kept = (positions, velocities) if keep_particles else None
    return SimulationResult(catalog=catalog, summary=summary, power=power, particles=kept)


@dataclasses.dataclass
class ParticleState:
    """Final particles of a run (see :func:`evolve_particles`).

    Attributes:
        positions: (N, 3) float64 comoving Mpc/h in [0, L), Lagrangian (lattice) order.
        momenta: (N, 3) float64 ``p = a^2 dx/dt / H0`` [Mpc/h]; velocity = ``100 p / a`` km/s.
        initial_positions: (N, 3) 2LPT positions at ``z_init`` (only with ``keep_initial=True``).
        delta_k: the z = 0 linear density field of the initial conditions (rfft layout).
        a: final scale factor.
    """

    positions: np.ndarray
    momenta: np.ndarray
    a: float
    delta_k: np.ndarray | None
    initial_positions: np.ndarray | None
    time_ics: float
    time_gravity: float
    gravity_split: dict[str, float]


def evolve_particles(cosmology: Cosmology, seed: int, config: SimConfig, redshift: float,
                     device: str | None = None, threads: int | None = None,
                     progress: Callable[[int, int], None] | None = None, growth: Any = None,
                     keep_initial: bool = False, keep_field: bool = False) -> ParticleState:
    """2LPT initial conditions + FastPM gravity, without the halo finder (no input checks).

    For validation and for callers that want the matter field itself; :func:`simulate` is the
    checked entry point.
    """
    import numba

    from lssviewer.sim.growth import Growth
    from lssviewer.sim.ics import initial_conditions
    from lssviewer.sim.pm import default_threads, fastpm_kdk, make_pm

    device = resolve_device(device)
    threads = min(int(threads or default_threads()), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    growth = growth or Growth(cosmology.omega_m)
    t0 = time.perf_counter()
    ics = initial_conditions(cosmology, seed, config, growth=growth, workers=threads)
    t_ics = time.perf_counter() - t0

    t0 = time.perf_counter()
    pm = make_pm(device, config.mesh, config.box_size, config.n_particles, threads=threads,
                 gradient=config.force_gradient)
    pos = pm.from_numpy(ics.positions)
    mom = pm.from_numpy(ics.momenta)
    initial = ics.positions.copy() if keep_initial else None
    delta_k = ics.delta_k if keep_field else None
    del ics
    a_final = 1.0 / (1.0 + float(redshift))
    fastpm_kdk(pm, pos, mom, growth, 1.0 / (1.0 + config.z_init), a_final, config.steps, callback=progress)
    positions = pm.to_numpy(pos)
    momenta = pm.to_numpy(mom)
    split = {k: round(v, 4) for k, v in pm.timer.seconds.items()}
    del pos, mom, pm
    t_gravity = time.perf_counter() - t0
    return ParticleState(positions=positions, momenta=momenta, a=a_final, delta_k=delta_k,
                         initial_positions=initial, time_ics=t_ics, time_gravity=t_gravity,
                         gravity_split=split)
