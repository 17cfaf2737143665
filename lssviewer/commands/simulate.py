"""``lssviewer simulate``: run the built-in N-body forward model for one box and save its halos.

Example::

    lssviewer simulate --omega-m 0.3 --sigma-8 0.8 --seed 1 -o box.h5 --json

The catalog (native HDF5) records the cosmology, the seed, the code version and every setting in
its provenance; ``--power FILE`` also saves the matter power spectrum of the final particles.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "simulate one box with the built-in N-body model (2LPT + FastPM + FoF) and save its halos"


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """Options that change the simulation settings (defaults: lssviewer.sim.DEFAULT_CONFIG)."""
    g = p.add_argument_group("simulation settings (default: the built-in model's configuration)")
    g.add_argument("--box-size", type=float, help="box side in Mpc/h (default 400)")
    g.add_argument("--particles", type=int, help="particles per side (default 128)")
    g.add_argument("--mesh-factor", type=float, help="force-mesh cells per particle per side (default 2)")
    g.add_argument("--steps", type=int, help="FastPM steps (default 10)")
    g.add_argument("--n-halos", type=int, help="halos kept, the most massive (default 400)")
    g.add_argument("--z-init", type=float, help="redshift of the 2LPT initial conditions (default 9)")
    g.add_argument("--min-particles", type=int, help="smallest FoF group counted as a halo (default 20)")
    g.add_argument("--linking-length", type=float, help="FoF linking length b (default 0.2)")
    g.add_argument("--power-spectrum", choices=("eisenstein98", "camb"),
                   help="linear P(k) of the initial conditions (default eisenstein98 via colossus)")
    g.add_argument("--force-gradient", choices=("fd2", "fd4", "ik"),
                   help="differentiation of the PM potential (default: the configuration's)")
    g.add_argument("--redshift", type=float, default=0.5, help="output redshift (default 0.5)")
    r = p.add_argument_group("resources")
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    r.add_argument("--threads", type=int, help="CPU threads (default: all usable cores)")


def config_from_args(args: argparse.Namespace):
    """The SimConfig given by the command-line options (validated)."""
    from lssviewer.sim import DEFAULT_CONFIG

    return DEFAULT_CONFIG.replace(
        box_size=args.box_size, particles=args.particles, mesh_factor=args.mesh_factor, steps=args.steps,
        n_halos=args.n_halos, z_init=args.z_init, min_particles=args.min_particles,
        linking_length=args.linking_length, power_spectrum=args.power_spectrum,
        force_gradient=args.force_gradient,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--omega-m", type=float, required=True, help="Omega_m (flat LambdaCDM)")
    p.add_argument("--sigma-8", type=float, required=True, help="sigma_8")
    p.add_argument("--seed", type=int, required=True, help="random seed (whole number >= 0)")
    p.add_argument("-o", "--output", required=True, help="output catalog (.h5)")
    p.add_argument("--omega-b", type=float, default=None, help="Omega_b (default 0.049, Quijote)")
    p.add_argument("--hubble", type=float, default=None, help="h (default 0.6711, Quijote)")
    p.add_argument("--n-s", type=float, default=None, help="n_s (default 0.9624, Quijote)")
    add_config_arguments(p)
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--power", metavar="FILE",
                   help="also save the matter power spectrum of the final particles (text: k P modes)")
    p.add_argument("--float32", action="store_true", help="store the catalog in float32 (default float64)")


def cosmology_from_args(args: argparse.Namespace):
    from lssviewer.cosmology import Cosmology

    extra: dict[str, Any] = {}
    for key, attr in (("omega_b", "omega_b"), ("h", "hubble"), ("n_s", "n_s")):
        if getattr(args, attr, None) is not None:
            extra[key] = getattr(args, attr)
    return Cosmology(omega_m=args.omega_m, sigma_8=args.sigma_8, **extra)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from lssviewer.errors import ParameterError
    from lssviewer.io import hdf5
    from lssviewer.sim import simulate

    cosmology = cosmology_from_args(args)
    config = config_from_args(args)
    out = Path(args.output)
    if out.suffix.lower() not in hdf5.EXTENSIONS:
        raise ParameterError(f"the output must be a native HDF5 file (.h5 or .hdf5), got {out.name!r}")
    if out.is_dir():
        raise ParameterError(f"{out} is a directory")
    if not out.parent.exists() and str(out.parent):
        raise ParameterError(f"the output directory {out.parent} does not exist")
    result = simulate(cosmology, args.seed, config, redshift=args.redshift, device=args.device,
                      threads=args.threads, power_spectrum=bool(args.power))
    hdf5.write([result.catalog], out, dtype="float32" if args.float32 else "float64")
    summary = dict(result.summary, output=str(out))
    if args.power:
        pk = result.power
        header = (f"matter power spectrum of the final particles, z={args.redshift:g}, box {config.box_size:g} "
                  f"Mpc/h, CIC mesh {config.mesh}^3 (window deconvolved, no shot-noise subtraction)\n"
                  f"k [h/Mpc]  P(k) [(Mpc/h)^3]  modes")
        np.savetxt(args.power, np.column_stack([pk["k"], pk["power"], pk["modes"]]), header=header,
                   fmt="%.6e")
        summary["power_file"] = str(args.power)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        s = summary
        print(f"{out}: {config.n_halos} halos (largest {s['largest_halo_particles']} particles, "
              f"smallest kept {s['nth_halo_particles']}), m_p = {s['particle_mass']:.3e} Msun/h; "
              f"ICs {s['time_ics']:.1f} s, gravity {s['time_gravity']:.1f} s, FoF {s['time_fof']:.1f} s "
              f"on {s['device']}")
    return 0
