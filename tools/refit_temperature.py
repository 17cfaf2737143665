"""Refit a model's likelihood temperature on the per-box truth deficits of coverage runs already made.

    python tools/refit_temperature.py --model resources/models/default \
        --coverage resources/models/default/card.json benchmarks/results/bench_heldout_coverage_first50.json \
                   benchmarks/results/bench_heldout_coverage_rest.json [--write]

Each file is a model card (its ``coverage``, and its ``calibration`` when that kept per-box deficits), a
``bench_heldout_coverage.py`` result (the entry of ``--model``) or a ``bench_profiles_1d.py`` result; their per-box
deficits (truth's log L below the profile maximum, raw, nats) are pooled over boxes and both parameters, and the
temperature is the same statistic as ``validation --calibrate``
(:func:`lssviewer.model.likelihood.calibrate_temperature`). Because those boxes then serve to fit, the coverage
of the refitted procedure is estimated by 2-fold cross-validation (random halves of the boxes, 2,000 splits):
printed, and stored with the calibration. ``--write`` stores it in the model's model.json. Each parameter's own
temperature (fitted on that parameter's deficits alone) and its cross-validated coverage are reported beside it
(``per_parameter``); with ``--per-parameter`` they are also stored as ``profile_temperatures``, which 1-D
profiles then use (``lssviewer scan --param omega_m|sigma_8``, the likelihood panel's profiles; 2-D grids use the
grid temperature, below, or else the pooled one).

    python tools/refit_temperature.py --model resources/models/default \
        --grid benchmarks/results/bench_coverage_2d.json [--write]

fits the temperature of 2-D grids instead (``calibration.grid_temperature``): the larger of the 68th percentile
of the truth's 2-D deficits (max log L - log L(truth) on each box's zoomed grid, :func:`truth_deficit_2d`) over
1.15, which calibrates the contours, and of its profile deficits (:func:`truth_profile_deficits_2d`, both
parameters pooled) over 0.5, which calibrates the grid's 1-D intervals on average over the two parameters (not
each: on the built-in model Omega_m's then cover 65 %, sigma_8's 70 %); with the 2-fold cross-validated coverage
of both, 68 % and 95 %; ``--write`` adds it to the model's calibration, keeping the
pooled and profile temperatures (a pooled refit keeps a stored grid temperature too: different boxes), and to
its card.json with the benchmark's analysis (``coverage_2d``).

    python tools/refit_temperature.py --model resources/models/default --network \
        --grid benchmarks/results/bench_coverage_2d_network.json \
        [--profiles benchmarks/results/profiles_1d_v08.json] [--write]

tempers the network's term apart from the box statistics' Gaussian instead: 2-D grids then use
log L_T = [box + (log L - box) / T_net] / T (:class:`lssviewer.model.likelihood.Tempering`;
``calibration.network_temperature`` and the ``grid_temperature`` fitted with it), from grids that carry the box
term per point (``bench_coverage_2d.py --network-temperature``). For each T_net of 1-100 (8 % apart) T is fitted as
above (the larger of the contours' and the profile intervals' T), and the T_net whose calibrated 68 % contours are
smallest (median area over the boxes) is kept: of the calibrated likelihoods of this family, the sharpest. T_net = 1
is the plain grid temperature, so the choice can only shrink the contours; the 2-fold cross-validation refits both
numbers on each half. Also reported: the MAP errors and median 68 % widths. ``--profiles`` (a
``bench_profiles_1d.py`` result on other boxes of the same suite)
adds the 1-D profiles' coverage under that tempering. ``--write`` stores both in model.json and the card (a plain
``--grid`` refit drops the network temperature again), keeping the pooled and profile temperatures.
``--network-temperature T_NET`` keeps T_net fixed and fits T alone: the choice of T_net is noisy (on the built-in
model's 140 grids half-sample fits ranged over 4-14) while the contours' area is flat in it, and the 1-D profiles
temper the network's term by the same T_net. ``--grid`` takes several results (scanned alike, no box shared) and
pools their boxes.

    python tools/refit_temperature.py --model resources/models/default --network \
        --profiles benchmarks/results/profiles_1d_v08.json \
        [--test benchmarks/results/profiles_1d_v08_heldout.json] [--network-temperature T_NET] [--write]

fits the tempering of 1-D profiles (``calibration.profile_tempering``, {param: {temperature,
network_temperature}}): the network's term is tempered by the grids' T_net (the model's ``network_temperature``,
fitted on other boxes, or ``--network-temperature``) and each parameter gets the T that calibrates its 68 %
intervals on these profiles (other parameter at its truth), with its 2-fold cross-validated coverage and median
width beside those of the plain per-parameter temperature fitted on the same halves, and a table of T and width
against T_net. Why the grids' T_net and not one chosen on the profiles: the widths are flat in T_net beyond ~3 on
the built-in model, and choosing the sharpest T_net on each half lost 2-4 points of out-of-sample coverage.
``--test`` (``bench_profiles_1d.py --heldout``: boxes no fit used) scores the fitted pairs, the stored profile
temperatures and raw log L on it. ``--write`` stores the pairs (and ``profile_calibration``) in model.json and the
card; 1-D profiles then use them (:meth:`lssviewer.model.DiffusionModel.profile_tempering`). A pooled refit keeps
them; a ``--per-parameter`` one replaces them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import chi2

from lssviewer.errors import ParameterError
from lssviewer.model.checkpoint import network_temperature_indices, write_calibration, write_card
from lssviewer.model.likelihood import (
    DEFAULT_NOISE,
    MIN_DEFICITS,
    NETWORK_TEMPERATURES,
    Tempering,
    _delta,
    calibrate_temperature,
    fine_grid_2d,
    fine_profile_terms,
    network_tempered_deficits_1d,
    network_tempered_deficits_2d,
    summarize_grid_2d,
    summarize_profile,
    truth_deficit,
    truth_deficit_2d,
    truth_profile_deficits_2d,
)
from lssviewer.model.validation import PARAMS


def per_box(path: str, model: str) -> list[tuple[dict[str, list[float]], list[int], dict]]:
    """[(deficits per parameter, suite indices, settings)] of the coverage runs in ``path``: a model card, a
    ``bench_heldout_coverage.py`` result or a ``bench_profiles_1d.py`` result (deficits from its raw profiles)."""
    data = json.loads(Path(path).read_text())
    if "coverage" in data:  # a model card: its coverage boxes, and its calibration boxes when kept per box
        runs = [(data["coverage"], data["coverage"]["indices"])]
        # the card's own fit keeps its boxes; once a refit replaced it, the first fit is kept beside it
        cal = next((c for c in (data.get("calibration"), data.get("calibration_first_fit"))
                    if c and "per_box" in c), None)
        if cal is not None:
            runs.append((cal, cal["indices"]))
    elif "models" not in data and isinstance(data.get("boxes"), dict):  # bench_profiles_1d.py
        prof = _results(path, model)
        _check_profiles(path, prof, network=False)
        if prof.get("selection") == "fresh simulations no model saw (--fresh)":  # bench_profiles_1d.py --fresh
            raise SystemExit(f"{path}: profiles of fresh simulations (a test set): their indices name no suite box")
        idx = [int(k) for k in prof["boxes"]]
        deficits = {p: [round(truth_deficit(b[p]["grid"], b[p]["log_likelihood"], b["truth"][i]), 3)
                        for b in prof["boxes"].values()] for i, p in enumerate(PARAMS)}
        return [(deficits, idx, {"points": prof["points"], "n_noise": prof["n_noise"]})]
    else:  # bench_heldout_coverage.py
        key = next((k for k in data["models"] if Path(k).resolve() == Path(model).resolve()), None)
        if key is None:
            raise SystemExit(f"{path}: no results for {model}")
        runs = [(data["models"][key], data["indices"])]
    return [({p: cov["per_box"][f"deficit_nats_{p}"] for p in PARAMS}, list(idx),
             {"points": cov["points"], "n_noise": cov["n_noise"]}) for cov, idx in runs]


def _results(path: str, model: str) -> dict:
    """A benchmark's JSON result, checked to be of ``model``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict) or "model" not in data or not isinstance(data.get("boxes"), dict):
        raise SystemExit(f"{path}: not a benchmark result (needs model and boxes)")
    if Path(data["model"]).resolve() != Path(model).resolve():
        raise SystemExit(f"{path}: results of {data['model']}, not {model}")
    return data


#: Settings the grids of several bench_coverage_2d.py results must share to be fitted together.
GRID_SETTINGS = ("suite", "points", "coarse", "window_network_temperature", "window_temperature", "n_noise")


def _grid_results(paths: Sequence[str], model: str) -> dict:
    """The boxes of one or more bench_coverage_2d.py results for ``model`` as one result (``source``: the path,
    or the paths joined by ", "); the files must share their scan settings (:data:`GRID_SETTINGS`) and no box."""
    first = _results(paths[0], model)
    boxes = dict(first["boxes"])
    for path in paths[1:]:
        data = _results(path, model)
        differ = [k for k in GRID_SETTINGS if data.get(k) != first.get(k)]
        if differ:
            raise SystemExit(f"{path}: scanned with other settings than {paths[0]} ({', '.join(differ)})")
        shared = set(boxes) & set(data["boxes"])
        if shared:
            raise SystemExit(f"{path}: shares {len(shared)} boxes with the files before it")
        boxes.update(data["boxes"])
    return {**first, "boxes": boxes, "source": ", ".join(paths)}


GRID_KEYS = ("grid_temperature", "grid_calibration", "network_temperature")
#: The 1-D profiles' tempering (``--network --profiles``): kept by a pooled refit, replaced by ``--per-parameter``.
PROFILE_KEYS = ("profile_tempering", "profile_calibration")


def _cv_coverage(c68: list, c95: list, prof68: list, prof95: list) -> dict:
    """Mean cross-validated coverage over the test halves: 2-D contours (68 / 95 %) and the grid's 1-D intervals
    per parameter (68 / 95 %)."""
    return {"coverage68": round(float(np.mean(c68)), 3), "coverage95": round(float(np.mean(c95)), 3),
            **{f"profile_coverage{q}": {p: round(float(np.mean([c[i] for c in prof])), 3) for i, p in enumerate(PARAMS)}
               for q, prof in ((68, prof68), (95, prof95))}}


def grid_fit(paths: Sequence[str], model: str, splits: int) -> dict:
    """calibration.grid_temperature and its provenance from bench_coverage_2d.py results for ``model``."""
    data = _grid_results(paths, model)
    path = data["source"]
    boxes = data["boxes"]
    grids = [(b["omega_m"], b["sigma_8"], np.asarray(b["log_likelihood"]), b["truth"]) for b in boxes.values()]
    d = np.array([truth_deficit_2d(*g) for g in grids])
    dp = np.array([truth_profile_deficits_2d(*g) for g in grids])  # (n, 2)
    n = len(d)

    def fit(i: np.ndarray) -> tuple[float, float, float]:
        """(T, T of the contours, T of the profile intervals pooled over both parameters): the larger."""
        try:
            tc, tp = calibrate_temperature(d[i], dof=2), calibrate_temperature(dp[i].ravel(), dof=1)
        except ParameterError as exc:
            raise SystemExit(f"{path}: cannot fit a grid temperature on {len(i)} boxes ({exc})") from None
        return max(tc, tp), tc, tp

    t, tc, tp = fit(np.arange(n))
    d68, d95, p68 = _delta(0.6827, 2), _delta(0.95, 2), _delta(0.6827, 1)
    rng = np.random.default_rng(0)
    c68, c95, prof68, prof95, fits = [], [], [], [], []
    for _ in range(splits):
        perm = rng.permutation(n)
        for a, b in ((perm[: n // 2], perm[n // 2:]), (perm[n // 2:], perm[: n // 2])):
            tf = fit(a)[0]
            fits.append(tf)
            c68.append(np.mean(d[b] <= d68 * tf))
            c95.append(np.mean(d[b] <= d95 * tf))
            prof68.append(np.mean(dp[b] <= p68 * tf, axis=0))
            prof95.append(np.mean(dp[b] <= _delta(0.95, 1) * tf, axis=0))
    return {"grid_temperature": float(f"{t:.4g}"), "grid_calibration": {
        "method": "max of the 68th percentile of the truth's 2-D deficits / 1.15 (contours) and of its profile "
                  "deficits / 0.5 (the grid's 1-D intervals) on zoomed grids (tools/refit_temperature.py --grid)",
        "contour_temperature": round(tc, 4), "profile_temperature": round(tp, 4),
        "source": path, "n_boxes": n, "points": data["points"], "coarse": data["coarse"], "suite": data.get("suite"),
        "indices": [int(k) for k in boxes], "truth_outside_grid": int(np.sum(~np.isfinite(d))),
        "raw_coverage68": round(float(np.mean(d <= d68)), 3), "raw_coverage95": round(float(np.mean(d <= d95)), 3),
        "raw_profile_coverage68": {p: round(float(np.mean(dp[:, i] <= p68)), 3) for i, p in enumerate(PARAMS)},
        "cross_validation": {"splits": splits, "half_sample_temperature_mean": round(float(np.mean(fits)), 3),
                             "half_sample_temperature_sd": round(float(np.std(fits)), 3),
                             **_cv_coverage(c68, c95, prof68, prof95)}}}


#: Temperatures at which :func:`_contour_areas` tabulates each box's 68 % contour area (2 % apart).
AREA_TEMPERATURES = np.geomspace(0.2, 50.0, 280)


def _contour_areas(b: dict, t_values: np.ndarray) -> np.ndarray:
    """(K, len(AREA_TEMPERATURES)): the area (Omega_m x sigma_8) of the 68 % contour of [box + network / T_net] / T
    on the box's interpolated grid, for each of the K ``t_values`` (T_net) and each T of AREA_TEMPERATURES."""
    om, s8 = b["omega_m"], b["sigma_8"]
    box = np.asarray(b["box_log_likelihood"], dtype=np.float64)
    fo, fs, fine_box = fine_grid_2d(om, s8, box)
    fine_net = fine_grid_2d(om, s8, np.asarray(b["log_likelihood"], dtype=np.float64) - box)[2]
    cell = (fo[1] - fo[0]) * (fs[1] - fs[0])
    out = np.empty((len(t_values), len(AREA_TEMPERATURES)))
    for k, t_net in enumerate(t_values):
        f = fine_box + fine_net / t_net
        below = np.sort((f.max() - f).ravel())
        out[k] = np.searchsorted(below, _delta(0.6827, 2) * AREA_TEMPERATURES, side="right") * cell
    return out


def network_fit(paths: Sequence[str], model: str, splits: int, profiles: str | None = None,
                network_temperature: float | None = None) -> dict:
    """calibration.network_temperature and the grid temperature used with it, and their provenance, from
    bench_coverage_2d.py results with the box statistics' term per grid point (``box_log_likelihood``); with
    ``profiles`` (a bench_profiles_1d.py result on other boxes) also the 1-D profiles' coverage under that
    tempering of the network's term. ``network_temperature``: use this T_net (fit only T) instead of choosing it
    by the contours' area."""
    data = _grid_results(paths, model)
    path = data["source"]
    boxes = data["boxes"]
    if not all("box_log_likelihood" in b for b in boxes.values()):
        raise SystemExit(f"{path}: the grids lack the box statistics' term (box_log_likelihood): rerun "
                         "benchmarks/bench_coverage_2d.py --network-temperature T")
    if profiles:
        prof = json.loads(Path(profiles).read_text())
        if prof.get("suite") != data.get("suite"):
            raise SystemExit(f"{profiles}: boxes of {prof.get('suite')}, the grids' are of {data.get('suite')}")
        if set(prof["boxes"]) & set(boxes):
            raise SystemExit(f"{profiles}: shares boxes with the grids the network temperature is fitted on")
    # with a given T_net, the untempered network (T_net = 1) is still tabulated for the area comparison
    t_values = np.asarray(NETWORK_TEMPERATURES if network_temperature is None else [1.0, network_temperature])
    allowed = np.arange(len(t_values)) if network_temperature is None else np.array([1])
    k_n, n = len(t_values), len(boxes)
    d2, dp = np.empty((k_n, n)), np.empty((k_n, n, 2))
    areas = np.empty((n, k_n, len(AREA_TEMPERATURES)))
    for j, b in enumerate(boxes.values()):
        d2[:, j], dp[:, j] = network_tempered_deficits_2d(b["omega_m"], b["sigma_8"], b["log_likelihood"],
                                                          b["box_log_likelihood"], b["truth"], t_values)
        areas[j] = _contour_areas(b, t_values)
    log_at = np.log(AREA_TEMPERATURES)

    def fit(i: np.ndarray) -> tuple[int, float, float, float, np.ndarray]:
        """(index of T_net, T, T of the contours, T of the profile intervals, median 68 % contour area per T_net):
        for each T_net the T that calibrates the contours and the profile intervals (the larger), then the T_net
        whose calibrated contours are smallest (median over the boxes ``i``)."""
        try:
            tc = np.array([calibrate_temperature(d2[k, i], dof=2) for k in range(k_n)])
            tp = np.array([calibrate_temperature(dp[k, i].ravel(), dof=1) for k in range(k_n)])
        except ParameterError as exc:
            raise SystemExit(f"{path}: cannot fit a network temperature on {len(i)} boxes ({exc})") from None
        t = np.maximum(tc, tp)
        if np.any((t < AREA_TEMPERATURES[0]) | (t > AREA_TEMPERATURES[-1])):  # the area table would clamp
            raise SystemExit(f"{path}: a fitted temperature ({t.min():.3g}-{t.max():.3g}) lies outside the contour "
                             f"area table ({AREA_TEMPERATURES[0]:g}-{AREA_TEMPERATURES[-1]:g})")
        med = np.array([np.median([np.interp(np.log(t[k]), log_at, areas[j, k]) for j in i]) for k in range(k_n)])
        k = int(allowed[np.argmin(med[allowed])])
        return k, float(t[k]), float(tc[k]), float(tp[k]), med

    k, t, tc, tp, med_area = fit(np.arange(n))
    d68, d95, p68, p95 = _delta(0.6827, 2), _delta(0.95, 2), _delta(0.6827, 1), _delta(0.95, 1)
    rng = np.random.default_rng(0)
    c68, c95, prof68, prof95, fits = [], [], [], [], []
    for _ in range(splits):
        perm = rng.permutation(n)
        for a, b in ((perm[: n // 2], perm[n // 2:]), (perm[n // 2:], perm[: n // 2])):
            kf, tf = fit(a)[:2]
            fits.append((t_values[kf], tf))
            c68.append(np.mean(d2[kf, b] <= d68 * tf))
            c95.append(np.mean(d2[kf, b] <= d95 * tf))
            prof68.append(np.mean(dp[kf, b] <= p68 * tf, axis=0))
            prof95.append(np.mean(dp[kf, b] <= p95 * tf, axis=0))
    t_net = float(t_values[k])
    tempering = Tempering(temperature=t, network=t_net)

    def map_and_widths(tp: Tempering) -> tuple[dict, dict]:
        """Median |MAP - truth| and median 68 % profile-interval widths of the grids under ``tp``."""
        summ = [summarize_grid_2d(b["omega_m"], b["sigma_8"], b["log_likelihood"], temperature=tp,
                                  box_log_likelihood=b["box_log_likelihood"]) for b in boxes.values()]
        e = np.array([np.subtract(s["map"], b["truth"]) for s, b in zip(summ, boxes.values(), strict=True)])
        w = np.array([[s[p]["interval68"][1] - s[p]["interval68"][0] for p in PARAMS] for s in summ])
        return ({p: round(float(np.median(np.abs(e[:, i]))), 4) for i, p in enumerate(PARAMS)},
                {p: round(float(np.median(w[:, i])), 4) for i, p in enumerate(PARAMS)})

    errs, widths = map_and_widths(tempering)
    # the best calibration of the whole log L (T_net = 1, the plain grid temperature) on the same grids
    t_plain = max(calibrate_temperature(d2[0], dof=2), calibrate_temperature(dp[0].ravel(), dof=1))
    plain_errs, plain_widths = map_and_widths(Tempering(temperature=t_plain))
    k1 = 0
    fits = np.asarray(fits)
    out = {"network_temperature": float(f"{t_net:.4g}"), "grid_temperature": float(f"{t:.4g}"), "grid_calibration": {
        "method": ("2-D grids use [box + network / T_net] / T (the box statistics' Gaussian and the network's term "
                   "of log L): for each T_net of 1-100 (8 % apart) the T that puts 68 % of the truths inside the 68 % "
                   "contours and inside the grid's 1-D 68 % intervals (the larger of the two fits, both parameters "
                   "pooled), then the T_net whose calibrated 68 % contours are smallest (median area) "
                   "(tools/refit_temperature.py --grid --network)") if network_temperature is None else (
                   f"2-D grids use [box + network / T_net] / T with T_net = {network_temperature:g} given: the T that "
                   "puts 68 % of the truths inside the 68 % contours and inside the grid's 1-D 68 % intervals (the "
                   "larger of the two fits, both parameters pooled) (tools/refit_temperature.py --grid --network "
                   "--network-temperature)"),
        "contour_temperature": round(tc, 4), "profile_temperature": round(tp, 4),
        "source": path, "n_boxes": n, "points": data["points"], "coarse": data["coarse"],
        "n_noise": int(data.get("n_noise", DEFAULT_NOISE)),
        "window_network_temperature": data.get("window_network_temperature"), "suite": data.get("suite"),
        "indices": [int(i) for i in boxes], "truth_outside_grid": int(np.sum(~np.isfinite(d2[0]))),
        "median_area68": {"chosen": float(f"{med_area[k]:.4g}"),
                          "network_untempered": float(f"{med_area[k1]:.4g}")},
        "coverage68": round(float(np.mean(d2[k] <= d68 * t)), 3),
        "coverage95": round(float(np.mean(d2[k] <= d95 * t)), 3),
        "map_abs_error_median": errs, "median_width68": widths,
        "whole_log_likelihood": {"temperature": round(t_plain, 4), "map_abs_error_median": plain_errs,
                                 "median_width68": plain_widths},
        "cross_validation": {"splits": splits,
                             "half_sample_network_temperature_quartiles": [
                                 round(float(q), 3) for q in np.quantile(fits[:, 0], [0.25, 0.5, 0.75])],
                             "half_sample_temperature_quartiles": [
                                 round(float(q), 3) for q in np.quantile(fits[:, 1], [0.25, 0.5, 0.75])],
                             **_cv_coverage(c68, c95, prof68, prof95)}}}
    window = data.get("window_network_temperature")
    if window is None or t_net > window:
        print(f"warning: the grids' windows were sized for {'T_net ' + str(window) if window else 'another tempering'}"
              f", below the fitted {t_net:.3g}: some contours may be cut by them (rerun bench_coverage_2d.py with "
              "--network-temperature of at least that)", file=sys.stderr)
    if profiles:
        out["grid_calibration"]["profiles_1d"] = profile_check(profiles, model, tempering)
    return out


def _interval_widths(x: Sequence[float], ll: Sequence[float], box: Sequence[float], t_values: np.ndarray
                     ) -> np.ndarray:
    """(K, len(AREA_TEMPERATURES)): the width of the 68 % interval of the profile tempered as [box + network /
    T_net] / T, for each of the K ``t_values`` (T_net) and each T of AREA_TEMPERATURES: the connected set about the
    MAP with its ends interpolated between fine-grid points, as :func:`summarize_profile` makes it."""
    fine, fine_box, fine_net = fine_profile_terms(x, ll, box)[:3]  # summarize_profile's interpolant and grid
    out = np.empty((len(t_values), len(AREA_TEMPERATURES)))
    for k, t_net in enumerate(t_values):
        # at temperature T the interval is where (max - y) <= T delta, y = box + network / T_net: one deficit curve
        below = fine_box + fine_net / t_net
        top = int(np.argmax(below))
        below = below[top] - below
        thresholds = _delta(0.6827, 1) * AREA_TEMPERATURES
        ends = []
        for side in (below[top::-1], below[top:]):  # walking out from the MAP, to the left and to the right
            reach = np.maximum.accumulate(side)
            n = np.searchsorted(reach, thresholds, side="right") - 1  # last fine step inside the interval
            inner = side[n]
            outer = side[np.minimum(n + 1, len(side) - 1)]
            step = np.where(n + 1 < len(side), np.clip((thresholds - inner) / np.maximum(outer - inner, 1e-300), 0, 1),
                            0.0)  # an end at the grid's edge is the edge
            ends.append(n + step)
        out[k] = (ends[0] + ends[1]) * (fine[1] - fine[0])
    return out


def _check_profiles(path: str, data: dict, network: bool) -> None:
    """SystemExit unless every box of a bench_profiles_1d.py result has finite profiles of both parameters with
    the truth inside (and, with ``network``, the box statistics' term)."""
    for key, b in data["boxes"].items():
        try:
            for i, p in enumerate(PARAMS):
                x, ll = np.asarray(b[p]["grid"], dtype=float), np.asarray(b[p]["log_likelihood"], dtype=float)
                box = b[p].get("box_log_likelihood")
                if network and box is None:
                    raise SystemExit(f"{path}: profiles without the box statistics' term (not a box-standardised "
                                     "model)")
                arrays = (x, ll) if box is None else (x, ll, np.asarray(box, dtype=float))
                if any(a.shape != x.shape or not np.all(np.isfinite(a)) for a in arrays) or len(x) < 3:
                    raise ValueError(f"{p}: a profile must be >= 3 finite values per field, all of one length")
                if not x.min() <= float(b["truth"][i]) <= x.max():
                    raise ValueError(f"{p}: truth {b['truth'][i]} outside the profile's range")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SystemExit(f"{path}: box {key}: {exc}") from None


def _profile_network_one(p: str, prof: list[tuple], t_net: float, splits: int) -> tuple[dict, dict]:
    """({temperature, network_temperature}, its fit's record) of parameter ``p`` from its profiles ``prof``
    [(grid, log L, box term, truth)] with the network's term tempered by ``t_net`` (see
    :func:`profiles_network_fit`)."""
    scan_t = np.asarray(NETWORK_TEMPERATURES[::6])  # the in-sample table of widths against T_net: 1-100, 58 % apart
    t_values = np.concatenate([[1.0, t_net], scan_t])
    log_at = np.log(AREA_TEMPERATURES)
    d68, d95 = _delta(0.6827, 1), _delta(0.95, 1)
    n = len(prof)
    d = np.array([network_tempered_deficits_1d(x, ll, box, truth, t_values) for x, ll, box, truth in prof]).T
    widths = np.array([_interval_widths(x, ll, box, t_values) for x, ll, box, _ in prof])  # (n, K, A)
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(widths))):
        raise SystemExit(f"{p}: non-finite deficits or widths")

    def median_width(j: np.ndarray, k: int, t: float) -> float:
        """The median 68 % width of boxes ``j`` at T_net ``t_values[k]`` and temperature ``t``."""
        if not AREA_TEMPERATURES[0] <= t <= AREA_TEMPERATURES[-1]:
            raise SystemExit(f"{p}: a fitted temperature {t:.3g} lies outside the width table "
                             f"({AREA_TEMPERATURES[0]:g}-{AREA_TEMPERATURES[-1]:g})")
        return float(np.median([np.interp(np.log(t), log_at, widths[jj, k]) for jj in j]))

    rng = np.random.default_rng(0)
    cv: dict[int, dict[str, list]] = {k: {"coverage68": [], "coverage95": [], "median_width68": [], "fits": []}
                                      for k in (0, 1)}
    for _ in range(splits):
        perm = rng.permutation(n)
        for a, b in ((perm[: n // 2], perm[n // 2:]), (perm[n // 2:], perm[: n // 2])):
            for k in (0, 1):  # 0: the plain per-parameter temperature, 1: with the network's term tempered
                tf = calibrate_temperature(d[k, a])
                cv[k]["fits"].append(tf)
                cv[k]["coverage68"].append(np.mean(d[k, b] <= d68 * tf))
                cv[k]["coverage95"].append(np.mean(d[k, b] <= d95 * tf))
                cv[k]["median_width68"].append(median_width(b, k, tf))

    def record(k: int) -> dict:
        """T at T_net ``t_values[k]``, its in-sample MAP error and width (as summarize_profile makes them) and its
        cross-validated figures."""
        t = calibrate_temperature(d[k])
        summ = [summarize_profile(x, ll, temperature=Tempering(t, float(t_values[k])), box_log_likelihood=box)
                for x, ll, box, _ in prof]
        return {"temperature": round(t, 4),
                "map_abs_error_median": round(float(np.median([abs(s["map"] - q[3]) for s, q in
                                                               zip(summ, prof, strict=True)])), 4),
                "median_width68": round(float(np.median([s["interval68"][1] - s["interval68"][0] for s in summ])), 4),
                "cross_validation": {"splits": splits,
                                     "half_sample_temperature_quartiles": [
                                         round(float(q), 3) for q in np.quantile(cv[k]["fits"], [0.25, 0.5, 0.75])],
                                     **{key: round(float(np.mean(v)), 4 if key == "median_width68" else 3)
                                        for key, v in cv[k].items() if key != "fits"}}}

    fitted = record(1)
    table = []
    for k in range(2, len(t_values)):  # informational: a T outside the width table gets no width
        t = calibrate_temperature(d[k])
        inside = AREA_TEMPERATURES[0] <= t <= AREA_TEMPERATURES[-1]
        table.append([float(f"{t_values[k]:.3g}"), round(t, 4),
                      round(median_width(np.arange(n), k, t), 4) if inside else None])
    return {"temperature": float(f"{fitted['temperature']:.4g}"), "network_temperature": t_net}, {
        **fitted, "raw_coverage68": round(float(np.mean(d[0] <= d68)), 3),
        "per_parameter_temperature": record(0),
        "network_temperature_table": {"columns": ["network_temperature", "temperature", "median_width68"],
                                      "rows": table}}


def profiles_network_fit(path: str, model: str, splits: int, network_temperature: float | None = None) -> dict:
    """calibration.profile_tempering ({param: {temperature, network_temperature}}) and its provenance
    (``profile_calibration``) from a bench_profiles_1d.py result for ``model``: 1-D profiles temper the network's
    term by the 2-D grids' T_net (the model's ``network_temperature``, fitted on other boxes; or
    ``network_temperature``), and each parameter gets the T that puts 68 % of the truths inside its 68 % intervals
    (:func:`calibrate_temperature` on the deficits of box + network / T_net), cross-validated (2-fold) beside the
    plain per-parameter temperature (T_net = 1) on the same halves. A table of T and the median width against
    T_net (in sample) shows how much a T_net of the profiles' own would change."""
    data = _results(path, model)
    cal = json.loads((Path(model) / "model.json").read_text()).get("calibration", {})
    t_net = network_temperature if network_temperature is not None else cal.get("network_temperature")
    if t_net is None:
        raise SystemExit(f"{model}: no network_temperature to temper the profiles' network term with: fit the grids' "
                         "first (--grid --network) or give --network-temperature")
    grids = cal.get("grid_calibration") or {}
    if network_temperature is None and set(map(int, data["boxes"])) & set(network_temperature_indices(cal)):
        raise SystemExit(f"{path}: shares boxes with the grids the network temperature was fitted on")
    _check_profiles(path, data, network=True)
    boxes = list(data["boxes"].values())
    n = len(boxes)
    if n < 2 * MIN_DEFICITS:
        raise SystemExit(f"{path}: {n} boxes; the cross-validation needs >= {2 * MIN_DEFICITS}")
    out: dict = {"profile_tempering": {}, "profile_calibration": {
        "method": "1-D profiles use [box + network / T_net] / T with a given T_net and, per parameter, the T that "
                  "puts 68 % of the truths inside the 68 % intervals (tools/refit_temperature.py --network "
                  "--profiles)",
        "network_temperature_source": ("--network-temperature" if network_temperature is not None else
                                       f"the 2-D grids' (calibration.network_temperature, {grids.get('source')}"
                                       + (", which took it as given from an earlier fit on "
                                          f"{len(network_temperature_indices(cal))} of their boxes)"
                                          if "network_temperature_indices" in grids else ")")),
        "source": path, "n_boxes": n, "points": data["points"], "n_noise": int(data.get("n_noise", DEFAULT_NOISE)),
        "seed": data.get("seed"), "indices": [int(i) for i in data["boxes"]]}}
    for i, p in enumerate(PARAMS):
        prof = [(b[p]["grid"], b[p]["log_likelihood"], b[p]["box_log_likelihood"], b["truth"][i]) for b in boxes]
        out["profile_tempering"][p], out["profile_calibration"][p] = _profile_network_one(p, prof, float(t_net),
                                                                                         splits)
    return out


def profile_test(path: str, model: str, temperings: dict[str, dict[str, Tempering]]) -> dict:
    """Coverage, median 68 % width and median |MAP - truth| of the 1-D profiles of a bench_profiles_1d.py result
    (boxes no fit used: ``bench_profiles_1d.py --heldout``) under each {variant: {param: Tempering}}."""
    data = _results(path, model)
    _check_profiles(path, data, network=any(tp[p].network_only for tp in temperings.values() for p in PARAMS))
    res: dict = {"source": path, "n_boxes": len(data["boxes"]), "points": data.get("points"),
                 "indices": [int(i) for i in data["boxes"]]}
    for i, p in enumerate(PARAMS):
        res[p] = {}
        for name, tp in temperings.items():
            hits68, hits95, widths, errors = [], [], [], []
            for b in data["boxes"].values():
                s = summarize_profile(b[p]["grid"], b[p]["log_likelihood"], temperature=tp[p],
                                      box_log_likelihood=b[p].get("box_log_likelihood"))
                truth = b["truth"][i]
                hits68.append(s["interval68"][0] <= truth <= s["interval68"][1])
                hits95.append(s["interval95"][0] <= truth <= s["interval95"][1])
                widths.append(s["interval68"][1] - s["interval68"][0])
                errors.append(abs(s["map"] - truth))
            res[p][name] = {"tempering": tp[p].describe(), "coverage68": round(float(np.mean(hits68)), 3),
                            "coverage95": round(float(np.mean(hits95)), 3),
                            "median_width68": round(float(np.median(widths)), 4),
                            "map_abs_error_median": round(float(np.median(errors)), 4)}
    return res


def profile_check(path: str, model: str, tempering: Tempering) -> dict:
    """Coverage of the 1-D profiles of a bench_profiles_1d.py result (boxes other than the grids') when log L is
    tempered as the grids are, ``tempering`` (out of sample: fitted on the grids), beside the raw coverage. The
    model's own 1-D calibration is reported as stored (its cross-validated coverage): bench_profiles_1d.py profiles
    the boxes that calibration was fitted on, so scoring it on them would be in-sample."""
    data = _results(path, model)
    own = json.loads((Path(model) / "model.json").read_text()).get("calibration", {})
    res: dict = {"source": path, "n_boxes": len(data["boxes"]), "points": data["points"]}
    for i, p in enumerate(PARAMS):
        raw, net, errs = [], [], []
        for b in data["boxes"].values():
            if b[p].get("box_log_likelihood") is None:
                raise SystemExit(f"{path}: profiles without the box statistics' term (not a box-standardised model)")
            x, ll, box = b[p]["grid"], np.asarray(b[p]["log_likelihood"]), np.asarray(b[p]["box_log_likelihood"])
            tl = tempering.apply(ll, box)
            raw.append(truth_deficit(x, ll, b["truth"][i]))
            net.append(truth_deficit(x, tl, b["truth"][i]))
            errs.append(summarize_profile(x, tl)["map"] - b["truth"][i])
        raw, net = np.asarray(raw), np.asarray(net)
        res[p] = {"network_coverage68": round(float(np.mean(net <= 0.5)), 3),
                  "network_coverage95": round(float(np.mean(net <= _delta(0.95, 1))), 3),
                  "network_map_abs_error_median": round(float(np.median(np.abs(errs))), 4),
                  "raw_coverage68": round(float(np.mean(raw <= 0.5)), 3),
                  "raw_coverage95": round(float(np.mean(raw <= _delta(0.95, 1))), 3),
                  "stored_calibration": ({"profile_tempering": own["profile_tempering"][p],
                                          "cross_validation": ((own.get("profile_calibration") or {}).get(p)
                                                               or {}).get("cross_validation")}
                                         if p in own.get("profile_tempering", {}) else {
                      "temperature": own.get("profile_temperatures", {}).get(p, own.get("temperature", 1.0)),
                      "cross_validation": (own.get("per_parameter", {}).get(p) or {}).get("cross_validation")})}
    return res


def _without_indices(record: dict) -> dict:
    """``record`` without its long box lists (for printing)."""
    return {k: v for k, v in record.items() if k not in ("indices", "network_temperature_indices")}


def _update_card(model: str, calibration: dict, drop: tuple[str, ...] = (), **sections: dict) -> None:
    """Merge ``calibration`` into the model card's calibration (less the keys ``drop``) and set ``sections``."""
    card_path = Path(model) / "card.json"
    if not card_path.is_file():
        return
    card = json.loads(card_path.read_text())
    card["calibration"] = {k: v for k, v in card.get("calibration", {}).items() if k not in drop} | calibration
    card.update(sections)
    write_card(model, card)
    print(f"and into {card_path} (calibration{''.join(', ' + k for k in sections)})")


def staging_calibration(previous: dict, source: str) -> dict:
    """The calibration a new model's weights start from: the boxes of ``previous``'s pooled fit to profile and refit
    on, no tempering (T = 1), ``previous``'s T_net (kept, not refitted) and the boxes it was chosen on, which later
    1-D tests must avoid. Raises SystemExit when ``previous`` has no pooled boxes."""
    if not previous.get("indices"):
        raise SystemExit(f"{source}: its calibration names no boxes (calibration.indices)")
    staged: dict = {"temperature": 1.0, "indices": [int(i) for i in previous["indices"]],
                    "method": f"staging: the boxes of {source}'s pooled calibration, to profile and refit on"}
    if previous.get("network_temperature") is not None:
        staged["network_temperature"] = float(previous["network_temperature"])
        staged["grid_calibration"] = {"network_temperature_indices": network_temperature_indices(previous)}
    return staged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--coverage", nargs="+", help="model cards / bench_heldout_coverage / bench_profiles_1d results")
    ap.add_argument("--grid", metavar="JSON", nargs="+",
                    help="bench_coverage_2d.py results (their boxes pooled): fit the 2-D grid temperature")
    ap.add_argument("--network", action="store_true",
                    help="with --grid: fit the temperature of the network's term alone (network_temperature); with "
                         "--profiles alone: fit the 1-D profiles' tempering (profile_tempering)")
    ap.add_argument("--profiles", metavar="JSON",
                    help="with --network: a bench_profiles_1d.py result; alone, fit the 1-D profiles' tempering on it "
                         "(profile_tempering); with --grid, report its 1-D coverage under the grids' tempering")
    ap.add_argument("--network-temperature", type=float, metavar="T_NET",
                    help="with --network --profiles: temper the network's term by this, not the model's grids' T_net; "
                         "with --grid --network: use this T_net and fit only T")
    ap.add_argument("--test", metavar="JSON",
                    help="with --network --profiles: a bench_profiles_1d.py --heldout result to test the fit on")
    ap.add_argument("--splits", type=int, default=2000)
    ap.add_argument("--write", action="store_true", help="store the calibration in the model's model.json")
    ap.add_argument("--per-parameter", action="store_true",
                    help="1-D profiles use each parameter's own temperature (stored as profile_temperatures)")
    ap.add_argument("--stage-from", metavar="DIR",
                    help="write into --model's model.json the staging calibration of a new model's weights: the boxes "
                         "of DIR's pooled calibration (to profile and refit on), T = 1, DIR's T_net and the boxes it "
                         "was chosen on (training/default/README.md, 'Model v0.9')")
    args = ap.parse_args(argv)
    if args.stage_from:
        if args.coverage or args.grid or args.network or args.profiles or args.test:
            raise SystemExit("--stage-from takes no fit options")
        staged = staging_calibration(json.loads((Path(args.stage_from) / "model.json").read_text())
                                     .get("calibration", {}), args.stage_from)
        meta = json.loads((Path(args.model) / "model.json").read_text())
        if "val_indices" in meta.get("data", {}):  # the boxes to profile must be held out from the new weights too
            val = [int(i) for i in meta["data"]["val_indices"]]
            early = int(meta.get("training", {}).get("config", {}).get("val_boxes", 16))  # early-stopping boxes
            not_held = sorted(set(staged["indices"]) - set(val[early:]))
            if not_held:
                raise SystemExit(f"{args.model}: {len(not_held)} of {args.stage_from}'s calibration boxes (e.g. "
                                 f"{not_held[0]}) were trained or early-stopped on by these weights")
        write_calibration(args.model, staged)
        print(f"wrote the staging calibration ({len(staged['indices'])} boxes, T_net "
              f"{staged.get('network_temperature')}) into {args.model}/model.json")
        return 0
    profile_fit = bool(args.network and args.profiles and not args.grid)
    if sum((args.coverage is not None, args.grid is not None, profile_fit)) != 1:
        raise SystemExit("give --coverage (pooled / profile temperatures), --grid (2-D grid temperature) or "
                         "--network --profiles (1-D profiles' tempering)")
    current = json.loads((Path(args.model) / "model.json").read_text()).get("calibration", {})
    if args.network and not (args.grid or args.profiles):
        raise SystemExit("--network needs --grid or --profiles")
    if args.profiles and not args.network:
        raise SystemExit("--profiles needs --network")
    if args.test and not profile_fit:
        raise SystemExit("--test needs --network --profiles (without --grid)")
    if args.network_temperature is not None and not args.network:
        raise SystemExit("--network-temperature needs --network (with --grid or --profiles)")
    if args.per_parameter and args.coverage is None:
        raise SystemExit("--per-parameter needs --coverage")
    if args.network_temperature is not None and not (np.isfinite(args.network_temperature)
                                                     and args.network_temperature > 0):
        raise SystemExit(f"--network-temperature must be a finite number > 0, got {args.network_temperature}")
    if args.splits < 1:
        raise SystemExit(f"--splits must be >= 1, got {args.splits}")
    if profile_fit:
        fit = profiles_network_fit(args.profiles, args.model, args.splits, args.network_temperature)
        if args.test:
            test_data = _results(args.test, args.model)
            test_boxes = set(map(int, test_data["boxes"]))
            grids = set(network_temperature_indices(current))
            fitted_suite = json.loads(Path(args.profiles).read_text()).get("suite")
            test_suite = test_data.get("suite")
            if test_suite and fitted_suite and Path(test_suite).resolve() != Path(fitted_suite).resolve():
                # the test boxes are another file's (fresh simulations): its indices name none of the suite's boxes
                test_boxes = set()
            if test_boxes & (set(fit["profile_calibration"]["indices"]) | set(current.get("indices", [])) | grids):
                raise SystemExit(f"{args.test}: shares boxes with the profiles fitted on, the model's calibration "
                                 "(calibration.indices) or the grids its T_net comes from: not a test set")
            own = current.get("profile_temperatures", {})
            plain = {p: Tempering(float(own.get(p, current.get("temperature", 1.0)))) for p in PARAMS}
            fitted = {p: Tempering(v["temperature"], v["network_temperature"])
                      for p, v in fit["profile_tempering"].items()}
            fit["profile_calibration"]["test"] = profile_test(args.test, args.model, {
                "network": fitted, "profile_temperatures": plain, "raw": {p: Tempering() for p in PARAMS}})
        print(json.dumps({**fit, "profile_calibration": _without_indices(fit["profile_calibration"])}, indent=1))
        if args.write:
            write_calibration(args.model, {**current, **fit})
            print(f"wrote profile_tempering {fit['profile_tempering']} into {args.model}/model.json")
            _update_card(args.model, fit)
        return 0
    if args.grid:
        grid = (network_fit(args.grid, args.model, args.splits, args.profiles, args.network_temperature)
                if args.network else
                grid_fit(args.grid, args.model, args.splits))
        if args.network_temperature is not None:
            # a given T_net: the boxes it was chosen on are those of the fit that chose it, if it is the stored one
            same = current.get("network_temperature") == args.network_temperature
            chosen_on = network_temperature_indices(current) if same else []
            grid["grid_calibration"]["network_temperature_indices"] = chosen_on
        print(json.dumps({**grid, "grid_calibration": _without_indices(grid["grid_calibration"])}, indent=1))
        if args.write:
            # a plain grid fit replaces a network tempering (its grid temperature was fitted together with it)
            kept = {k: v for k, v in current.items() if args.network or k != "network_temperature"}
            write_calibration(args.model, {**kept, **grid})
            what = ", ".join(f"{k} = {grid[k]}" for k in ("grid_temperature", "network_temperature") if k in grid)
            print(f"wrote {what} into {args.model}/model.json")
            stale = [p for p, v in current.get("profile_tempering", {}).items()
                     if v.get("network_temperature") != grid.get("network_temperature")]
            if stale:
                print(f"warning: the 1-D profile tempering ({', '.join(stale)}) keeps its earlier T_net: refit it "
                      "(--network --profiles FILE --write)", file=sys.stderr)
            # the card states what the app uses, and the 2-D measurement behind it
            analyses = [json.loads(Path(p).read_text()).get("analysis") for p in args.grid]
            coverage = [{"source": p, **({"analysis": a} if a else {})}
                        for p, a in zip(args.grid, analyses, strict=True)]
            _update_card(args.model, grid, drop=() if args.network else ("network_temperature",),
                         coverage_2d=coverage[0] if len(coverage) == 1 else {"sources": coverage})
        return 0
    deficits: dict[str, list[float]] = {p: [] for p in PARAMS}
    indices: list[int] = []
    settings = []
    for path in args.coverage:
        for d, idx, s in per_box(path, args.model):
            for p in PARAMS:
                deficits[p] += d[p]
            indices += idx
            settings.append(s)
    if len(set(indices)) != len(indices):
        raise SystemExit("the coverage files share boxes")
    if len({json.dumps(s, sort_keys=True) for s in settings}) != 1:
        raise SystemExit(f"the coverage files differ in points / noise draws: {settings}")
    dp = {p: np.asarray(v) for p, v in deficits.items()}
    n = len(indices)
    t = calibrate_temperature([d for p in PARAMS for d in deficits[p]])
    rng = np.random.default_rng(0)
    cv68 = {p: [] for p in PARAMS}
    cv95 = {p: [] for p in PARAMS}
    own68 = {p: [] for p in PARAMS}
    own95 = {p: [] for p in PARAMS}
    fits = []
    q95 = chi2.ppf(0.95, 1) / 2.0
    for _ in range(args.splits):
        perm = rng.permutation(n)
        fit, test = perm[: n // 2], perm[n // 2:]
        tf = calibrate_temperature(np.concatenate([dp[p][fit] for p in PARAMS]))
        fits.append(tf)
        for p in PARAMS:
            cv68[p].append(np.mean(dp[p][test] <= 0.5 * tf))
            cv95[p].append(np.mean(dp[p][test] <= q95 * tf))
            if len(fit) >= MIN_DEFICITS:  # each parameter's own fit needs that many boxes in a half
                tp = calibrate_temperature(dp[p][fit])
                own68[p].append(np.mean(dp[p][test] <= 0.5 * tp))
                own95[p].append(np.mean(dp[p][test] <= q95 * tp))
    cal = {"temperature": float(f"{t:.4g}"), "n_boxes": n, "n_profiles": 2 * n, **settings[0],
           "method": "pooled per-box deficits of coverage runs (tools/refit_temperature.py)",
           "sources": list(args.coverage), "indices": indices,
           "cross_validation": {"splits": args.splits, "half_sample_temperature_mean": round(float(np.mean(fits)), 3),
                                "half_sample_temperature_sd": round(float(np.std(fits)), 3),
                                **{p: {"coverage68": round(float(np.mean(cv68[p])), 3),
                                       "coverage95": round(float(np.mean(cv95[p])), 3)} for p in PARAMS}},
           "raw_coverage68": {p: round(float(np.mean(dp[p] <= 0.5)), 3) for p in PARAMS},
           "per_parameter": {p: {"temperature": float(f"{calibrate_temperature(dp[p]):.4g}"),
                                 "cross_validation": {"coverage68": round(float(np.mean(own68[p])), 3),
                                                      "coverage95": round(float(np.mean(own95[p])), 3)}
                                 if own68[p] else None}
                             for p in PARAMS}}
    if args.per_parameter:
        cal["profile_temperatures"] = {p: cal["per_parameter"][p]["temperature"] for p in PARAMS}
    print(json.dumps({k: v for k, v in cal.items() if k not in ("indices",)}, indent=1))
    if args.write:
        kept = GRID_KEYS if args.per_parameter else GRID_KEYS + PROFILE_KEYS
        write_calibration(args.model, {**cal, **{k: current[k] for k in kept if k in current}})
        own = cal.get("profile_temperatures")
        extra = f"; 1-D profiles: {', '.join(f'{p} {t}' for p, t in own.items())}" if own else ""
        print(f"wrote the calibration (T = {cal['temperature']}{extra}) into {args.model}/model.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
