"""``lssviewer stats``: summary statistics of catalog files, comparisons and figures.

Each FILE is one set of catalogs (all catalogs of a suite, or ``--index I`` for one). With several
files, the first is the reference: the text output and ``--json`` add the comparison of every
other file with it (residuals in sigma, chi^2), and ``--plot`` draws all sets with a residual panel.
"""

from __future__ import annotations

import argparse
import os
import sys

HELP = "summary statistics (mass function, 2PCF, P(k), velocities, kNN-CDF) of catalogs, compared and plotted"

#: Statistic names (the same as lssviewer.stats.STATS; kept here so that --help stays fast).
STAT_NAMES = ("hmf", "xi", "xi-rsd", "pk", "vpdf", "pairwise", "knn")
#: Which statistics take which command-line option (option dest -> statistics).
_APPLIES = {
    "los": ("xi-rsd", "pk", "vpdf"),
    "ells": ("xi-rsd", "pk"),
    "mesh": ("pk",),
    "assignment": ("pk",),
    "interlace": ("pk",),
    "rsd": ("pk",),
    "no_shot_noise": ("pk",),
    "k": ("knn",),
    "randoms": ("knn",),
    "seed": ("knn",),
    "jackknife": ("xi", "xi-rsd", "pairwise"),
}
_PLOT_EXTENSIONS = (".png", ".pdf", ".svg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="catalog files; each is one set (the first is the reference for comparisons)")
    p.add_argument("--stat", required=True, choices=STAT_NAMES, help="which statistic")
    p.add_argument("--bins", metavar="EDGES",
                   help="comma-separated bin edges (r in Mpc/h; log10 M for hmf; k in h/Mpc; v in km/s for "
                        "vpdf), or start:stop:n, or log:start:stop:n; default: the statistic's own")
    p.add_argument("--los", choices=("x", "y", "z"), help="line of sight for xi-rsd, pk, vpdf (default z)")
    p.add_argument("--index", type=int, metavar="I",
                   help="use only catalog I of each file (negative counts from the end; default: all, as a set)")
    p.add_argument("--top", type=int, metavar="N", help="keep the N most massive halos of each catalog")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="OUT", help="write a figure (.png, .pdf or .svg)")
    p.add_argument("--mode", choices=("mean", "scatter"), default="mean",
                   help="sigma of the residuals: error of the mean difference (default) or the reference's scatter")
    g = p.add_argument_group("statistic options")
    g.add_argument("--ells", metavar="L,L", help="multipoles for xi-rsd and pk (default 0,2,4)")
    g.add_argument("--mesh", type=int, help="pk: FFT mesh cells per side (default 128)")
    g.add_argument("--assignment", choices=("cic", "tsc"), help="pk: mass assignment (default cic)")
    g.add_argument("--interlace", action="store_true", default=None, help="pk: interlaced meshes")
    g.add_argument("--rsd", action="store_true", default=None, help="pk: in redshift space along --los")
    g.add_argument("--no-shot-noise", action="store_true", default=None,
                   help="pk: do not subtract the shot noise")
    g.add_argument("--k", metavar="K,K", help="knn: neighbour orders (default 1,2,4,8)")
    g.add_argument("--randoms", type=int, help="knn: random query points (default 100000)")
    g.add_argument("--seed", type=int, help="knn: seed of the query points (default 0)")
    g.add_argument("--jackknife", type=int, metavar="N",
                   help="xi, xi-rsd, pairwise: jackknife errors over N^3 subvolumes (default: Poisson errors)")


def _options(args: argparse.Namespace) -> dict:
    from lssviewer.errors import ParameterError

    opts: dict = {}
    for dest, stats in _APPLIES.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if args.stat not in stats:
            flag = "--" + dest.replace("_", "-")
            raise ParameterError(f"{flag} applies to {', '.join(stats)}, not to --stat {args.stat}")
        opts[dest] = value
    out: dict = {}
    if "los" in opts:
        out["los"] = opts["los"]
    if "ells" in opts:
        try:
            out["ells"] = [int(v) for v in opts["ells"].split(",") if v.strip()]
        except ValueError:
            raise ParameterError(f"--ells must be comma-separated integers, got '{opts['ells']}'") from None
    for key in ("mesh", "assignment", "interlace", "rsd"):
        if key in opts:
            out[key] = opts[key]
    if "no_shot_noise" in opts:
        out["subtract_shot_noise"] = False
    if "k" in opts:
        out["ks"] = opts["k"]
    if "randoms" in opts:
        out["n_random"] = opts["randoms"]
    if "seed" in opts:
        out["seed"] = opts["seed"]
    if "jackknife" in opts:
        out["jackknife"] = opts["jackknife"]
    return out


def _load(path: str, index: int | None, top: int | None) -> list:
    from lssviewer import io
    from lssviewer.errors import LssviewerError, ParameterError

    cats = io.load(path)
    if index is not None:
        try:
            cats = [cats[index]]
        except IndexError:
            raise ParameterError(f"--index {index} out of range (file holds {len(cats)} catalog(s))",
                                 path) from None
    if top is not None:
        if top < 1:
            raise ParameterError(f"--top must be >= 1, got {top}")
        try:
            cats = [c.top_n(top) for c in cats]
        except LssviewerError as exc:
            raise exc.with_path(path) from None
    return cats


def _labels(files: list[str]) -> list[str]:
    stems = [os.path.basename(f) for f in files]
    labels = stems if len(set(stems)) == len(stems) else list(files)
    seen: dict[str, int] = {}
    out = []
    for lab in labels:  # the same file given twice
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


def _table(label: str, res, spec) -> str:
    import numpy as np

    lines = []
    n = res.n_halos
    halos = f"{n[0]} halos" if res.n_catalogs == 1 else f"{n.min()}-{n.max()} halos each"
    spread = "value and error" if res.n_catalogs == 1 else "mean and scatter (std) across the set"
    lines.append(f"# {spec.label} ({res.stat}) of {label}: {res.n_catalogs} catalog(s), {halos}, "
                 f"box {res.box_size:g} Mpc/h; {spread}")
    comps = res.components
    head = [f"{'x [' + spec.edges_unit + ']':>18}"]
    for c in comps:
        name = c or res.stat
        head += [f"{name:>14}", f"{'err':>11}"]
    lines.append("#" + " ".join(head)[1:])
    means = {c: res.mean(c) for c in comps}
    errs = {c: res.scatter(c) for c in comps}
    for b in range(res.n_bins):
        row = [f"{res.centers[b]:18.6g}"]
        for c in comps:
            row += [f"{means[c][b]:14.6g}", f"{errs[c][b]:11.4g}"]
        lines.append(" ".join(row))
    for key in ("shot_noise", "los", "space"):
        if key in res.meta:
            val = res.meta[key]
            lines.append(f"# {key}: {np.round(val, 6) if not isinstance(val, str) else val}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from lssviewer import stats
    from lssviewer.errors import LssviewerError, ParameterError

    spec = stats.get_spec(args.stat)
    options = _options(args)
    if args.plot and os.path.splitext(args.plot)[1].lower() not in _PLOT_EXTENSIONS:
        raise ParameterError(f"--plot needs a .png, .pdf or .svg file name, got '{args.plot}'")
    labels = _labels(list(args.files))
    sets = {lab: _load(path, args.index, args.top) for lab, path in zip(labels, args.files, strict=True)}
    if args.bins is not None:
        edges = args.bins
    else:
        pooled = [c for cats in sets.values() for c in cats]
        boxes = {c.box_size for c in pooled}
        if len(boxes) > 1 and args.stat != "hmf":
            raise ParameterError(f"the files have different box sizes ({', '.join(f'{b:g}' for b in sorted(boxes))} "
                                 "Mpc/h): give --bins explicitly")
        edges = spec.default_edges(pooled, **options)
    results = {}
    for (lab, cats), path in zip(sets.items(), args.files, strict=True):
        try:
            results[lab] = stats.compute(args.stat, cats, edges=edges, **options)
        except LssviewerError as exc:
            raise exc.with_path(path) from None
    ref_label = labels[0]
    comparisons = {lab: stats.compare(res, results[ref_label], mode=args.mode)
                   for lab, res in results.items() if lab != ref_label}

    if args.json:
        objs = []
        for lab, res in results.items():
            obj = res.to_dict()
            if len(results) > 1:
                obj["label"] = lab
                if lab in comparisons:
                    c = comparisons[lab].to_dict()
                    keys = ("mode", "sigma", "residual", "chi2", "dof", "p_value", "max_abs_residual",
                            "t2", "dof_t2", "p_value_t2")
                    obj["comparison"] = {"reference": ref_label, **{k: c[k] for k in keys}}
            objs.append(obj)
        print(json.dumps(objs[0] if len(objs) == 1 else objs))
    else:
        blocks = [_table(lab, res, spec) for lab, res in results.items()]
        for lab, cmp in comparisons.items():
            blocks.append(f"# {lab} vs {ref_label} ({cmp.mode} sigma): chi2 = {cmp.chi2:.2f} for {cmp.dof} bins "
                          f"(p = {cmp.p_value:.3g}), max |residual| = {cmp.max_abs_residual:.2f} sigma"
                          + (f"; Hotelling T2 p = {cmp.p_value_t2:.3g}" if cmp.p_value_t2 is not None else ""))
        print("\n\n".join(blocks))
    if args.plot:
        fig = stats.plots.figure(args.stat, results, reference=ref_label, mode=args.mode)
        try:
            fig.savefig(args.plot, dpi=150)
        except OSError as exc:
            raise ParameterError(f"cannot write the figure: {exc.strerror or exc}", args.plot) from None
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
