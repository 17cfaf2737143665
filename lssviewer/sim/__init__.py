"""The built-in N-body forward model: 2LPT initial conditions, FastPM particle-mesh gravity,
friends-of-friends halos, and Latin-hypercube simulation suites.

Public API::

    from lssviewer.sim import simulate, DEFAULT_CONFIG, SimConfig
    catalog, summary = simulate(cosmology, seed, config=None, redshift=0.5)

See ``docs/simulator.md`` for the design, the default configuration and its validation.
"""

from lssviewer.sim.config import DEFAULT_CONFIG, RHO_CRIT, SimConfig
from lssviewer.sim.simulate import SimulationError, SimulationResult, resolve_device, simulate

__all__ = ["DEFAULT_CONFIG", "RHO_CRIT", "SimConfig", "SimulationError", "SimulationResult",
           "resolve_device", "simulate"]
