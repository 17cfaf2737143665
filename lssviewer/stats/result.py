"""The result of a summary statistic over a set of catalogs, and its JSON form."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lssviewer.errors import ParameterError


def _jsonable(value: Any) -> Any:
    """numpy -> plain Python, NaN/inf -> None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclasses.dataclass
class StatResult:
    """One summary statistic measured on each catalog of a set.

    Attributes:
        stat: registry name (``"hmf"``, ``"xi"``, ``"xi-rsd"``, ``"pk"``, ``"vpdf"``, ``"pairwise"``, ``"knn"``).
        edges: (n_bins + 1,) bin edges in the statistic's x unit (see :data:`lssviewer.stats.STATS`).
        centers: (n_bins,) x coordinate of each value (mean |k| of the modes for ``pk``).
        values: component -> (n_catalogs, n_bins) array. Components are multipoles ``"0"``, ``"2"``,
            ``"4"`` (xi-rsd, pk), neighbour orders ``"1"``, ``"2"`` ... (knn), ``"cumulative"`` /
            ``"differential"`` (hmf), ``"speed"`` / ``"los"`` (vpdf), or ``""`` for a single one.
        errors: same keys and shapes: each catalog's own error (Poisson, binomial or Gaussian
            mode-counting; the statistic's docstring says which).
        n_halos: (n_catalogs,) halos in each catalog.
        box_size: periodic box side in Mpc/h (the same for all catalogs of a set).
        meta: options and by-products (line of sight, shot noise, seeds, units ...), JSON-friendly.
        names: each catalog's name.
    """

    stat: str
    edges: np.ndarray
    centers: np.ndarray
    values: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    n_halos: np.ndarray
    box_size: float
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    names: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.float64)
        self.centers = np.asarray(self.centers, dtype=np.float64)
        self.n_halos = np.atleast_1d(np.asarray(self.n_halos, dtype=np.int64))
        n_cat, n_bins = len(self.n_halos), len(self.edges) - 1
        if len(self.centers) != n_bins:
            raise ValueError(f"{len(self.centers)} centers for {n_bins} bins")
        if set(self.values) != set(self.errors):
            raise ValueError("values and errors must have the same components")
        for store in (self.values, self.errors):
            for key in list(store):
                arr = np.asarray(store[key], dtype=np.float64).reshape(n_cat, n_bins)
                store[key] = arr
        if not self.names:
            self.names = [""] * n_cat

    # ------------------------------------------------------------------ shape
    @property
    def n_catalogs(self) -> int:
        return len(self.n_halos)

    @property
    def n_bins(self) -> int:
        return len(self.centers)

    @property
    def components(self) -> list[str]:
        return list(self.values)

    # ------------------------------------------------------------------ set summaries
    def mean(self, component: str | None = None) -> np.ndarray:
        """Mean over the set per bin (NaNs of single catalogs ignored)."""
        arr = self.values[self._key(component)]
        with _no_nan_warning():
            return np.nanmean(arr, axis=0) if self.n_catalogs > 1 else arr[0].copy()

    def scatter(self, component: str | None = None) -> np.ndarray:
        """Per-catalog scatter per bin: the standard deviation across the set (ddof = 1), or the
        single catalog's own error when the set has one catalog."""
        key = self._key(component)
        if self.n_catalogs == 1:
            return self.errors[key][0].copy()
        with _no_nan_warning():
            return np.nanstd(self.values[key], axis=0, ddof=1)

    def _key(self, component: str | None) -> str:
        if component is None:
            if len(self.values) != 1:
                raise ParameterError(f"'{self.stat}' has components {', '.join(self.values)}: name one")
            return next(iter(self.values))
        if component not in self.values:
            raise ParameterError(f"'{self.stat}' has no component '{component}' "
                                 f"(has: {', '.join(self.values)})")
        return component

    # ------------------------------------------------------------------ selection and joining
    def select(self, index: int | Sequence[int] | np.ndarray) -> StatResult:
        """The result restricted to some catalogs (an int keeps a set of one)."""
        idx = np.atleast_1d(np.arange(self.n_catalogs)[index])
        return dataclasses.replace(
            self, values={k: v[idx] for k, v in self.values.items()},
            errors={k: v[idx] for k, v in self.errors.items()}, n_halos=self.n_halos[idx],
            meta=dict(self.meta), names=[self.names[i] for i in idx])

    @classmethod
    def concatenate(cls, results: Sequence[StatResult]) -> StatResult:
        """Join results of the same statistic with the same bins into one set."""
        if not results:
            raise ParameterError("nothing to concatenate")
        first = results[0]
        for r in results[1:]:
            if r.stat != first.stat or r.components != first.components or not np.allclose(r.edges, first.edges):
                raise ParameterError("can only concatenate results of one statistic with the same bins")
        return dataclasses.replace(
            first,
            values={k: np.concatenate([r.values[k] for r in results]) for k in first.values},
            errors={k: np.concatenate([r.errors[k] for r in results]) for k in first.errors},
            n_halos=np.concatenate([r.n_halos for r in results]),
            names=[n for r in results for n in r.names], meta=dict(first.meta))

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON form: set mean as ``values`` and the scatter (or single error) as ``errors``.

        ``values``/``errors`` are lists when the statistic has a single component, otherwise dicts
        keyed by component (e.g. multipoles ``"0"``, ``"2"``, ``"4"``). ``n_halos`` is an int for one
        catalog and a list for a set; NaN becomes ``null``.
        """
        single = list(self.values) == [""]
        values = {k: self.mean(k) for k in self.values}
        errors = {k: self.scatter(k) for k in self.values}
        out: dict[str, Any] = {
            "stat": self.stat,
            "edges": self.edges,
            "centers": self.centers,
            "values": values[""] if single else values,
            "errors": errors[""] if single else errors,
            "n_halos": int(self.n_halos[0]) if self.n_catalogs == 1 else self.n_halos,
            "box_size": self.box_size,
            "n_catalogs": self.n_catalogs,
            "meta": self.meta,
        }
        return _jsonable(out)

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)


@contextlib.contextmanager
def _no_nan_warning() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' / 'degrees of freedom' RuntimeWarnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def check_same_bins(a: StatResult, b: StatResult) -> None:
    """Raise ParameterError unless ``a`` and ``b`` are the same statistic on the same bins."""
    if a.stat != b.stat:
        raise ParameterError(f"cannot compare '{a.stat}' with '{b.stat}'")
    if len(a.edges) != len(b.edges) or not np.allclose(a.edges, b.edges, rtol=1e-9, atol=0):
        raise ParameterError(f"'{a.stat}' results have different bin edges: compute both sets with the same "
                             "edges (lssviewer.stats.compute_sets does this)")
    if a.components != b.components:
        raise ParameterError(f"'{a.stat}' results have different components "
                             f"({', '.join(a.components)} vs {', '.join(b.components)})")


def merge_meta(metas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Keys equal in every catalog stay scalars; keys that differ become lists."""
    if not metas:
        return {}
    out: dict[str, Any] = {}
    for key in metas[0]:
        vals = [m.get(key) for m in metas]
        same = all(_jsonable(v) == _jsonable(vals[0]) for v in vals)
        out[key] = vals[0] if same else vals
    return out
