"""Experiment: return the network's x-hat at t = 0 instead of the decoder mean z_0 / alpha_0 from the sampler.

    python training/experiments/final_xhat/final_xhat.py [--model resources/models/default] [-o out.json]

Runs the model card's sample residuals (`lssviewer.model.validation`, 16 samples vs the 16 fresh simulations at
each of the 5 cosmologies of training/default/fresh.h5, the model's default sampler) twice: as shipped, and with
one more network evaluation at t = 0 whose data estimate (z_0 - sigma_0 eps_hat) / alpha_0 replaces the decoder
mean (bench_small_scales.py's "denoised once at t = 0" row). Prints the summed chi2 and the fraction of bins
within 2 sigma of each statistic for both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import lssviewer.model.api as api  # noqa: E402
from benchmarks.bench_small_scales import final_denoise  # noqa: E402
from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model import load_model  # noqa: E402
from lssviewer.model.validation import sample_vs_simulation  # noqa: E402

ORIGINAL = api.sample


def sample_then_xhat(vdm, theta_unit, *args, **kwargs):
    x0 = ORIGINAL(vdm, theta_unit, *args, **kwargs)
    with torch.no_grad():
        return final_denoise(vdm, x0, theta_unit)


def summary(res) -> dict:
    out = {}
    for stat in res["statistics"]:
        chi2 = sum(pc[stat]["chi2"] for pc in res["per_cosmology"])
        out[stat] = {"chi2": round(chi2, 1), "within_2sigma": res["summary"][stat]["within_2sigma"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources/models/default"))
    ap.add_argument("--fresh", default=str(ROOT / "training/default/fresh.h5"))
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args()
    model = load_model(args.model)
    sims = hdf5.read(args.fresh)
    out = {"shipped": summary(sample_vs_simulation(model, sims))}
    api.sample = sample_then_xhat
    try:
        out["final_xhat"] = summary(sample_vs_simulation(model, sims))
    finally:
        api.sample = ORIGINAL
    print(json.dumps(out, indent=1))
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
