"""Union of the built-in model's training suite and new boxes, in the packed layout (lssviewer.io.hdf5).

    python tools/union_suite.py --old training/default/suite.h5 --new new.h5 [--new-packed new_boxes.h5] \
        --union union.h5

The new boxes are packed first (positions to 0.01 Mpc/h, velocities to 1 km/s) and the union is built from
that packed copy, so that the same union comes out of ``--new new_boxes.h5`` later (rounding is idempotent):
the GPU slice (tools/gpu_grow_and_train.sh) and a later checkout make the same training data.
"""

from __future__ import annotations

import argparse

from lssviewer.io import hdf5

POSITION_DECIMALS = 2  # 0.01 Mpc/h (the built-in simulator's force mesh: 1.6 Mpc/h)
VELOCITY_DECIMALS = 0  # 1 km/s (halo velocity dispersions: ~300 km/s)


def box_key(cat) -> tuple:
    """What identifies a simulated box: its suite seed and index in the design (else its name and seed)."""
    p = cat.provenance
    if "suite_seed" in p and "box_index" in p:
        return ("suite", int(p["suite_seed"]), int(p["box_index"]))
    return ("name", cat.name, p.get("seed"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="existing suite (any lssviewer HDF5 layout)")
    ap.add_argument("--new", required=True, help="new boxes (any lssviewer HDF5 layout)")
    ap.add_argument("--new-packed", help="also write the packed new boxes here")
    ap.add_argument("--union", required=True, help="output: old + new boxes, packed")
    args = ap.parse_args(argv)
    rounding = {"position_decimals": POSITION_DECIMALS, "velocity_decimals": VELOCITY_DECIMALS}
    new = hdf5.read(args.new)
    if args.new_packed:
        hdf5.write(new, args.new_packed, packed=True, **rounding)
        new = hdf5.read(args.new_packed)
    old = hdf5.read(args.old)
    seen = {box_key(c) for c in old}
    twice = [box_key(c) for c in new if box_key(c) in seen]
    if twice:
        raise SystemExit(f"union_suite: {len(twice)} new box(es) are already in {args.old} (first: {twice[0]}); "
                         "use a suite seed it does not hold")
    hdf5.write(old + new, args.union, packed=True, **rounding)
    print(f"union: {len(old)} + {len(new)} = {len(old) + len(new)} boxes -> {args.union}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
