"""How much spatial structure a model has learned: the drop in its log-likelihood when it is destroyed.

    python benchmarks/bench_structure.py [--models resources/models/default OTHER] [--first-index 1632] [--boxes 20]

For held-out boxes of the built-in suite that no model saw (``bench_heldout_coverage.common_heldout``: with
``--first-index 1632``, boxes added after v0.3 was trained), at the true cosmology, the ELBO of the catalog
(16 stratified noise draws, common random numbers) minus the ELBO of two altered copies:

* ``uniform``: positions replaced by uniform random points (velocities and masses kept): clustering and the
  position-velocity-mass couplings destroyed;
* ``permuted``: positions permuted among the halos (the point pattern kept, which halo sits where shuffled):
  only the couplings of positions to masses and velocities destroyed (e.g. massive halos in dense regions,
  infall of pairs).

A model of independent uniform positions gives 0 for both; positive nats per box measure the structure the model
expects (a simulation-level truth is not known in closed form, so this is a monitor to compare models and
training runs, not a pass/fail test). The box statistics are unchanged by both alterations, so the box term of
box-standardised models cancels.

``--fresh fresh.h5`` adds, at the first cosmology of that file, the mean ELBO of ``--n`` of its simulations and of
``--n`` samples of each model (its default sampler), with the same drops: a model whose sampler realised all it
has learned would score its samples like the simulations. Prints a table and writes
benchmarks/results/bench_structure.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench_heldout_coverage import common_heldout  # noqa: E402
from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model import load_model  # noqa: E402


def altered(cat, how: str, rng: np.random.Generator):
    """A copy of ``cat`` with its positions made uniform or permuted."""
    if how == "uniform":
        pos = rng.uniform(0.0, cat.box_size, cat.positions.shape)
    else:
        pos = cat.positions[rng.permutation(len(cat))]
    return cat.replace(positions=pos)


def per_box_drops(model, cats, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ELBO of each catalog at its own cosmology, and per alteration its drop when positions are altered."""
    def elbo(cat) -> float:
        return model.log_likelihood(cat, cat.cosmology.omega_m, cat.cosmology.sigma_8, seed=seed)[0]

    base = np.array([elbo(c) for c in cats])
    drops = {}
    for how in ("uniform", "permuted"):
        rng = np.random.default_rng(seed)
        drops[how] = base - np.array([elbo(altered(c, how, rng)) for c in cats])
    return base, drops


def structure_drops(model, cats, seed: int) -> dict[str, float]:
    """Mean ELBO of ``cats`` and its mean drops when positions are made uniform / permuted."""
    base, drops = per_box_drops(model, cats, seed)
    return {"n": len(cats), "mean_elbo": round(float(base.mean()), 1),
            **{f"drop_{how}": round(float(d.mean()), 1) for how, d in drops.items()}}


def samples_vs_simulations(model, fresh, n: int, seed: int) -> dict[str, dict]:
    """structure_drops of ``n`` simulations at the first cosmology of ``fresh`` and of ``n`` model samples."""
    om, s8 = fresh[0].cosmology.omega_m, fresh[0].cosmology.sigma_8
    sims = [c for c in fresh if np.isclose(c.cosmology.omega_m, om) and np.isclose(c.cosmology.sigma_8, s8)][:n]
    samples = model.sample(om, s8, n=len(sims), seed=seed + 1)
    return {"simulations": {**structure_drops(model, sims, seed), "omega_m": om, "sigma_8": s8},
            "samples": structure_drops(model, samples, seed)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[str(HERE.parent / "resources/models/default")])
    ap.add_argument("--suite", default=str(HERE.parent / "training/default/suite.h5"))
    ap.add_argument("--boxes", type=int, default=20)
    ap.add_argument("--first-index", type=int, default=0, help="only boxes at this suite index or later")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", help="simulations at fixed cosmologies (e.g. training/default/fresh.h5)")
    ap.add_argument("--n", type=int, default=8, help="with --fresh: simulations and samples compared")
    ap.add_argument("-o", "--output", default=str(HERE / "results" / "bench_structure.json"))
    args = ap.parse_args(argv)
    models = [load_model(m) for m in args.models]
    # raw ELBOs, no temperature: boxes a temperature was fitted on are fine here
    idx = common_heldout(models, hdf5.count(args.suite), args.first_index, exclude_calibration=False)[: args.boxes]
    boxes = hdf5.read(args.suite, idx)
    report: dict = {"suite": args.suite, "indices": idx, "models": {}}
    print(f"{len(idx)} held-out boxes; ELBO(catalog) - ELBO(altered) at the true cosmology, nats per box")
    print(f"{'model':<40} {'alteration':>10} {'mean':>8} {'sd of mean':>10} {'min':>8} {'max':>8}")
    for path, model in zip(args.models, models, strict=True):
        out = {}
        _, drops = per_box_drops(model, boxes, args.seed)
        for how, d in drops.items():
            out[how] = {"mean_nats": round(float(d.mean()), 2), "sd_of_mean": round(float(d.std(ddof=1) /
                        np.sqrt(len(d))), 2), "per_box": [round(float(v), 2) for v in d]}
            print(f"{path[-40:]:<40} {how:>10} {d.mean():>8.2f} {out[how]['sd_of_mean']:>10.2f} "
                  f"{d.min():>8.2f} {d.max():>8.2f}")
        if args.fresh:
            out["samples_vs_simulations"] = samples_vs_simulations(model, hdf5.read(args.fresh), args.n, args.seed)
            for label, r in out["samples_vs_simulations"].items():
                print(f"{path[-40:]:<40} {label:>10}  mean ELBO {r['mean_elbo']:.1f}, drop uniform "
                      f"{r['drop_uniform']:.1f}, permuted {r['drop_permuted']:.1f} (n = {r['n']})")
        report["models"][path] = out
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
