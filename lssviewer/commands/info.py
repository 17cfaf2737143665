"""``lssviewer info FILE``: what a catalog file holds."""

from __future__ import annotations

import argparse

from lssviewer.commands._common import add_load_options, load_options, print_json

HELP = "describe a catalog file (format, halos, box, redshift, cosmology)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="catalog file (any supported format)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_load_options(p)


def describe(catalog) -> dict:
    import numpy as np

    info = {
        "name": catalog.name,
        "n_halos": catalog.n_halos,
        "box_size": catalog.box_size,
        "redshift": catalog.redshift,
        "cosmology": None if catalog.cosmology is None else catalog.cosmology.to_dict(),
    }
    if catalog.n_halos:
        lm = catalog.log10_mass
        info["log10_mass_range"] = [float(lm.min()), float(lm.max())]
        info["speed_rms"] = float(np.sqrt(np.mean(catalog.speed**2)))
    return info


def run(args: argparse.Namespace) -> int:
    from lssviewer import io

    opts = load_options(args)
    fmt = opts.pop("fmt", None)
    catalogs = io.load(args.file, fmt=fmt, **opts)
    fmt_name = fmt or io.detect_format(args.file).name
    rows = [describe(c) for c in catalogs]
    if args.json:
        print_json({"format": fmt_name, "file": args.file, "catalogs": rows})
        return 0
    print(f"{args.file}: {fmt_name}, {len(rows)} catalog(s)")
    print(f"{'#':>5} {'n_halos':>8} {'box[Mpc/h]':>11} {'z':>6} {'Omega_m':>8} {'sigma_8':>8}  log10 M range")
    for i, r in enumerate(rows):
        cosmo = r["cosmology"] or {}
        om = "-" if cosmo.get("omega_m") is None else f"{cosmo['omega_m']:.4f}"
        s8 = "-" if cosmo.get("sigma_8") is None else f"{cosmo['sigma_8']:.4f}"
        lm = r.get("log10_mass_range", [float("nan")] * 2)
        print(f"{i:>5} {r['n_halos']:>8} {r['box_size']:>11.4g} {r['redshift']:>6.3g} {om:>8} {s8:>8}  "
              f"{lm[0]:.2f} - {lm[1]:.2f}")
    return 0
