"""Small-scale clustering and infall of model samples against simulations at one cosmology.

    python tools/sample_clustering.py --models resources/models/default OTHER [--fresh training/default/fresh.h5]
        [--cosmology 0.3175,0.834] [--n 16] [--seed 2]

For each model, ``--n`` samples (seed ``--seed``, the model's default sampler) at the cosmology, and the
simulations of ``--fresh`` at that cosmology: the real-space 2PCF xi at 2 / 6 / 10 Mpc/h and the mean radial
pairwise velocity v12 [km/s] at 6 / 10 / 14 Mpc/h (the bins whose centres are nearest; shared bins,
``lssviewer.stats.compute_sets``), means over catalogs. The numbers docs/model.md quotes for each shipped model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model import load_model  # noqa: E402
from lssviewer.stats import compute_sets  # noqa: E402

XI_AT = (2.0, 6.0, 10.0)
V12_AT = (6.0, 10.0, 14.0)


def at(result, where) -> list[float]:
    """Mean over catalogs of the single component at the bins nearest to ``where`` (x units of the result)."""
    values = next(iter(result.values.values())).mean(axis=0)
    return [float(values[np.argmin(np.abs(result.centers - x))]) for x in where]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resources/models/default"])
    ap.add_argument("--fresh", default="training/default/fresh.h5")
    ap.add_argument("--cosmology", default="0.3175,0.834", help="omega_m,sigma_8")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args(argv)
    om, s8 = (float(v) for v in args.cosmology.split(","))
    cosmos = hdf5.read_cosmologies(args.fresh)
    idx = [i for i, c in enumerate(cosmos)
           if c is not None and abs(c.omega_m - om) < 1e-6 and abs(c.sigma_8 - s8) < 1e-6]
    if not idx:
        sys.exit(f"error: {args.fresh}: no simulation at omega_m={om}, sigma_8={s8}")
    sets = {"simulations": hdf5.read(args.fresh, idx)}
    for m in args.models:
        sets[m] = load_model(m).sample(om, s8, n=args.n, seed=args.seed)
    xi = compute_sets("xi", sets)
    v12 = compute_sets("pairwise", sets)
    print(f"({om}, {s8}); {len(idx)} simulations, {args.n} samples (seed {args.seed})")
    xi_at = "/".join(f"{x:g}" for x in XI_AT)
    v12_at = "/".join(f"{x:g}" for x in V12_AT)
    print(f"{'set':44s} xi at {xi_at} Mpc/h      v12 at {v12_at} Mpc/h [km/s]")
    for label in sets:
        a = " / ".join(f"{v:5.1f}" for v in at(xi[label], XI_AT))
        b = " / ".join(f"{v:6.0f}" for v in at(v12[label], V12_AT))
        print(f"{label:44s} {a:24s} {b}")


if __name__ == "__main__":
    main()
