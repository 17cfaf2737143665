"""``lssviewer scan``: ELBO likelihood profile (or 2-D grid) of a catalog over (Omega_m, sigma_8)."""

from __future__ import annotations

import argparse

HELP = "likelihood scan of a catalog in Omega_m, sigma_8 or both, with the MAP and 68 and 95 percent intervals"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="catalog file")
    p.add_argument("--index", type=int, default=0, help="which catalog of the file (default 0)")
    p.add_argument("--param", choices=("omega_m", "sigma_8", "both"), default="omega_m",
                   help="profile in one parameter (the other at the catalog's truth, or the prior centre) "
                        "or a 2-D grid")
    p.add_argument("--points", type=int, help="grid points per parameter (default 30; 15 for both: per axis of the "
                                              "zoom window)")
    p.add_argument("--coarse", type=int, default=7,
                   help="both: points per axis of the first, coarse grid over the prior that finds the peak "
                        "(default 7; unused with --no-zoom)")
    p.add_argument("--no-zoom", action="store_true",
                   help="both: one grid over the whole prior box instead of a coarse grid and zoom windows around "
                        "the peak (docs/model.md, \"2-D grids\")")
    # = lssviewer.model.likelihood.DEFAULT_NOISE (not imported here: it would load torch for --help)
    p.add_argument("--n-noise", type=int, default=16, help="noise draws (stratified times) per grid point (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the common random numbers")
    p.add_argument("--model", help="model directory (default: the built-in model)")
    p.add_argument("--device", help="cuda, mps or cpu (default: automatic)")
    p.add_argument("--most-massive", action="store_true",
                   help="cut the catalog to the model's number of halos (its most massive ones)")
    p.add_argument("--uncalibrated", action="store_true",
                   help="intervals from the raw ELBO, ignoring the model's likelihood calibration (temperature)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import itertools
    import json
    import sys

    import numpy as np
    import torch

    from lssviewer import io
    from lssviewer.errors import LssviewerError, ParameterError
    from lssviewer.model import load_model
    from lssviewer.model.likelihood import (
        Tempering,
        difference_stderr,
        grid_2d_axes,
        profile_grid,
        summarize_grid_2d,
        summarize_profile,
        tempered_grid_2d,
    )
    from lssviewer.model.zoom import CUT, GridStage, assess, collect, zoomed_grid_2d

    torch.set_flush_denormal(True)
    catalogs = io.load(args.file)
    if not -len(catalogs) <= args.index < len(catalogs):
        raise LssviewerError(f"--index {args.index} out of range: the file holds {len(catalogs)} catalog(s)",
                             args.file)
    catalog = catalogs[args.index]
    model = load_model(args.model, device=args.device)
    if args.most_massive:
        if catalog.n_halos < model.n_halos:
            raise LssviewerError(f"catalog has {catalog.n_halos} halos, fewer than the model's {model.n_halos}",
                                 args.file)
        catalog = catalog.top_n(model.n_halos)
    try:
        model.check_catalog(catalog)
    except LssviewerError as exc:
        raise exc.with_path(args.file) from None
    truth = None if catalog.cosmology is None else [catalog.omega_m, catalog.sigma_8]
    # a calibrated model's intervals come from a tempered log L (a 1-D profile: its parameter's tempering; a 2-D
    # grid: the model's grid tempering; either may temper the network's term alone); the printed log L stays the
    # raw ELBO
    if args.uncalibrated:
        tempering = Tempering()
    elif args.param == "both":
        tempering = model.grid_tempering()
    else:
        tempering = model.profile_tempering(args.param)
    show = not args.json and sys.stderr.isatty()
    if args.param == "both":
        points = args.points or 15
        if points < 3 or args.coarse < 3:
            raise ParameterError("--points and --coarse must be >= 3")
        if args.no_zoom:
            whole = GridStage(0, *grid_2d_axes(model, points), args.n_noise, "prior")
            events = itertools.chain([whole], model.scan(catalog, whole.grid, n_noise=args.n_noise, seed=args.seed))
        else:
            events = zoomed_grid_2d(model, catalog, points=points, coarse=args.coarse, n_noise=args.n_noise,
                                    seed=args.seed, tempering=tempering)

        def progress(st: dict) -> None:
            if show:
                print(f"\rstage {st['stage']} ({st['reason']}): {st['done']}/{st['log_likelihood'].size} grid points"
                      "\x1b[K", end="", file=sys.stderr, flush=True)

        stages = collect(events, progress)
        last = stages[-1]
        om, s8, ll2, err2 = last["omega_m"], last["sigma_8"], last["log_likelihood"], last["stderr"]
        draws2 = last["draws"]
    else:
        points = args.points or 30
        grid = profile_grid(model, catalog, args.param, points)
        ll, err, box = (np.full(len(grid), np.nan) for _ in range(3))
        draws: list = [None] * len(grid)
        for k, pt in enumerate(model.scan(catalog, grid, n_noise=args.n_noise, seed=args.seed), 1):
            ll[pt.index], err[pt.index], draws[pt.index] = pt.log_likelihood, pt.stderr, pt.draws
            if pt.box_log_likelihood is not None:
                box[pt.index] = pt.box_log_likelihood
            if show:
                print(f"\r{k}/{len(grid)} grid points", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    if args.param == "both":
        box2 = last["box_log_likelihood"] if tempering.network_only else None
        tempered = tempered_grid_2d(om, s8, ll2, tempering, box2)
        summ = summarize_grid_2d(om, s8, ll2, temperature=tempering, box_log_likelihood=box2)
        result = {"param": "both", "grid": {"omega_m": om.tolist(), "sigma_8": s8.tolist()},
                  "log_likelihood": ll2.tolist(), "stderr": err2.tolist(),
                  # the surface the summary, levels and contours come from (log L when uncalibrated)
                  "tempered_log_likelihood": tempered.tolist(), "map": summ["map"],
                  "interval68": {p: summ[p]["interval68"] for p in ("omega_m", "sigma_8")},
                  "interval95": {p: summ[p]["interval95"] for p in ("omega_m", "sigma_8")},
                  "levels": summ["levels"], "truth": truth,
                  "stages": [{"stage": st["stage"], "reason": st["reason"], "n_noise": st["n_noise"],
                              "omega_m": st["omega_m"].tolist(), "sigma_8": st["sigma_8"].tolist(),
                              "log_likelihood": st["log_likelihood"].tolist()} for st in stages],
                  # the last zoom window still cuts the 99 % region (then "truncated" intervals may be the window's)
                  "window_cut": None if args.no_zoom else bool(
                      assess(om, s8, tempered, model.prior.bounds()) == CUT)}
        if np.all(np.isfinite(last["box_log_likelihood"])):
            result["box_log_likelihood"] = last["box_log_likelihood"].tolist()
        if draws2 is not None and np.all(np.isfinite(draws2)):
            flat = draws2.reshape(ll2.size, -1)
            top = int(np.argmax(ll2))
            result["stderr_difference"] = difference_stderr(flat, top).reshape(ll2.shape).tolist()
            result["stderr_difference_reference"] = [int(v) for v in np.unravel_index(top, ll2.shape)]
    else:
        i = 0 if args.param == "omega_m" else 1
        box1 = box if np.all(np.isfinite(box)) else None
        if tempering.network_only and box1 is None:
            raise LssviewerError("the scan gave no box statistics' term for some points, which the model's 1-D "
                                 "calibration needs (--uncalibrated for the raw ELBO)", args.file)
        summ = summarize_profile(grid[:, i], ll, temperature=tempering, box_log_likelihood=box1)
        result = {"param": args.param, "grid": grid[:, i].tolist(), "log_likelihood": ll.tolist(),
                  "stderr": err.tolist(),
                  # the curve the summary comes from (log L when uncalibrated)
                  "tempered_log_likelihood": tempering.apply(ll, box1).tolist(),
                  "map": summ["map"], "interval68": summ["interval68"],
                  "interval95": summ["interval95"], "truth": None if truth is None else truth[i],
                  "fixed": {("sigma_8" if i == 0 else "omega_m"): float(grid[0, 1 - i])},
                  "posterior_mean": summ["posterior_mean"], "posterior_std": summ["posterior_std"]}
        if box1 is not None:
            result["box_log_likelihood"] = box1.tolist()
        if all(d is not None for d in draws):
            top = int(np.argmax(ll))
            result["stderr_difference"] = difference_stderr(draws, top).tolist()
            result["stderr_difference_reference"] = top
    # T was fitted with a given number of noise draws (the estimator's own error is part of what it absorbs)
    cal = model.meta.get("calibration", {})
    fit_record = "grid_calibration" if args.param == "both" else "profile_calibration"
    cal_noise = (cal.get(fit_record) or {}).get("n_noise") if tempering.network_only else cal.get("n_noise")
    result.update(n_noise=args.n_noise, seed=args.seed, model=str(model.path), n_halos=model.n_halos,
                  temperature=tempering.temperature, network_temperature=tempering.network,
                  calibration_n_noise=cal_noise)
    if args.json:
        print(json.dumps(result))
        return 0
    if args.param == "both":
        for st in stages:
            print(f"stage {st['stage']} ({st['reason']}): {len(st['omega_m'])} x {len(st['sigma_8'])} points, "
                  f"omega_m [{st['omega_m'][0]:.4f}, {st['omega_m'][-1]:.4f}], "
                  f"sigma_8 [{st['sigma_8'][0]:.4f}, {st['sigma_8'][-1]:.4f}], {st['n_noise']} noise draws")
        if result["window_cut"]:
            print("warning: the last zoom window cuts the 99 % region: contours and intervals may be cut by it "
                  "(more --points, or --no-zoom)")
        print(f"MAP omega_m={result['map'][0]:.4f} sigma_8={result['map'][1]:.4f} (truth {truth})")
        for p in ("omega_m", "sigma_8"):
            a, b = result["interval68"][p]
            c, d = result["interval95"][p]
            print(f"  {p}: 68% [{a:.4f}, {b:.4f}]  95% [{c:.4f}, {d:.4f}] (profile over the other)")
    else:
        diff = result.get("stderr_difference")
        print(f"{'theta':>10} {'log L':>14} {'stderr':>8} {'log L - max':>12}" + (f" {'+-':>6}" if diff else ""))
        for k, (x, y, e) in enumerate(zip(result["grid"], ll, err, strict=True)):
            print(f"{x:10.4f} {y:14.2f} {e:8.2f} {y - ll.max():12.2f}" + (f" {diff[k]:6.2f}" if diff else ""))
        if diff:
            print("(stderr: of the absolute ELBO; +-: of log L - max, far smaller: the same noise draws at every "
                  "point)")
        a, b = result["interval68"]
        c, d = result["interval95"]
        print(f"MAP {args.param}={result['map']:.4f}  68% [{a:.4f}, {b:.4f}]  95% [{c:.4f}, {d:.4f}]  "
              f"truth {result['truth']}")
        (other, value), = result["fixed"].items()
        where = "its true value" if truth is not None else "the prior centre: the catalog states no cosmology"
        print(f"(conditional on {other} = {value:.4g}, {where}; --param both gives the joint constraint, whose "
              "intervals are wider along the Omega_m-sigma_8 degeneracy)")
    if tempering != Tempering():
        print(f"(intervals from {tempering.describe()}: the model's likelihood calibration; --uncalibrated for raw)")
        if cal_noise is not None and int(cal_noise) != args.n_noise:
            print(f"(the calibration was fitted with --n-noise {cal_noise}; with {args.n_noise} the intervals are "
                  "approximate)")
    return 0
