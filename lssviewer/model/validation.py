"""Validation numbers for the model card: calibration of the likelihood intervals and summary
statistics of samples against fresh simulations.

    python -m lssviewer.model.validation --model DIR --heldout heldout.h5 [--fresh fresh.h5] [-o card.json]

* **coverage** (``--heldout``: >= 50 boxes the model never saw, e.g. the validation boxes of the
  training suite, ``model.json['data']['val_indices']``): for each box, 1-D ELBO profiles in Omega_m
  (sigma_8 at its truth) and in sigma_8 (Omega_m at its truth); the fraction of boxes whose 68 % /
  95 % interval contains the truth (target 68 % / 95 %) and the median interval widths.
* **residuals** (``--fresh``: >= 16 simulations at each of >= 5 cosmologies): at each cosmology,
  the same number of model samples; per bin of each statistic, (mean_samples - mean_sims) /
  sqrt(var_sims / n_sims + var_samples / n_samples), reported as the fraction of bins within 2 and
  3 sigma and the worst bin. Statistics (computed here, self-contained, periodic box):
  cumulative mass function n(>M), two-point correlation xi(r) (natural estimator with analytic
  randoms, RR = N (N - 1) V_shell / L^3 for ordered pairs), 1-D velocity PDF, and mean radial
  pairwise velocity v12(r) (negative = infall).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.model.api import DiffusionModel
from lssviewer.model.likelihood import profile_1d, summarize_profile

# ------------------------------------------------------------------------------------ statistics


def mass_function(cat: HaloCatalog, edges: np.ndarray) -> np.ndarray:
    """Cumulative number density n(>M) [(h/Mpc)^3] at the log10 M [Msun/h] ``edges``."""
    logm = cat.log10_mass
    return np.array([(logm > e).sum() for e in edges]) / cat.volume


def _pairs(cat: HaloCatalog, rmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs (i, j) closer than rmax (periodic) and their minimal-image separations (P, 3)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(cat.positions, boxsize=cat.box_size)
    ij = tree.query_pairs(rmax, output_type="ndarray")
    d = cat.positions[ij[:, 1]] - cat.positions[ij[:, 0]]
    d -= cat.box_size * np.round(d / cat.box_size)
    return ij, d


def correlation_function(cat: HaloCatalog, edges: np.ndarray) -> np.ndarray:
    """xi(r) in the shells ``edges`` [Mpc/h]: DD / RR - 1 with RR = N (N - 1) V_shell / L^3 (ordered pairs)."""
    _, d = _pairs(cat, edges[-1])
    r = np.linalg.norm(d, axis=1)
    dd = 2.0 * np.histogram(r, bins=edges)[0]  # ordered pairs
    n = cat.n_halos
    rr = n * (n - 1) * (4.0 / 3.0 * np.pi * np.diff(edges**3)) / cat.volume
    return dd / rr - 1.0


def pairwise_velocity(cat: HaloCatalog, edges: np.ndarray) -> np.ndarray:
    """Mean radial pairwise velocity v12(r) = <(v_j - v_i) . r_hat_ij> [km/s] in shells (negative = infall)."""
    ij, d = _pairs(cat, edges[-1])
    r = np.linalg.norm(d, axis=1)
    ok = r > 0
    vr = np.sum((cat.velocities[ij[:, 1]] - cat.velocities[ij[:, 0]]) * d, axis=1)[ok] / r[ok]
    s = np.histogram(r[ok], bins=edges, weights=vr)[0]
    c = np.histogram(r[ok], bins=edges)[0]
    return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def velocity_pdf(cat: HaloCatalog, edges: np.ndarray) -> np.ndarray:
    """PDF of the velocity components [1/(km/s)] in the bins ``edges`` [km/s]."""
    return np.histogram(cat.velocities.ravel(), bins=edges, density=True)[0]


def statistic_vectors(cats: Sequence[HaloCatalog], bins: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(n_catalogs, n_bins) arrays of each statistic."""
    fns = {"mass_function": mass_function, "xi": correlation_function, "velocity_pdf": velocity_pdf,
           "pairwise_velocity": pairwise_velocity}
    return {k: np.array([fn(c, bins[k]) for c in cats]) for k, fn in fns.items()}


def default_bins(cats: Sequence[HaloCatalog]) -> dict[str, np.ndarray]:
    box = cats[0].box_size
    logm = np.concatenate([c.log10_mass for c in cats])
    v = np.concatenate([c.velocities.ravel() for c in cats])
    vmax = np.quantile(np.abs(v), 0.995)
    rmax = min(box / 4, 60.0)
    return {"mass_function": np.quantile(logm, np.linspace(0.0, 0.95, 10)),
            "xi": np.geomspace(2.0, rmax, 11), "velocity_pdf": np.linspace(-vmax, vmax, 21),
            "pairwise_velocity": np.geomspace(2.0, rmax, 11)}


def residuals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-bin (mean_a - mean_b) / sqrt(var_a / n_a + var_b / n_b); NaN where undefined."""
    ma, mb = np.nanmean(a, 0), np.nanmean(b, 0)
    va, vb = np.nanvar(a, 0, ddof=1) / len(a), np.nanvar(b, 0, ddof=1) / len(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ma - mb) / np.sqrt(va + vb)


def sample_vs_simulation(model: DiffusionModel, fresh: Sequence[HaloCatalog], n_samples: int = 16,
                         seed: int = 0) -> dict[str, Any]:
    """Residuals in sigma of samples vs fresh simulations, per cosmology and statistic."""
    groups: dict[tuple[float, float], list[HaloCatalog]] = defaultdict(list)
    for c in fresh:
        cut = c.top_n(model.n_halos) if c.n_halos > model.n_halos else c
        groups[(round(c.omega_m, 6), round(c.sigma_8, 6))].append(cut)
    bins = default_bins(fresh)
    out: dict[str, Any] = {"n_cosmologies": len(groups), "per_cosmology": []}
    all_res: dict[str, list[np.ndarray]] = defaultdict(list)
    for k, (theta, sims) in enumerate(sorted(groups.items())):
        samples = model.sample(*theta, n=n_samples, seed=seed + k, allow_extrapolation=True)
        s_sim, s_mod = statistic_vectors(sims, bins), statistic_vectors(samples, bins)
        entry: dict[str, Any] = {"omega_m": theta[0], "sigma_8": theta[1], "n_sims": len(sims),
                                 "n_samples": n_samples}
        for name in s_sim:
            res = residuals(s_mod[name], s_sim[name])
            all_res[name].append(res)
            entry[name] = [None if not np.isfinite(x) else round(float(x), 2) for x in res]
        out["per_cosmology"].append(entry)
    summary = {}
    for name, lst in all_res.items():
        r = np.abs(np.concatenate(lst))
        r = r[np.isfinite(r)]
        summary[name] = {"bins": int(r.size), "within_2sigma": round(float(np.mean(r <= 2)), 3),
                         "within_3sigma": round(float(np.mean(r <= 3)), 3), "max_abs_sigma": round(float(r.max()), 2)}
    out["summary"] = summary
    out["bins"] = {k: v.tolist() for k, v in bins.items()}
    return out


# ------------------------------------------------------------------------------------ coverage
def coverage(model: DiffusionModel, heldout: Sequence[HaloCatalog], points: int = 30, n_noise: int = 8,
             seed: int = 0) -> dict[str, Any]:
    """Fraction of held-out boxes whose 68 % / 95 % profile intervals contain the truth, per parameter."""
    out: dict[str, Any] = {"n_boxes": len(heldout), "points": points, "n_noise": n_noise}
    for param in ("omega_m", "sigma_8"):
        i = 0 if param == "omega_m" else 1
        hits68, hits95, widths, maps = [], [], [], []
        for c in heldout:
            cat = c.top_n(model.n_halos) if c.n_halos > model.n_halos else c
            pts = list(profile_1d(model, cat, param, points=points, n_noise=n_noise, seed=seed))
            grid = np.array([p.theta[i] for p in pts])
            s = summarize_profile(grid, [p.log_likelihood for p in pts])
            truth = (cat.omega_m, cat.sigma_8)[i]
            hits68.append(s["interval68"][0] <= truth <= s["interval68"][1])
            hits95.append(s["interval95"][0] <= truth <= s["interval95"][1])
            widths.append(s["interval68"][1] - s["interval68"][0])
            maps.append(s["map"] - truth)
        n = len(hits68)
        f68 = float(np.mean(hits68))
        out[param] = {"coverage68": round(f68, 3), "coverage68_binomial_sd": round(float(np.sqrt(0.68 * 0.32 / n)), 3),
                      "coverage95": round(float(np.mean(hits95)), 3),
                      "median_width68": round(float(np.median(widths)), 4),
                      "median_abs_map_error": round(float(np.median(np.abs(maps))), 4),
                      "mean_map_error": round(float(np.mean(maps)), 4)}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from lssviewer.io import hdf5
    from lssviewer.model import load_model
    from lssviewer.model.checkpoint import write_card

    ap = argparse.ArgumentParser(prog="python -m lssviewer.model.validation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: the built-in model)")
    ap.add_argument("--heldout", help="suite of held-out boxes for coverage")
    ap.add_argument("--heldout-indices", help="'val' to take model.json's validation indices of --heldout")
    ap.add_argument("--fresh", help="fresh simulations (>= 16 per cosmology) for the residuals")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--n-noise", type=int, default=8)
    ap.add_argument("-o", "--output", help="write the card JSON here (default: print it)")
    ap.add_argument("--write-card", action="store_true", help="store it as card.json in the model directory")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    card: dict[str, Any] = {"model": str(model.path), "n_halos": model.n_halos, "box_size": model.box_size,
                            "redshift": model.redshift, "prior": model.prior.to_dict(),
                            "data": model.meta.get("data", {}), "training": model.meta.get("training", {}),
                            "device": model.device}
    t0 = time.perf_counter()
    if args.heldout:
        idx = model.meta["data"]["val_indices"] if args.heldout_indices == "val" else None
        card["coverage"] = coverage(model, hdf5.read(args.heldout, idx), args.points, args.n_noise)
    if args.fresh:
        card["residuals"] = sample_vs_simulation(model, hdf5.read(args.fresh), args.samples)
    card["validation_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(card, indent=2)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    if args.write_card and model.path is not None:
        write_card(model.path, card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
