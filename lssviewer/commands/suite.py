"""``lssviewer suite``: make, resume, shard and merge suites of simulated boxes.

Examples::

    lssviewer suite -n 1000 -o suite.h5 --seed 7                  # Latin hypercube over the prior
    lssviewer suite -n 1000 -o suite.h5 --seed 7                  # again: resumes where it stopped
    lssviewer suite -n 1000 -o part3.h5 --seed 7 --shard 3/16     # one job of a 16-job array
    lssviewer suite --merge part*.h5 -o suite.h5                  # join the shards
    lssviewer suite -o demo.h5 --seed 2026 --cosmology 0.3175,0.834 --cosmology 0.2,0.7 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import sys

from lssviewer.commands.simulate import add_config_arguments, config_from_args

HELP = "make (or resume) a Latin-hypercube suite of simulated boxes; --shard i/n and --merge for clusters"


def _point(text: str) -> tuple[float, float]:
    try:
        om, s8 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected OMEGA_M,SIGMA_8 (e.g. 0.3175,0.834), got {text!r}") from None
    return om, s8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--boxes", type=int, help="number of boxes of the Latin hypercube")
    p.add_argument("-o", "--output", required=True, help="suite file (.h5); resumed when it exists")
    p.add_argument("--seed", type=int, help="suite seed (box i gets a seed derived from it and i)")
    p.add_argument("--cosmology", type=_point, action="append", metavar="OM,S8",
                   help="simulate these cosmologies instead of a Latin hypercube (repeatable)")
    p.add_argument("--repeats", type=int, default=1, help="boxes (seeds) per --cosmology (default 1)")
    p.add_argument("--shard", help="make only shard i of n (boxes i, i+n, ...), e.g. 0/8")
    p.add_argument("--workers", type=int, default=1, help="simulation processes (default 1)")
    p.add_argument("--batch", type=int, default=1,
                   help="boxes per file append (default 1: a kill loses only the boxes in flight)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.add_argument("--merge", nargs="+", metavar="SHARD",
                   help="merge these shard files into OUTPUT instead of simulating")
    p.add_argument("--allow-incomplete", action="store_true", help="with --merge: accept missing boxes")
    add_config_arguments(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lssviewer.errors import ParameterError
    from lssviewer.io import hdf5
    from lssviewer.sim.suite import SuitePlan, merge_shards, parse_shard, run_suite

    out = Path(args.output)
    if out.suffix.lower() not in hdf5.EXTENSIONS:
        raise ParameterError(f"the suite file must be native HDF5 (.h5 or .hdf5), got {out.name!r}")
    if args.merge:
        count = merge_shards(args.merge, out, allow_incomplete=args.allow_incomplete)
        print(f"{out}: merged {count} boxes from {len(args.merge)} file(s)")
        return 0
    if args.seed is None:
        raise ParameterError("--seed is required (it defines the suite)")
    if args.cosmology:
        if args.boxes is not None and args.boxes != len(args.cosmology) * args.repeats:
            raise ParameterError(f"-n {args.boxes} disagrees with {len(args.cosmology)} cosmologies x "
                                 f"{args.repeats} repeats")
        plan = SuitePlan(n=len(args.cosmology) * args.repeats, seed=args.seed, config=config_from_args(args),
                         redshift=args.redshift, points=tuple(args.cosmology), repeats=args.repeats)
    else:
        if args.boxes is None:
            raise ParameterError("give the number of boxes with -n (or cosmologies with --cosmology)")
        plan = SuitePlan(n=args.boxes, seed=args.seed, config=config_from_args(args), redshift=args.redshift)
    report = run_suite(plan, out, shard=parse_shard(args.shard), workers=args.workers, device=args.device,
                       threads=args.threads, batch=args.batch, progress=not args.no_progress)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif report.made:
        print(f"{out}: made {report.made} boxes ({report.already_done} already there, {report.total} in "
              f"total) in {report.elapsed:.1f} s: {report.seconds_per_box:.2f} s/box, "
              f"{report.boxes_per_hour:.0f} boxes/hour (writing {report.write_time:.1f} s)")
    else:
        print(f"{out}: all {report.total} boxes already done")
    return 0
