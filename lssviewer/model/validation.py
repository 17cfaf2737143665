"""Validation numbers for the model card: calibration of the likelihood intervals and summary
statistics of samples against fresh simulations.

    python -m lssviewer.model.validation --model DIR --heldout heldout.h5 [--fresh fresh.h5] [-o card.json]

* **coverage** (``--heldout``: >= 50 boxes the model never saw, e.g. the validation boxes of the
  training suite, ``model.json['data']['val_indices']``): for each box, 1-D ELBO profiles in Omega_m
  (sigma_8 at its truth) and in sigma_8 (Omega_m at its truth); the fraction of boxes whose 68 % /
  95 % interval contains the truth (target 68 % / 95 %) and the median interval widths.
* **calibration** (``--calibrate N``): the likelihood temperature T
  (:func:`lssviewer.model.likelihood.calibrate_temperature`) fitted on N further held-out boxes, disjoint
  from the coverage boxes; the coverage is then reported raw and calibrated (log L / T), so the card shows
  both how sharp the ELBO is on its own and whether the calibrated intervals hold on unseen boxes.
* **theta information** (``--information``): how much of the profiles' theta-dependence comes from the
  score network's theta input and how much from the theta-dependent standardisation (or, box-standardised,
  from the box statistics' Gaussian), and the MAP errors of a Gaussian baseline that uses the standardisation
  (or the box statistics) alone (:func:`theta_information`).
* **residuals** (``--fresh``: >= 16 simulations at each of >= 5 cosmologies): at each cosmology,
  the same number of model samples; per bin of each statistic, (mean_samples - mean_sims) /
  sqrt(var_sims / n_sims + var_samples / n_samples), reported as the fraction of bins within 2 and
  3 sigma and the worst bin. Statistics from :mod:`lssviewer.stats` (the same code as the app's
  statistics panel): mass function, xi(r), velocity PDFs and mean radial pairwise velocity v12(r).
  Also the box-to-box spread of two per-catalog numbers, the median log10 M (the mass scale) and the
  velocity dispersion sigma_v (rms of the velocity components about their mean; set by the few
  large-scale velocity modes of the box, so in the simulations it scatters ~3x more than independent
  halos would give): mean and standard deviation over samples and over simulations, since a model
  that gets them wrong is over- or under-confident.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lssviewer.catalog import HaloCatalog
from lssviewer.model.api import DiffusionModel
from lssviewer.model.data import theta_to_unit
from lssviewer.model.features import catalog_to_raw
from lssviewer.model.likelihood import (
    DEFAULT_NOISE,
    MIN_DEFICITS,
    PARAMS,
    Tempering,
    calibrate_temperature,
    default_profile_tempering,
    elbo_scan,
    profile_1d,
    profile_grid,
    summarize_profile,
    truth_deficit,
)
from lssviewer.model.sampler import FINALS, SAMPLERS, SPACINGS


def _scored(model: DiffusionModel, catalog: HaloCatalog) -> HaloCatalog:
    """The catalog as the model scores it: its ``model.n_halos`` most massive halos."""
    return catalog.top_n(model.n_halos) if catalog.n_halos > model.n_halos else catalog


# ------------------------------------------------------------------------------------ residuals
#: Statistics of the model card (names of :mod:`lssviewer.stats`).
CARD_STATISTICS = ("hmf", "xi", "vpdf", "pairwise")


def sample_vs_simulation(model: DiffusionModel, fresh: Sequence[HaloCatalog], n_samples: int = 16,
                         seed: int = 0, statistics: Sequence[str] = CARD_STATISTICS,
                         method: str | None = None, steps: int | None = None,
                         final: str | None = None, spacing: str | None = None) -> dict[str, Any]:
    """Residuals in sigma of samples vs fresh simulations, per cosmology and statistic.

    At each cosmology of ``fresh``, ``n_samples`` model samples are compared with the simulations by
    :func:`lssviewer.stats.compare` (mode "mean": (mean_samples - mean_sims) /
    sqrt(var_samples / n_samples + var_sims / n_sims) per bin), on bins shared by both sets.
    """
    from lssviewer import stats

    groups: dict[tuple[float, float], list[HaloCatalog]] = defaultdict(list)
    for c in fresh:
        groups[(round(c.omega_m, 6), round(c.sigma_8, 6))].append(_scored(model, c))
    out: dict[str, Any] = {"n_cosmologies": len(groups), "statistics": list(statistics), "per_cosmology": []}
    all_res: dict[str, list[np.ndarray]] = defaultdict(list)
    for k, (theta, sims) in enumerate(sorted(groups.items())):
        options = (("method", method), ("steps", steps), ("final", final), ("spacing", spacing))
        sampler = {k_: v for k_, v in options if v is not None}
        samples = model.sample(*theta, n=n_samples, seed=seed + k, allow_extrapolation=True, **sampler)
        entry: dict[str, Any] = {"omega_m": theta[0], "sigma_8": theta[1], "n_sims": len(sims),
                                 "n_samples": n_samples}
        for name in statistics:
            res = stats.compute_sets(name, {"samples": samples, "sims": sims})
            cmp = stats.compare(res["samples"], res["sims"])
            r = np.concatenate([np.asarray(v, float) for v in cmp.residual.values()])
            all_res[name].append(r)
            entry[name] = {"chi2": round(float(cmp.chi2), 1), "dof": int(cmp.dof),
                           "residuals": [None if not np.isfinite(x) else round(float(x), 2) for x in r]}
        entry["scatter"] = {key: {"sims": _mean_sd([fn(c) for c in sims]),
                                  "samples": _mean_sd([fn(c) for c in samples])}
                            for key, fn in SCATTER_STATISTICS.items()}
        out["per_cosmology"].append(entry)
    summary = {}
    for name, lst in all_res.items():
        r = np.abs(np.concatenate(lst))
        r = r[np.isfinite(r)]
        summary[name] = {"bins": int(r.size), "within_2sigma": round(float(np.mean(r <= 2)), 3),
                         "within_3sigma": round(float(np.mean(r <= 3)), 3),
                         "max_abs_sigma": round(float(r.max()), 2) if r.size else None}
    for key in SCATTER_STATISTICS:
        per = [e["scatter"][key] for e in out["per_cosmology"]]
        summary[key] = {
            "median_abs_shift_in_sim_sd": round(float(np.median(
                [abs(p["samples"][0] - p["sims"][0]) / max(p["sims"][1], 1e-12) for p in per])), 2),
            "median_sd_ratio_samples_to_sims": round(float(np.median(
                [p["samples"][1] / max(p["sims"][1], 1e-12) for p in per])), 2)}
    out["summary"] = summary
    return out


#: Per-catalog numbers whose box-to-box spread the card compares (samples vs simulations).
SCATTER_STATISTICS = {
    "median_log10_mass": lambda c: float(np.median(c.log10_mass)),
    "sigma_v_kms": lambda c: float(np.std(c.velocities)),
}


def _mean_sd(values: Sequence[float]) -> list[float]:
    v = np.asarray(values, dtype=np.float64)
    return [round(float(v.mean()), 4), round(float(v.std(ddof=1)), 4)]


# ------------------------------------------------------------------------------------ coverage
def profiles(model: DiffusionModel, boxes: Sequence[HaloCatalog], points: int = 30, n_noise: int = DEFAULT_NOISE,
             seed: int = 0) -> list[dict[str, Any]]:
    """1-D ELBO profiles of each box in Omega_m (sigma_8 at its truth) and in sigma_8 (Omega_m at its truth).

    Returns one dict per box: ``{"truth": (om, s8), "omega_m": (grid, log L), "sigma_8": (grid, log L), "box":
    {param: the box statistics' part of log L per point, or None}}``.
    """
    out = []
    for c in boxes:
        cat = _scored(model, c)
        entry: dict[str, Any] = {"truth": (float(cat.omega_m), float(cat.sigma_8)), "box": {}}
        for i, param in enumerate(PARAMS):
            pts = list(profile_1d(model, cat, param, points=points, n_noise=n_noise, seed=seed))
            entry[param] = (np.array([p.theta[i] for p in pts]), np.array([p.log_likelihood for p in pts]))
            box = [p.box_log_likelihood for p in pts]
            entry["box"][param] = None if None in box else np.array(box)
        out.append(entry)
    return out


def calibration(model: DiffusionModel, boxes: Sequence[HaloCatalog], points: int = 30, n_noise: int = DEFAULT_NOISE,
                seed: int = 0) -> dict[str, Any]:
    """Fit the likelihood temperature on ``boxes`` (both parameters' profiles pooled).

    ``per_box`` keeps each box's raw truth deficit (nats) per parameter, so a later refit
    (``tools/refit_temperature.py``) can pool these boxes with others. ``per_parameter`` also gives the
    temperature each parameter's profiles alone would give (reported; None with fewer than 10 boxes): a fit
    here stores the pooled temperature only, and ``tools/refit_temperature.py --per-parameter`` makes 1-D
    profiles use each parameter's own.
    """
    profs = profiles(model, boxes, points, n_noise, seed)
    by_param = {param: [truth_deficit(*prof[param], prof["truth"][i]) for prof in profs]
                for i, param in enumerate(PARAMS)}
    deficits = [d for param in PARAMS for d in by_param[param]]
    t = calibrate_temperature(deficits)

    def quantiles(values: Sequence[float]) -> dict[str, float]:
        return {f"{q:g}": round(float(np.quantile(values, q)), 2) for q in (0.5, 0.68, 0.95)}

    return {"temperature": float(f"{t:.4g}"), "n_boxes": len(boxes), "n_profiles": len(deficits), "points": points,
            "n_noise": n_noise, "seed": seed, "deficit_quantiles_nats": quantiles(deficits),
            "per_parameter": {param: ({"temperature": float(f"{calibrate_temperature(v):.4g}"),
                                       "deficit_quantiles_nats": quantiles(v)} if len(v) >= MIN_DEFICITS else None)
                              for param, v in by_param.items()},
            "per_box": {f"deficit_nats_{param}": [round(float(d), 3) for d in v] for param, v in by_param.items()}}


def theta_information(model: DiffusionModel, boxes: Sequence[HaloCatalog], profs: Sequence[dict[str, Any]],
                      n_noise: int = DEFAULT_NOISE, seed: int = 0) -> dict[str, Any]:
    """Where the theta-dependence of the likelihood comes from, on the boxes of ``profs`` (:func:`profiles`).

    * ``range_nats``: median over boxes of max - min of the full log L profile over the prior;
    * ``network_theta_only_range_nats``: the same with the catalog standardised at its true theta and
      only the score network's theta input varying (for a model with theta-dependent standardisation the
      rest of the dependence enters through the standardisation of the velocities and log masses; a
      network that has learned field-level information, such as the clustering amplitude, makes this
      large; for a model with fixed standardisation it equals ``range_nats``);
    * ``gaussian_baseline``: MAP errors and raw 68 % coverage of the simplest likelihood the standardisation
      alone gives, independent standard normal standardised velocities and log masses (plus the
      Jacobian): the number the diffusion model's profile should beat. For a box-standardised model this
      is the Gaussian of the three box statistics alone (the standardised catalog is then theta-independent),
      so the comparison says what the network adds to it.

    :func:`coverage` adds ``marginals`` (:func:`marginal_offsets`, on the first 10 boxes).
    """
    net_range: dict[str, list[float]] = defaultdict(list)
    full_range: dict[str, list[float]] = defaultdict(list)
    base: dict[str, dict[str, list[float]]] = {p: defaultdict(list) for p in PARAMS}
    spread = model.transform.spreads  # the baseline: standardised velocities and masses N(0, spread^2)
    for cat, prof in zip(boxes, profs, strict=True):
        cat = _scored(model, cat)
        truth = prof["truth"]
        true_unit = theta_to_unit(np.array([truth]), model.prior)
        x_true = model._standardised(cat, true_unit if model.transform.theta_dependent else None)
        x_true = x_true[0] if x_true.ndim == 3 else x_true
        for i, param in enumerate(PARAMS):
            full_range[param].append(float(np.ptp(prof[param][1])))
            if not model.transform.conditional:  # theta-independent standardisation: the profile is the network's
                net_range[param].append(full_range[param][-1])
                continue
            grid = profile_grid(model, cat, param, len(prof[param][0]))
            unit = theta_to_unit(grid, model.prior)
            th = torch.as_tensor(unit, dtype=torch.float32, device=model.device)
            ll = [v for _, v, _ in elbo_scan(model.vdm, x_true, th, n_noise=n_noise, seed=seed,
                                             batch_size=model.scan_batch_size)]
            net_range[param].append(float(np.ptp(ll)))
            x = model._standardised(cat, unit).double().cpu().numpy()
            gauss = (-0.5 * np.sum((x[..., 3:] / spread) ** 2, axis=(-2, -1)) - x.shape[-2] * np.sum(np.log(spread))
                     + model.transform.log_density_terms(catalog_to_raw(cat), unit))
            summ = summarize_profile(grid[:, i], gauss)
            base[param]["map_error"].append(summ["map"] - truth[i])
            base[param]["hit68"].append(float(summ["interval68"][0] <= truth[i] <= summ["interval68"][1]))
            base[param]["width68"].append(summ["interval68"][1] - summ["interval68"][0])
    out: dict[str, Any] = {
        "n_boxes": len(profs),
        "range_nats": {p: round(float(np.median(v)), 1) for p, v in full_range.items()},
        "network_theta_only_range_nats": {p: round(float(np.median(v)), 1) for p, v in net_range.items()}}
    if model.transform.conditional:
        out["gaussian_baseline"] = {
            p: {"median_abs_map_error": round(float(np.median(np.abs(v["map_error"]))), 4),
                "mean_map_error": round(float(np.mean(v["map_error"])), 4),
                "coverage68": round(float(np.mean(v["hit68"])), 3),
                "median_width68": round(float(np.median(v["width68"])), 4)} for p, v in base.items()}
    return out


def marginal_offsets(model: DiffusionModel, boxes: Sequence[HaloCatalog], n_noise: int = 64, seed: int = 0,
                     points: int = 13) -> dict[str, Any]:
    """Does the ELBO put the velocity scale and the mass scale of a catalog where the data are?

    For each box, standardised at its true theta: the ELBO (+ Jacobian) of the catalog with its standardised
    velocities divided by a (a in [0.8, 1.25], log-spaced) and, separately, with its standardised log masses
    shifted by d (|d| <= 0.3 standard deviations). A Gaussian N(0, 1) model is maximised at a = rms of the
    velocities and d = -mean of the log masses; a network whose marginals match the data puts its maxima
    there too. Reported (medians over boxes): ``velocity_scale_ratio`` = ELBO's best a / rms (> 1: the ELBO
    prefers smaller velocities than the data's) and ``log_mass_offset_dex`` = (ELBO's best d - Gaussian's)
    x std of log M (< 0: it prefers lighter halos). Both enter the theta profiles through the conditional
    standardisation. ``n_noise`` stratified draws: the time quadrature must resolve log-SNR -4..4.
    ``maxima_at_grid_edge`` counts scans whose maximum is the first or last grid point (the ratio or offset is
    then only a bound).
    """
    if model.transform.per_box:
        return {"skipped": "box-standardised model: each catalog's velocity and mass scales are its own, and "
                           "their distribution given theta is the explicit Gaussian of the box statistics"}
    ratios, offsets, edge = [], [], 0
    a = np.exp(np.linspace(np.log(0.8), np.log(1.25), points))
    d = np.linspace(-0.3, 0.3, points)
    for cat in boxes:
        cat = _scored(model, cat)
        unit = theta_to_unit(np.array([[cat.omega_m, cat.sigma_8]]), model.prior)
        x0 = model._standardised(cat, unit if model.transform.conditional else None)
        x0 = (x0[0] if x0.ndim == 3 else x0).double().cpu().numpy()
        th = torch.as_tensor(np.repeat(unit, points, axis=0), dtype=torch.float32, device=model.device)
        xv = np.repeat(x0[None], points, axis=0)
        xv[:, :, 3:6] /= a[:, None, None]
        xm = np.repeat(x0[None], points, axis=0)
        xm[:, :, 6] += d[:, None]
        best = []
        for xs, grid, jac in ((xv, np.log(a), -3.0 * model.n_halos * np.log(a)), (xm, d, 0.0)):
            xt = torch.as_tensor(xs, dtype=torch.float32, device=model.device)
            ll = [v for _, v, _ in elbo_scan(model.vdm, xt, th, n_noise=n_noise, seed=seed, log_jacobian=jac,
                                             batch_size=model.scan_batch_size)]
            best.append(summarize_profile(grid, ll)["map"])
            edge += int(int(np.argmax(ll)) in (0, points - 1))
        # the ELBO prefers velocities of rms rms(x0) / a; a perfect model the rms the standardisation aims at
        ratios.append(float(np.exp(best[0]) * model.transform.velocity_scale / np.sqrt(np.mean(x0[:, 3:6] ** 2))))
        scales = model.transform.physical_scales(unit if model.transform.conditional else None)
        mass_std = float(np.ravel(scales[..., 6])[0])
        offsets.append((best[1] + float(x0[:, 6].mean())) * mass_std)
    return {"n_boxes": len(ratios), "n_noise": n_noise,
            "velocity_scale_ratio": round(float(np.median(ratios)), 4),
            "velocity_scale_ratio_range": [round(float(min(ratios)), 4), round(float(max(ratios)), 4)],
            "log_mass_offset_dex": round(float(np.median(offsets)), 4),
            "log_mass_offset_dex_range": [round(float(min(offsets)), 4), round(float(max(offsets)), 4)],
            "maxima_at_grid_edge": edge}


def coverage(model: DiffusionModel, heldout: Sequence[HaloCatalog], points: int = 30, n_noise: int = DEFAULT_NOISE,
             seed: int = 0, information: bool = False) -> dict[str, Any]:
    """Fraction of held-out boxes whose 68 % / 95 % profile intervals contain the truth, per parameter.

    With a calibrated model (``model.temperature != 1`` or a profile tempering) both the raw ELBO intervals
    (``raw``) and the calibrated ones (``calibrated``: each parameter's tempering,
    :func:`~lssviewer.model.likelihood.default_profile_tempering`, as ``scan`` and the app summarise a 1-D
    profile) are reported, from the same profiles. ``information`` adds :func:`theta_information` on the same boxes
    (one more profile per box and parameter).
    """
    out: dict[str, Any] = {"n_boxes": len(heldout), "points": points, "n_noise": n_noise}
    temperature = float(getattr(model, "temperature", 1.0))
    profile_t = {param: default_profile_tempering(model, param) for param in PARAMS}
    profs = profiles(model, heldout, points, n_noise, seed)
    calibrated = temperature != 1.0 or any(t != Tempering() for t in profile_t.values())
    variants = {"raw": 1.0, "calibrated": temperature} if calibrated else {"raw": 1.0}
    # per box, for later analysis (e.g. a bias that depends on the truth): truth, raw MAP, truth's deficit
    per_box: dict[str, list] = {"truth": [[round(v, 5) for v in prof["truth"]] for prof in profs]}
    for tag, t in variants.items():
        res: dict[str, Any] = {"temperature": t}
        for i, param in enumerate(PARAMS):
            t_param = Tempering() if tag == "raw" else profile_t[param]
            hits68, hits95, widths, maps = [], [], [], []
            for prof in profs:
                grid, ll = prof[param]
                summ = summarize_profile(grid, ll, temperature=t_param, box_log_likelihood=prof["box"][param])
                truth = prof["truth"][i]
                hits68.append(summ["interval68"][0] <= truth <= summ["interval68"][1])
                hits95.append(summ["interval95"][0] <= truth <= summ["interval95"][1])
                widths.append(summ["interval68"][1] - summ["interval68"][0])
                maps.append(summ["map"] - truth)
                if tag == "raw":
                    per_box.setdefault(f"map_{param}", []).append(round(float(summ["map"]), 5))
                    per_box.setdefault(f"deficit_nats_{param}", []).append(round(truth_deficit(grid, ll, truth), 3))
            n = len(hits68)
            res[param] = {"temperature": t_param.temperature,
                          **({"network_temperature": t_param.network} if t_param.network_only else {}),
                          "coverage68": round(float(np.mean(hits68)), 3),
                          "coverage68_binomial_sd": round(float(np.sqrt(0.68 * 0.32 / n)), 3),
                          "coverage95": round(float(np.mean(hits95)), 3),
                          "median_width68": round(float(np.median(widths)), 4),
                          "median_abs_map_error": round(float(np.median(np.abs(maps))), 4),
                          "mean_map_error": round(float(np.mean(maps)), 4)}
        out[tag] = res
    out["per_box"] = per_box
    if information:
        out["theta_information"] = theta_information(model, heldout, profs, n_noise, seed)
        out["theta_information"]["marginals"] = marginal_offsets(model, heldout[:10], seed=seed)
    return out


def heldout_split(indices: Sequence[int], skip: int = 0, n_test: int | None = None, n_calibrate: int = 0,
                  exclude: Sequence[int] = ()) -> tuple[list[int], list[int]]:
    """(test, calibration) boxes of the card from the held-out ``indices`` (in order): the first ``skip`` are
    dropped (they chose the early-stopping checkpoint through the training's validation loss), then those in
    ``exclude`` (a stored temperature's boxes); the next ``n_test`` (default: all) are the test boxes and the
    ``n_calibrate`` after them the calibration boxes."""
    banned = set(exclude)
    idx = [int(i) for i in list(indices)[skip:] if i not in banned]
    n_test = len(idx) if n_test is None else n_test
    return idx[:n_test], idx[n_test:n_test + n_calibrate]


def main(argv: Sequence[str] | None = None) -> int:
    from lssviewer.io import hdf5
    from lssviewer.model import load_model
    from lssviewer.model.checkpoint import network_temperature_indices, write_calibration, write_card

    ap = argparse.ArgumentParser(prog="python -m lssviewer.model.validation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: the built-in model)")
    ap.add_argument("--heldout", help="suite of held-out boxes for coverage")
    ap.add_argument("--heldout-indices", help="'val' to take model.json's validation indices of --heldout")
    ap.add_argument("--max-heldout", type=int, help="use at most this many held-out boxes (the first ones)")
    ap.add_argument("--skip-heldout", type=int, default=0, metavar="K",
                    help="skip the first K held-out boxes (e.g. the training's val_boxes, which picked the "
                         "early-stopping checkpoint)")
    ap.add_argument("--calibrate", type=int, metavar="N",
                    help="fit the likelihood temperature on N held-out boxes after the --max-heldout test boxes "
                         "(disjoint from them) and store it in model.json (with --write-card)")
    ap.add_argument("--fresh", help="fresh simulations (>= 16 per cosmology) for the residuals")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--sampler", choices=SAMPLERS, help="sampler (default: the model's)")
    ap.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    ap.add_argument("--final", choices=FINALS, help="the sampler's last step (default: the model's)")
    ap.add_argument("--spacing", choices=SPACINGS, help="the sampler's step grid (default: the model's)")
    ap.add_argument("--information", action="store_true",
                    help="with --heldout: also where the likelihood's theta-dependence comes from (network vs "
                         "standardisation) and a Gaussian baseline (one more profile per box and parameter)")
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--n-noise", type=int, default=DEFAULT_NOISE)
    ap.add_argument("-o", "--output", help="write the card JSON here (default: print it)")
    ap.add_argument("--write-card", action="store_true", help="store it as card.json in the model directory")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    card: dict[str, Any] = {"model": str(model.path), "n_halos": model.n_halos, "box_size": model.box_size,
                            "redshift": model.redshift, "prior": model.prior.to_dict(),
                            "data": model.meta.get("data", {}), "training": model.meta.get("training", {}),
                            "device": model.device}
    t0 = time.perf_counter()
    if args.skip_heldout < 0:
        raise SystemExit("--skip-heldout must be >= 0")
    if args.heldout:
        idx = model.meta["data"]["val_indices"] if args.heldout_indices == "val" else None
        idx = list(idx if idx is not None else range(hdf5.count(args.heldout)))
        # never score coverage on the boxes a stored temperature was fitted on (unless it is refitted here)
        stored = model.meta.get("calibration", {})
        # and not on those of a profile tempering, nor of the grids whose T_net it takes
        used = () if args.calibrate else [*stored.get("indices", []),
                                          *(stored.get("profile_calibration") or {}).get("indices", []),
                                          *(network_temperature_indices(stored)
                                            if stored.get("profile_tempering") else [])]
        test_idx, cal_idx = heldout_split(idx, args.skip_heldout, args.max_heldout, args.calibrate or 0, used)
        if args.calibrate:
            if len(cal_idx) < args.calibrate:
                raise SystemExit(f"--calibrate {args.calibrate}: only {len(cal_idx)} held-out boxes left after the "
                                 f"{len(test_idx)} test boxes")
            cal = calibration(model, hdf5.read(args.heldout, cal_idx), args.points, args.n_noise, seed=1)
            cal.update(heldout_file=str(args.heldout), indices=cal_idx)
            model.temperature = cal["temperature"]
            model.profile_temperatures = {}  # the fit here is pooled: stored profile / grid temperatures are replaced
            model.profile_temperings = {}
            model.grid_temperature = None
            model.network_temperature = None
            card["calibration"] = cal
            if args.write_card and model.path is not None:
                write_calibration(model.path, cal)
        card["coverage"] = coverage(model, hdf5.read(args.heldout, test_idx), args.points, args.n_noise,
                                    information=args.information)
        card["coverage"]["heldout_file"] = str(args.heldout)
        card["coverage"]["indices"] = test_idx
    if args.fresh:
        card["residuals"] = sample_vs_simulation(model, hdf5.read(args.fresh), args.samples,
                                                 method=args.sampler, steps=args.steps, final=args.final,
                                                 spacing=args.spacing)
        card["residuals"]["sampler"] = {"method": args.sampler or model.sampler,
                                        "steps": args.steps or model.default_steps,
                                        "final": args.final or model.sampler_final,
                                        "spacing": args.spacing or model.sampler_spacing}
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
