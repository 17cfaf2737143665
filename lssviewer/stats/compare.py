"""Compare a set of samples (e.g. generated catalogs) with a set of reference simulations.

Per bin: the mean and per-catalog scatter of each set (standard deviation across the set, or a
single catalog's own error), the residual in sigma and a chi^2.

Two meanings of "sigma" (``mode``):

* ``"mean"`` (default): the standard error of the difference of the two means,
  ``sigma^2 = s_samples^2 / n_samples + s_reference^2 / n_reference``. If samples and
  simulations come from the same distribution, residuals are ~N(0, 1) and the diagonal chi^2
  follows a chi^2 law with ``dof`` degrees of freedom (for uncorrelated bins);
* ``"scatter"``: the reference's per-catalog scatter (cosmic variance of one simulation),
  ``sigma = s_reference``: "how many cosmic-variance sigmas is the model's mean off" (the CM23
  style of residual panel). Its chi^2 is a distance, not a chi^2-distributed statistic.

Neighbouring bins are correlated (strongly for cumulative statistics), so the diagonal chi^2
overstates the evidence. When both sets have enough catalogs (``n_s + n_r - 2 > n_bins``), the
comparison also gives Hotelling's two-sample T^2 with the pooled covariance, whose F-test p-value is
exact for Gaussian statistics (``p_value_t2``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lssviewer.errors import ParameterError
from lssviewer.stats.result import StatResult, _jsonable, _no_nan_warning, check_same_bins


@dataclasses.dataclass
class Comparison:
    """Result of :func:`compare`; dicts are keyed by component like :attr:`StatResult.values`."""

    stat: str
    edges: np.ndarray
    centers: np.ndarray
    mode: str
    n_samples: int
    n_reference: int
    mean_samples: dict[str, np.ndarray]
    std_samples: dict[str, np.ndarray]
    mean_reference: dict[str, np.ndarray]
    std_reference: dict[str, np.ndarray]
    sigma: dict[str, np.ndarray]
    residual: dict[str, np.ndarray]
    chi2_components: dict[str, float]
    dof_components: dict[str, int]
    chi2: float
    dof: int
    p_value: float
    t2: float | None = None
    dof_t2: tuple[int, int] | None = None
    p_value_t2: float | None = None

    @property
    def components(self) -> list[str]:
        return list(self.residual)

    @property
    def max_abs_residual(self) -> float:
        vals = np.concatenate([np.abs(r[np.isfinite(r)]) for r in self.residual.values()] + [np.zeros(0)])
        return float(vals.max()) if vals.size else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists for a single component, dicts keyed by component otherwise)."""
        single = self.components == [""]

        def pick(d: dict) -> Any:
            return d[""] if single else d

        return _jsonable({
            "stat": self.stat, "mode": self.mode, "edges": self.edges, "centers": self.centers,
            "n_samples": self.n_samples, "n_reference": self.n_reference,
            "mean_samples": pick(self.mean_samples), "std_samples": pick(self.std_samples),
            "mean_reference": pick(self.mean_reference), "std_reference": pick(self.std_reference),
            "sigma": pick(self.sigma), "residual": pick(self.residual),
            "chi2": self.chi2, "dof": self.dof, "p_value": self.p_value,
            "chi2_components": pick(self.chi2_components), "dof_components": pick(self.dof_components),
            "max_abs_residual": self.max_abs_residual,
            "t2": self.t2, "dof_t2": self.dof_t2, "p_value_t2": self.p_value_t2,
        })


def compare(samples: StatResult, reference: StatResult, mode: str = "mean") -> Comparison:
    """Compare ``samples`` with ``reference`` (same statistic, same bins).

    Args:
        samples: the statistic on the set being tested (e.g. model samples).
        reference: the statistic on the reference set (e.g. N-body simulations).
        mode: ``"mean"`` or ``"scatter"``, the meaning of sigma (module docstring).

    Returns:
        A :class:`Comparison`. Bins where sigma is 0 or undefined (e.g. empty mass bins in both
        sets) have NaN residuals and are left out of chi^2 and dof.
    """
    from scipy import stats as sps

    check_same_bins(samples, reference)
    if mode not in ("mean", "scatter"):
        raise ParameterError(f"comparison mode must be 'mean' or 'scatter', got '{mode}'")
    n_s, n_r = samples.n_catalogs, reference.n_catalogs
    out: dict[str, dict] = {k: {} for k in ("ms", "ss", "mr", "sr", "sig", "res")}
    chi2_c: dict[str, float] = {}
    dof_c: dict[str, int] = {}
    for comp in samples.components:
        ms, ss = samples.mean(comp), samples.scatter(comp)
        mr, sr = reference.mean(comp), reference.scatter(comp)
        sig = np.sqrt(ss**2 / n_s + sr**2 / n_r) if mode == "mean" else sr.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            res = (ms - mr) / sig
        res[~(np.isfinite(sig) & (sig > 0))] = np.nan
        ok = np.isfinite(res)
        chi2_c[comp] = float(np.sum(res[ok] ** 2))
        dof_c[comp] = int(ok.sum())
        for key, val in zip(("ms", "ss", "mr", "sr", "sig", "res"), (ms, ss, mr, sr, sig, res), strict=True):
            out[key][comp] = val
    chi2 = float(sum(chi2_c.values()))
    dof = int(sum(dof_c.values()))
    p_value = float(sps.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    t2, dof_t2, p_t2 = _hotelling(samples, reference)
    return Comparison(stat=samples.stat, edges=samples.edges.copy(), centers=samples.centers.copy(), mode=mode,
                      n_samples=n_s, n_reference=n_r, mean_samples=out["ms"], std_samples=out["ss"],
                      mean_reference=out["mr"], std_reference=out["sr"], sigma=out["sig"],
                      residual=out["res"], chi2_components=chi2_c, dof_components=dof_c, chi2=chi2, dof=dof,
                      p_value=p_value, t2=t2, dof_t2=dof_t2, p_value_t2=p_t2)


def _stack(result: StatResult) -> np.ndarray:
    return np.concatenate([result.values[c] for c in result.components], axis=1)


def _hotelling(samples: StatResult, reference: StatResult) -> tuple[float | None, tuple[int, int] | None,
                                                                   float | None]:
    """Two-sample Hotelling T^2 on all components' bins with the pooled covariance."""
    from scipy import stats as sps

    n_s, n_r = samples.n_catalogs, reference.n_catalogs
    if n_s < 2 or n_r < 2:
        return None, None, None
    xs, xr = _stack(samples), _stack(reference)
    with _no_nan_warning():
        keep = (np.all(np.isfinite(xs), axis=0) & np.all(np.isfinite(xr), axis=0)
                & ((np.var(xs, axis=0) > 0) | (np.var(xr, axis=0) > 0)))
    xs, xr = xs[:, keep], xr[:, keep]
    p = xs.shape[1]
    if p == 0 or n_s + n_r - 2 <= p:
        return None, None, None
    d = xs.mean(axis=0) - xr.mean(axis=0)
    pooled = ((n_s - 1) * np.cov(xs, rowvar=False).reshape(p, p)
              + (n_r - 1) * np.cov(xr, rowvar=False).reshape(p, p)) / (n_s + n_r - 2)
    try:
        sol = np.linalg.solve(pooled, d)
    except np.linalg.LinAlgError:
        return None, None, None
    t2 = float(n_s * n_r / (n_s + n_r) * d @ sol)
    d1, d2 = p, n_s + n_r - p - 1
    f = t2 * d2 / (p * (n_s + n_r - 2))
    return t2, (d1, d2), float(sps.f.sf(f, d1, d2))
