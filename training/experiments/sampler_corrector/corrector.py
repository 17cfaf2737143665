"""Experiment (session 8, not shipped): an ancestral predictor with a Langevin corrector after each step
(predictor-corrector sampling, Song et al. 2021, algorithm 5) on the built-in model, scored like the model
card's residuals (16 samples at each of the 5 cosmologies of training/default/fresh.h5).

    python training/experiments/sampler_corrector/corrector.py --snr 0.1 [--steps 50] [--corrector-steps 1]
    python training/experiments/sampler_corrector/corrector.py --snr 0     # the plain ancestral sampler

Corrector step at the new time s: score = -eps_hat / sigma_s, step size delta = 2 (snr |xi| / |score|)^2 per
catalog, z <- z + delta score + sqrt(2 delta) xi. Prints the chi2 per statistic (summed over the cosmologies)
and the fraction of bins within 2 sigma. Results of the session: results.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import lssviewer.model.api as api
from lssviewer.io import hdf5
from lssviewer.model.api import load_model
from lssviewer.model.schedule import alpha_sigma
from lssviewer.model.validation import CARD_STATISTICS, sample_vs_simulation

ROOT = Path(__file__).resolve().parents[3]


def predictor_corrector(snr: float, n_corrector: int):
    """A drop-in for :func:`lssviewer.model.sampler.sample` (ancestral predictor + Langevin corrector)."""

    @torch.inference_mode()
    def sample(vdm, theta_unit, n_halos, steps, generator, method="ancestral", callback=None, cancel=None):
        b = theta_unit.shape[0]
        shape = (b, n_halos, 7)
        z = torch.randn(shape, generator=generator)
        gammas, _ = vdm.schedule(torch.linspace(1.0, 0.0, steps + 1))
        for i in range(steps):
            g_t, g_s = gammas[i], gammas[i + 1]
            a_t, s_t = alpha_sigma(g_t)
            a_s, s_s = alpha_sigma(g_s)
            eps_hat = vdm.eps_hat(z, g_t.expand(b), theta_unit).float()
            c = -torch.expm1(g_s - g_t)
            z = (a_s / a_t) * (z - c * s_t * eps_hat) + torch.sqrt(s_s**2 * c) * torch.randn(shape, generator=generator)
            if snr > 0 and i < steps - 1:
                for _ in range(n_corrector):
                    score = -vdm.eps_hat(z, g_s.expand(b), theta_unit).float() / s_s
                    xi = torch.randn(shape, generator=generator)
                    delta = (2 * (snr * xi.flatten(1).norm(dim=1) / score.flatten(1).norm(dim=1)) ** 2)[:, None, None]
                    z = z + delta * score + torch.sqrt(2 * delta) * xi
        return z / alpha_sigma(gammas[-1])[0]

    return sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snr", type=float, required=True, help="corrector signal-to-noise ratio (0: no corrector)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--corrector-steps", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(2)
    api.sample = predictor_corrector(args.snr, args.corrector_steps)  # DiffusionModel.sample calls api.sample
    model = load_model(None, device="cpu")
    t0 = time.time()
    res = sample_vs_simulation(model, hdf5.read(ROOT / "training/default/fresh.h5"), n_samples=16, seed=0,
                               method="ancestral", steps=args.steps)
    out = {"snr": args.snr, "steps": args.steps, "corrector_steps": args.corrector_steps,
           "seconds": round(time.time() - t0),
           "chi2": {k: round(sum(e[k]["chi2"] for e in res["per_cosmology"]), 1) for k in CARD_STATISTICS},
           "within_2sigma": {k: res["summary"][k]["within_2sigma"] for k in CARD_STATISTICS}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
