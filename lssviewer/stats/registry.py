"""The registry of summary statistics: call any statistic by name (CLI, GUI, model validation).

>>> from lssviewer import stats
>>> res = stats.compute("xi", catalogs)                       # default bins
>>> res = stats.compute("xi-rsd", catalogs, edges=[0, 10, 20, 40], los="x")
>>> sets = stats.compute_sets("pk", {"samples": samples, "simulations": sims})  # shared bins
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.stats import binning
from lssviewer.stats.result import StatResult


@dataclasses.dataclass(frozen=True)
class StatSpec:
    """How to compute, label and plot one statistic.

    Attributes:
        name: registry key.
        label: human title ("Two-point correlation function").
        x_label: axis label of the bin coordinate, with unit.
        y_label: axis label of the *plotted* quantity (after ``plot_transform``), with unit.
        edges_unit: what ``--bins`` edges are ("r in Mpc/h", "log10 M [Msun/h]", ...).
        options: keyword options accepted by :func:`compute` besides ``edges``.
        xscale, yscale: matplotlib axis scales for the figure.
        plot_transform: ``"none"``, ``"r2"`` (plot r^2 y) or ``"k"`` (plot k y).
        component_title: format of a panel title, e.g. ``"ell = {}"``.
        default_bins: description of the default edges (documentation and GUI tooltips).
        y_labels: per-component axis labels where components have different units.
        x_log10: the bin coordinate is a log10 (hmf): figures plot ``10**centers`` on a log axis.
    """

    name: str
    label: str
    x_label: str
    y_label: str
    edges_unit: str
    options: tuple[str, ...]
    xscale: str
    yscale: str
    plot_transform: str
    component_title: str
    default_bins: str
    _edges: Callable[[Sequence[HaloCatalog], Mapping[str, Any]], np.ndarray] = dataclasses.field(repr=False)
    _compute: Callable[..., dict] = dataclasses.field(repr=False)
    _check: Callable[[np.ndarray, float], None] = dataclasses.field(repr=False)
    y_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    x_log10: bool = False

    def component_y_label(self, component: str) -> str:
        """Axis label of a component's panel (``y_label`` unless the component has its own)."""
        return self.y_labels.get(component, self.y_label)

    def default_edges(self, catalogs: Sequence[HaloCatalog], **options: Any) -> np.ndarray:
        """The default bin edges for these catalogs (see ``default_bins``)."""
        return self._edges(list(catalogs), options)


# ---------------------------------------------------------------------- per-statistic glue
def _sep_edges(cats: Sequence[HaloCatalog], _opts: Mapping[str, Any]) -> np.ndarray:
    return binning.separation_edges(cats[0].box_size)


def _check_sep(edges: np.ndarray, box: float) -> None:
    from lssviewer.stats.pairs import check_separation_range

    check_separation_range(edges, box)


def _check_nonneg(edges: np.ndarray, _box: float) -> None:
    if edges[0] < 0:
        raise ParameterError(f"bins start at {edges[0]:g}: must be >= 0")


def _check_any(_edges: np.ndarray, _box: float) -> None:
    return None


def _hmf_edges(cats: Sequence[HaloCatalog], _opts: Mapping[str, Any]) -> np.ndarray:
    return binning.mass_edges(np.concatenate([c.log10_mass for c in cats]))


def _pk_edges(cats: Sequence[HaloCatalog], opts: Mapping[str, Any]) -> np.ndarray:
    from lssviewer.stats.pk import DEFAULT_MESH, _check_mesh

    return binning.wavenumber_edges(cats[0].box_size, _check_mesh(opts.get("mesh", DEFAULT_MESH)),
                                    bool(opts.get("interlace", False)))


def _knn_edges(cats: Sequence[HaloCatalog], opts: Mapping[str, Any]) -> np.ndarray:
    from lssviewer.stats.knn import DEFAULT_KS, check_ks

    density = float(np.mean([c.number_density for c in cats]))
    if density <= 0:
        raise CatalogError("kNN-CDFs need halos (the catalogs are empty)")
    return binning.knn_edges(density, check_ks(opts.get("ks", DEFAULT_KS))[-1])


def _run(module: str, func: str) -> Callable[..., dict]:
    def call(*args: Any, **kwargs: Any) -> dict:
        import importlib

        return getattr(importlib.import_module(module), func)(*args, **kwargs)

    return call


#: Every statistic by name.
STATS: dict[str, StatSpec] = {
    s.name: s
    for s in (
        StatSpec("hmf", "Halo mass function", r"$M$ [$M_\odot/h$]",
                 r"$n(>M)$ [$(h/\mathrm{Mpc})^3$], $dn/d\log_{10}M$ [$(h/\mathrm{Mpc})^3$ dex$^{-1}$]",
                 "log10 M [Msun/h]", (), "log", "log", "none", "{}",
                 "0.1 dex bins covering all masses, edges on multiples of 0.05 dex",
                 _hmf_edges, _run("lssviewer.stats.hmf", "compute_hmf"), _check_any,
                 {"cumulative": r"$n(>M)$ [$(h/\mathrm{Mpc})^3$]",
                  "differential": r"$dn/d\log_{10}M$ [$(h/\mathrm{Mpc})^3$ dex$^{-1}$]"}, True),
        StatSpec("xi", "Two-point correlation function", r"$r$ [Mpc/$h$]", r"$r^2\xi(r)$ [(Mpc/$h$)$^2$]",
                 "r in Mpc/h", ("jackknife",), "linear", "linear", "r2", "{}",
                 "25 equal bins on (0, min(150, L/4)] Mpc/h",
                 _sep_edges, _run("lssviewer.stats.xi", "compute_xi"), _check_sep),
        StatSpec("xi-rsd", "Redshift-space correlation multipoles", r"$s$ [Mpc/$h$]",
                 r"$s^2\xi_\ell(s)$ [(Mpc/$h$)$^2$]", "s in Mpc/h", ("los", "ells", "jackknife"),
                 "linear", "linear", "r2", r"$\ell = {}$", "25 equal bins on (0, min(150, L/4)] Mpc/h",
                 _sep_edges, _run("lssviewer.stats.xi", "compute_xi_rsd"), _check_sep),
        StatSpec("pk", "Power spectrum multipoles", r"$k$ [$h$/Mpc]", r"$k P_\ell(k)$ [(Mpc/$h$)$^2$]",
                 "k in h/Mpc",
                 ("mesh", "los", "ells", "assignment", "interlace", "rsd", "subtract_shot_noise", "workers"),
                 "log", "linear", "k", r"$\ell = {}$",
                 "bins of width k_f = 2 pi / L from k_f / 2 to k_Nyquist / 2 (k_Nyquist with interlacing)",
                 _pk_edges, _run("lssviewer.stats.pk", "compute_pk"), _check_nonneg),
        StatSpec("vpdf", "Velocity distributions", r"$v$ [km/s]", r"PDF [(km/s)$^{-1}$]", "v in km/s",
                 ("los",), "linear", "linear", "none", "{}",
                 "50 km/s bins on [-2000, 2000] km/s (speed PDF is 0 below 0)",
                 lambda cats, opts: binning.velocity_edges(), _run("lssviewer.stats.velocity", "compute_vpdf"),
                 _check_any, {"speed": r"PDF of $|v|$ [(km/s)$^{-1}$]",
                              "los": r"PDF of $v_\mathrm{los}$ [(km/s)$^{-1}$]"}),
        StatSpec("pairwise", "Mean radial pairwise velocity", r"$r$ [Mpc/$h$]", r"$v_{12}(r)$ [km/s]",
                 "r in Mpc/h", ("jackknife",), "linear", "linear", "none", "{}",
                 "25 equal bins on (0, min(150, L/4)] Mpc/h",
                 _sep_edges, _run("lssviewer.stats.velocity", "compute_pairwise"), _check_sep),
        StatSpec("knn", "k-nearest-neighbour CDFs", r"$r$ [Mpc/$h$]", r"CDF$_k(r)$", "r in Mpc/h",
                 ("ks", "n_random", "seed", "workers"), "linear", "linear", "none", "$k = {}$",
                 "40 equal bins on (0, 1.3 r_ws (k_max + 4 sqrt(k_max) + 4)^(1/3)], r_ws the Wigner-Seitz radius",
                 _knn_edges, _run("lssviewer.stats.knn", "compute_knn"), _check_nonneg),
    )
}


def get_spec(name: str) -> StatSpec:
    """The :class:`StatSpec` of ``name`` or a ParameterError listing the known ones."""
    try:
        return STATS[name]
    except (KeyError, TypeError):
        raise ParameterError(f"unknown statistic '{name}' (known: {', '.join(STATS)})") from None


def _as_list(catalogs: HaloCatalog | Sequence[HaloCatalog]) -> list[HaloCatalog]:
    cats = [catalogs] if isinstance(catalogs, HaloCatalog) else list(catalogs)
    if not cats:
        raise CatalogError("no catalogs given")
    for c in cats:
        if not isinstance(c, HaloCatalog):
            raise CatalogError(f"expected HaloCatalog objects, got {type(c).__name__}")
    boxes = {c.box_size for c in cats}
    if len(boxes) > 1:
        raise CatalogError(f"catalogs of one set must share the box size, got {sorted(boxes)} Mpc/h")
    return cats


def compute(name: str, catalogs: HaloCatalog | Sequence[HaloCatalog], edges: Any = None,
            **options: Any) -> StatResult:
    """Compute statistic ``name`` on each catalog of a set.

    Args:
        name: one of :data:`STATS` (``hmf``, ``xi``, ``xi-rsd``, ``pk``, ``vpdf``, ``pairwise``, ``knn``).
        catalogs: a HaloCatalog or a sequence of them (same box size).
        edges: bin edges (array, sequence or "a,b,c" string) in the unit of
            ``STATS[name].edges_unit``; default: ``STATS[name].default_edges(catalogs)``.
        **options: statistic options, see ``STATS[name].options`` (e.g. ``los="x"`` for xi-rsd,
            ``mesh=256, interlace=True`` for pk, ``ks=(1, 2, 3), n_random=200_000, seed=1`` for knn).

    Returns:
        A :class:`StatResult` with one row per catalog.
    """
    spec = get_spec(name)
    cats = _as_list(catalogs)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        allowed = ", ".join(spec.options) or "none"
        raise ParameterError(f"'{name}' does not take option(s) {', '.join(unknown)} (options: {allowed})")
    box = cats[0].box_size
    edges = spec.default_edges(cats, **options) if edges is None else binning.parse_edges(edges)
    spec._check(edges, box)
    out = spec._compute(cats, edges, **options)
    centers = out.get("centers")
    meta = dict(out.get("meta", {}))
    meta.setdefault("edges_unit", spec.edges_unit)
    return StatResult(stat=name, edges=edges,
                      centers=binning.bin_centers(edges) if centers is None else centers,
                      values=out["values"], errors=out["errors"],
                      n_halos=np.array([c.n_halos for c in cats]), box_size=box, meta=meta,
                      names=[c.name for c in cats])


def compute_sets(name: str, sets: Mapping[str, HaloCatalog | Sequence[HaloCatalog]], edges: Any = None,
                 **options: Any) -> dict[str, StatResult]:
    """Compute ``name`` on several sets with *shared* bins (default edges from all sets together),
    ready for :func:`lssviewer.stats.compare` and :func:`lssviewer.stats.plots.figure`."""
    lists = {label: _as_list(cats) for label, cats in sets.items()}
    if not lists:
        raise CatalogError("no sets of catalogs given")
    if edges is None:
        pooled = [c for cats in lists.values() for c in cats]
        boxes = {c.box_size for c in pooled}
        if len(boxes) > 1 and name in ("pk", "xi", "xi-rsd", "pairwise"):
            raise CatalogError(f"sets have different box sizes {sorted(boxes)} Mpc/h: pass edges explicitly")
        edges = get_spec(name).default_edges(pooled, **options)
    return {label: compute(name, cats, edges=edges, **options) for label, cats in lists.items()}
