"""Choose the built-in model's sampler on simulations the model card does not use, then check it on the card's.

    python training/experiments/final_xhat/sampler_choice.py --fresh SELECT.h5 [--model DIR] [-o out.json]
        [--variants dpm2:25:decoder_mean dpm2:50:denoise:logsnr ...]

Each variant METHOD:STEPS:FINAL[:SPACING] (``lssviewer.model.sampler.sample``; spacing ``time`` when not given)
draws 16 samples at each cosmology of ``--fresh`` (>= 16 simulations per cosmology) and is scored as the model
card's residuals are
(``lssviewer.model.validation.sample_vs_simulation``, same seeds for every variant): per statistic, the summed
chi2 over cosmologies (with its degrees of freedom) and the fraction of bins within 2 sigma, plus the wall time
of the sampling and scoring. The selection set of 2026-11-27 is

    lssviewer suite -o select.h5 --seed 778 --device cpu --cosmology 0.25,0.85 --cosmology 0.35,0.72 \\
        --cosmology 0.22,0.64 --repeats 16

(48 boxes, 9 min on 2 cores; none of these cosmologies or seeds are in the card's fresh.h5 or the suite).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model import load_model  # noqa: E402
from lssviewer.model.validation import sample_vs_simulation  # noqa: E402

DEFAULT_VARIANTS = ("dpm2:25:decoder_mean", "dpm2:25:denoise", "dpm2:50:denoise", "ancestral:100:denoise")


def summary(res: dict) -> dict:
    """Summed chi2 / dof and the fraction of bins within 2 sigma, per statistic."""
    out = {}
    for stat in res["statistics"]:
        chi2 = sum(pc[stat]["chi2"] for pc in res["per_cosmology"])
        dof = sum(pc[stat]["dof"] for pc in res["per_cosmology"])
        out[stat] = {"chi2": round(chi2, 1), "dof": dof, "within_2sigma": res["summary"][stat]["within_2sigma"]}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources/models/default"))
    ap.add_argument("--fresh", required=True, help="simulations, >= 16 per cosmology")
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), metavar="METHOD:STEPS:FINAL[:SPACING]")
    ap.add_argument("--seed", type=int, default=0, help="first sample seed (cosmology k uses seed + k)")
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    sims = hdf5.read(args.fresh)
    out: dict = {"model": args.model, "fresh": args.fresh, "n_sims": len(sims), "seed": args.seed, "variants": {}}
    for variant in args.variants:
        method, steps, final, *rest = variant.split(":")
        spacing = rest[0] if rest else "time"
        t0 = time.perf_counter()
        res = sample_vs_simulation(model, sims, method=method, steps=int(steps), final=final,
                                   spacing=spacing, seed=args.seed)
        row = {**summary(res), "seconds": round(time.perf_counter() - t0, 1)}
        out["variants"][variant] = row
        print(variant, json.dumps(row), flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
