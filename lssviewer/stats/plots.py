"""Figures comparing sets of catalogs, one function for every statistic.

The same :func:`figure` serves the CLI (``lssviewer stats --plot``) and the GUI's statistics
panel, so an exported figure and the one on screen are identical. It builds a
:class:`matplotlib.figure.Figure` directly (never pyplot): it works headless, in scripts and
embedded in Qt (``FigureCanvasQTAgg(fig)``). Save with ``fig.savefig("out.png")`` (png, pdf, svg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from lssviewer.errors import ParameterError
from lssviewer.stats.compare import compare
from lssviewer.stats.registry import get_spec
from lssviewer.stats.result import StatResult, check_same_bins

#: Line colours of successive sets (colour-blind friendly, Okabe & Ito 2008).
#: Residual panels show at most +-this many sigma; larger residuals are pinned to the edge.
RESIDUAL_CLIP = 10.0
COLORS = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442")


def _transform(kind: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if kind == "r2":
        return y * x**2
    if kind == "k":
        return y * x
    return y


def figure(name: str, sets: Mapping[str, StatResult], reference: str | None = None, mode: str = "mean",
           components: Sequence[str] | None = None, figsize: tuple[float, float] | None = None,
           title: str | None = None) -> Figure:
    """Figure comparing the statistic ``name`` across sets of catalogs.

    Each component (multipole, neighbour order, ...) gets a column: on top the set means as lines
    with a +-1 std band (per-catalog scatter across the set, or a single catalog's error bars),
    below the residual of each set with respect to the reference in sigma (see
    :func:`lssviewer.stats.compare`), with grey +-1 and +-2 sigma bands. A single set gets no
    residual panel.

    Args:
        name: statistic name (``STATS`` key); every result must be of this statistic.
        sets: label -> :class:`StatResult`, all with the same bins (use ``compute_sets``).
        reference: label of the reference set (default: the first).
        mode: ``"mean"`` or ``"scatter"``, what sigma means in the residual panel.
        components: which components to draw (default: all).
        figsize: inches (default: 4.2 per column x 4.6).
        title: figure title (default: the statistic's label).

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    spec = get_spec(name)
    if not sets:
        raise ParameterError("no results to plot")
    labels = list(sets)
    ref_label = labels[0] if reference is None else reference
    if ref_label not in sets:
        raise ParameterError(f"reference set '{ref_label}' is not among {', '.join(labels)}")
    ref = sets[ref_label]
    for label, res in sets.items():
        if res.stat != name:
            raise ParameterError(f"set '{label}' holds '{res.stat}', not '{name}'")
        check_same_bins(res, ref)
    comps = list(components) if components is not None else ref.components
    for c in comps:
        if c not in ref.values:
            raise ParameterError(f"'{name}' has no component '{c}' (has: {', '.join(ref.components)})")
    with_residual = len(sets) > 1
    ncol = len(comps)
    fig = Figure(figsize=figsize or (4.2 * ncol, 4.6 if with_residual else 3.6), layout="constrained")
    grid = fig.add_gridspec(2 if with_residual else 1, ncol, height_ratios=[3, 1] if with_residual else [1])
    x = 10.0 ** ref.centers if spec.x_log10 else ref.centers
    comparisons = {lab: compare(res, ref, mode=mode) for lab, res in sets.items() if lab != ref_label}
    for col, comp in enumerate(comps):
        ax = fig.add_subplot(grid[0, col])
        for i, (label, res) in enumerate(sets.items()):
            color = COLORS[i % len(COLORS)]
            mean = _transform(spec.plot_transform, ref.centers, res.mean(comp))
            std = np.abs(_transform(spec.plot_transform, ref.centers, res.scatter(comp)))
            n = res.n_catalogs
            ax.plot(x, mean, color=color, lw=1.5, label=f"{label} ({n} catalog{'s' if n != 1 else ''})")
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.25, lw=0)
        ax.set_xscale(spec.xscale)
        _sparse_log_minor_labels(ax)
        ax.set_yscale(spec.yscale)
        ax.set_ylabel(spec.component_y_label(comp))
        if comp:
            ax.set_title(spec.component_title.format(comp), fontsize="medium")
        if name == "vpdf" and comp == "speed":
            ax.set_xlim(left=0.0)
        if spec.plot_transform != "none" or name in ("xi-rsd", "pairwise"):
            ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
        if col == 0:
            ax.legend(fontsize="small", frameon=False)
        if with_residual:
            ax.tick_params(labelbottom=False)
            rax = fig.add_subplot(grid[1, col], sharex=ax)
            rax.axhspan(-2, 2, color="0.92", lw=0)
            rax.axhspan(-1, 1, color="0.82", lw=0)
            rax.axhline(0.0, color=COLORS[labels.index(ref_label) % len(COLORS)], lw=1.0)
            finite = [np.abs(c.residual[comp][np.isfinite(c.residual[comp])]) for c in comparisons.values()]
            largest = max((float(f.max()) for f in finite if f.size), default=0.0)
            top = max(3.0, min(RESIDUAL_CLIP, 1.15 * largest))
            for label, cmp in comparisons.items():
                color = COLORS[labels.index(label) % len(COLORS)]
                r = cmp.residual[comp]
                rax.plot(x, np.clip(r, -top, top), color=color, lw=1.2, marker="o", ms=2.5)
                off = np.abs(r) > top  # off-scale residuals: pinned to the edge, open triangles
                if np.any(off):
                    rax.plot(x[off], np.sign(r[off]) * top, ls="none", marker="^", ms=6, mfc="none",
                             color=color)
            _sparse_log_minor_labels(rax)
            rax.set_ylim(-1.05 * top, 1.05 * top)
            rax.set_ylabel(r"$\Delta/\sigma$")
            rax.set_xlabel(spec.x_label)
            if name == "vpdf" and comp == "speed":
                rax.set_xlim(left=0.0)
        else:
            ax.set_xlabel(spec.x_label)
    fig.suptitle(title if title is not None else spec.label)
    return fig


def _minor_log_label(value: float, _pos: int | None = None) -> str:
    """Label a minor tick of a log axis only at 2x and 5x a power of ten (e.g. "2x10^14")."""
    if not value > 0:
        return ""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = value / 10.0**exponent
    if round(mantissa) in (2, 5) and abs(mantissa - round(mantissa)) < 1e-6:
        return rf"${round(mantissa)}\times10^{{{exponent}}}$"
    return ""


def _sparse_log_minor_labels(ax: object) -> None:
    """On a log x axis spanning about a decade matplotlib labels every minor tick (2, 3, 4, 6 x 10^14, ...),
    and the labels run into each other; keep only the 2x and 5x ones."""
    from matplotlib.ticker import FuncFormatter

    if ax.get_xscale() == "log":
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_log_label))
