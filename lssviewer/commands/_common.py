"""Options shared by the verbs that read catalogs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_load_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading options")
    g.add_argument("--format", dest="fmt", help="force the input format (default: from name/content)")
    g.add_argument("--box-size", type=float, help="box size in Mpc/h when the file does not state it")
    g.add_argument("--redshift", type=float, help="redshift when the file does not state it")
    g.add_argument("--omega-m", type=float, help="Omega_m when the file does not state it")
    g.add_argument("--sigma-8", type=float, help="sigma_8 when the file does not state it")
    g.add_argument("--mass-column", default=None, help="Rockstar mass column (default Mvir)")
    g.add_argument("--wrap", action="store_true", help="wrap positions outside [0, L) periodically into the box")


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for key in ("box_size", "redshift", "omega_m", "sigma_8", "mass_column"):
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    if getattr(args, "wrap", False):
        opts["wrap"] = True
    if getattr(args, "fmt", None):
        opts["fmt"] = args.fmt
    return opts


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, allow_nan=False, default=_default)
    sys.stdout.write("\n")


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
