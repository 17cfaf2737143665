"""``lssviewer convert IN OUT``: convert between catalog formats (atomic write)."""

from __future__ import annotations

import argparse

from lssviewer.commands._common import add_load_options, load_options

HELP = "convert a catalog file to another format (format from OUT's extension)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="input catalog file")
    p.add_argument("output", help="output file: .h5/.hdf5, .csv, .npz, .npy (CM23 layout), .vtp")
    p.add_argument("--index", type=int, help="convert only catalog I of a suite")
    p.add_argument("--to", dest="fmt_out", help="force the output format (hdf5, csv, npz, cm23, vtp)")
    p.add_argument("--float32", action="store_true", help="store float32 arrays (HDF5 / npy): smaller, lossy")
    p.add_argument("--packed", action="store_true",
                   help="HDF5: the packed suite layout (compressed fixed point, ~3x smaller than --float32)")
    p.add_argument("--position-decimals", type=int, default=3, metavar="D",
                   help="with --packed: positions rounded to 10^-D Mpc/h (default 3)")
    p.add_argument("--velocity-decimals", type=int, default=1, metavar="D",
                   help="with --packed: velocities rounded to 10^-D km/s (default 1)")
    add_load_options(p)


def run(args: argparse.Namespace) -> int:
    import os

    from lssviewer import io
    from lssviewer.errors import FormatError

    opts = load_options(args)
    fmt = opts.pop("fmt", None)
    catalogs = io.load(args.input, fmt=fmt, **opts)
    if args.index is not None:
        if not -len(catalogs) <= args.index < len(catalogs):
            raise FormatError(f"--index {args.index} out of range (file holds {len(catalogs)})", args.input)
        catalogs = [catalogs[args.index]]
    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        raise FormatError("output is the input file", args.output)
    extra = {"dtype": "float32"} if args.float32 else {}
    if args.packed:
        if (args.fmt_out or "hdf5") != "hdf5" or not args.output.lower().endswith((".h5", ".hdf5")):
            raise FormatError("--packed needs an HDF5 output (.h5 / .hdf5)", args.output)
        extra = {"packed": True, "position_decimals": args.position_decimals,
                 "velocity_decimals": args.velocity_decimals}
    used = io.save(catalogs, args.output, fmt=args.fmt_out, **extra)
    print(f"wrote {len(catalogs)} catalog(s) to {args.output} ({used.name})")
    return 0
