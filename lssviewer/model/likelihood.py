"""ELBO likelihood of a catalog as a function of cosmology: scans, profiles, 2-D grids, summaries.

Estimator. For a catalog x (standardised, D = 7 N dimensions) and parameters theta,

    log L(theta) ~= ELBO(theta) = -[reconstruction + prior + diffusion(theta)] + log|J|,

with the three VDM terms of :mod:`lssviewer.model.vdm` and log|J| the Jacobian from standardised
features to (x, y, z [Mpc/h], vx, vy, vz [km/s], log10 M [dex]), so ``log_likelihood`` is a lower
bound on the log density of the catalog in those units (nats). For a box-standardised model the "Jacobian"
term is the box statistics' Gaussian log density plus a theta-independent function of the catalog
(:meth:`FeatureTransform.log_density_terms`): profiles and intervals are exact in their theta-dependence, but
the absolute value is then neither a bound nor comparable across catalogs. The diffusion term is estimated
with K draws (t_k, eps_k):

* *common random numbers*: the same K times and noise vectors at every theta of a scan (CM23 saw
  ~124 nats of scatter between seeds without this; with it the differences between grid points
  carry only the much smaller theta-dependent part of the noise);
* *stratified times* (default of :meth:`DiffusionModel.scan`): t_k = (k + u_k) / K with independent
  u_k, one draw per stratum. Optionally *antithetic* noise: K/2 strata, each time used with eps and
  -eps, so that the parts of the loss odd in eps cancel pairwise. That wins on near-Gaussian toy
  data, but on the built-in model the theta-dependent part of the loss lives at log-SNR -4..4 and is
  resolved by the number of distinct times: with 8 draws the seed-to-seed scatter of sigma_8 profile
  MAPs was 5x larger antithetic than stratified (``benchmarks/bench_scan_estimators.py``). A fixed seed
  fixes the times, so the time-quadrature error of a scan is smooth in theta (it does not show as
  noise in the profile) and is the same for every catalog scanned with that seed: more draws, not
  a smoother-looking profile, is what reduces it;
* *batched over theta*: the noisy catalogs z_k are built once and the score network is evaluated
  on (theta, k) pairs in batches.

``stderr`` is the standard error of the absolute ELBO from the collapsed-strata estimator
(:func:`stratified_stderr`: strata paired, conservative); differences between grid
points of one scan are far more precise because of the common random numbers.

Calibration. A model that misses correlations between halos (e.g. the coherent large-scale velocity
field, which makes the velocity dispersion of a box scatter ~3x more than for independent halos)
has a log L that is too sharp. :func:`calibrate_temperature` measures this on held-out simulations:
T is the 68th percentile over boxes of the truth's deficit max log L - log L(truth), divided by the
0.5 it would be for a calibrated 1-D profile; summaries of that model then use log L / T (a power
likelihood). The raw ELBO is never changed, only the width of the intervals drawn from it; the
coverage must be checked on boxes other than those T was fitted on (``lssviewer.model.validation``).

Posterior summaries use a uniform prior on the grid: the MAP, and intervals
{theta : log L(theta) >= max - Delta} with Delta = chi2_ppf(p, dof) / 2 (dof = 1 for a 1-D profile:
Delta = 0.5 for 68.27 %, 1.92 for 95 %; dof = 2 for 2-D contours: 1.15 and 3.00), together with
posterior mean, standard deviation and equal-tailed credible intervals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import ParameterError
from lssviewer.model.sampler import Cancelled
from lssviewer.model.schedule import alpha_sigma
from lssviewer.model.vdm import VDM

if TYPE_CHECKING:  # pragma: no cover
    from lssviewer.model.api import DiffusionModel

_trapz = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # noqa: B009 (numpy < 2: trapz only)
PARAMS = ("omega_m", "sigma_8")
#: Noise draws per ELBO evaluation of scans (stratified times): a 30-point profile of the built-in model
#: moves between seeds by 0.0028 in sigma_8 with 16, 0.0070 with 8 (benchmarks/bench_scan_estimators.py).
DEFAULT_NOISE = 16
#: Fewest truth deficits (held-out profiles) :func:`calibrate_temperature` accepts.
MIN_DEFICITS = 10
LEVELS = (0.6827, 0.95)


@dataclasses.dataclass(frozen=True)
class ScanPoint:
    """One finished grid point of a likelihood scan.

    Attributes:
        index: position in the grid passed to the scan (row-major for 2-D grids).
        theta: (omega_m, sigma_8).
        log_likelihood: ELBO estimate of log L in nats (density of x, y, z [Mpc/h], v [km/s], log10 M).
        stderr: standard error of ``log_likelihood`` from the noise draws (nats): of the absolute ELBO, hundreds
            of nats for a few hundred halos; differences between points of one scan are far more precise (common
            random numbers): :func:`difference_stderr` of the ``draws``.
        box_log_likelihood: for a box-standardised model, the part of ``log_likelihood`` that is the analytic
            Gaussian of the box statistics (nats; ``log_likelihood - box_log_likelihood`` is the network's term,
            which :class:`Tempering` can temper on its own); None for other models.
        draws: the random part of ``log_likelihood`` per time stratum (nats; antithetic pairs averaged): the same
            noise draws and times at every point of a scan, so the difference of two points' draws carries the
            noise of their log L difference; None when the scan did not keep them.
    """

    index: int
    theta: tuple[float, float]
    log_likelihood: float
    stderr: float
    box_log_likelihood: float | None = None
    draws: tuple[float, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Tempering:
    """A calibrated (power) likelihood made from the raw ELBO:

        log L_T = [box + (log L - box) / network] / temperature,

    where box is the analytic Gaussian of the box statistics (:attr:`ScanPoint.box_log_likelihood`, a part of a
    box-standardised model's log L) and log L - box the score network's term. ``temperature`` tempers all of log
    L (the pooled, per-parameter or grid temperatures of a model's calibration); ``network`` only the network's
    term: its density of 400 halos given the box statistics treats them as nearly exchangeable, misses part of
    their correlations and is the overconfident part, while the box statistics' Gaussian is fitted to the
    box-to-box scatter of the training suite (docs/model.md). The raw ELBO is never changed; only summaries
    (intervals, contours, MAPs) are drawn from log L_T.
    """

    temperature: float = 1.0
    network: float = 1.0

    def __post_init__(self) -> None:
        for name in ("temperature", "network"):
            _check_temperature(getattr(self, name))

    @property
    def network_only(self) -> bool:
        """Whether the network's term is tempered apart from the box statistics' (needs their term)."""
        return self.network != 1.0

    def apply(self, log_likelihood: Any, box_log_likelihood: Any = None) -> np.ndarray:
        """log L_T (float64, the shape of ``log_likelihood``); ``box_log_likelihood`` (same shape) is needed when
        :attr:`network_only`."""
        ll = np.asarray(log_likelihood, dtype=np.float64)
        if self.network_only:
            if box_log_likelihood is None:
                raise ParameterError("tempering the network's term needs the box statistics' part of log L "
                                     "(a box-standardised model)")
            box = np.asarray(box_log_likelihood, dtype=np.float64)
            if box.shape != ll.shape:
                raise ParameterError(f"box log-likelihood has shape {box.shape}, log L {ll.shape}")
            ll = box + (ll - box) / self.network
        return ll / self.temperature

    def describe(self) -> str:
        """Short text for messages: e.g. 'log L / 1.14' or 'box + network / 6.2'."""
        if not self.network_only:
            return f"log L / {self.temperature:.3g}"
        text = f"box + network / {self.network:.3g}"
        return text if self.temperature == 1.0 else f"({text}) / {self.temperature:.3g}"


def as_tempering(temperature: float | Tempering) -> Tempering:
    """A :class:`Tempering` from a plain temperature (all of log L) or a Tempering."""
    return temperature if isinstance(temperature, Tempering) else Tempering(temperature=float(temperature))


def default_profile_tempering(model: Any, param: str) -> Tempering:
    """How a model's 1-D profiles over ``param`` temper log L: its ``profile_tempering(param)``, else log L / its
    ``profile_temperature(param)``, else / its ``temperature``, else none (for models implementing only part of
    docs/model-api.md)."""
    own = getattr(model, "profile_tempering", None)
    if own is not None:
        return own(param)
    t = getattr(model, "profile_temperature", None)
    return Tempering(temperature=float(t(param)) if t is not None else float(getattr(model, "temperature", 1.0)))


def crn_draws(n_halos: int, n_noise: int, seed: int, antithetic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Common random numbers: stratified times (K,) in (0, 1) and noise (K, N, 7), from ``seed``.

    Without ``antithetic``: K strata of [0, 1], one uniform time in each. With it (K even): K/2
    strata, each time used twice, with noise eps and -eps.
    """
    if n_noise < 2:
        raise ParameterError(f"n_noise must be >= 2 (got {n_noise}): the standard error needs two draws")
    if antithetic and n_noise % 2:
        raise ParameterError(f"antithetic noise needs an even n_noise (got {n_noise})")
    gen = torch.Generator().manual_seed(int(seed))
    n_t = n_noise // 2 if antithetic else n_noise
    u = torch.rand(n_t, generator=gen, dtype=torch.float64)
    t = ((torch.arange(n_t, dtype=torch.float64) + u) / n_t).float()
    if antithetic:
        eps = torch.randn((n_t, n_halos, 7), generator=gen)
        return t.repeat_interleave(2), torch.stack([eps, -eps], dim=1).reshape(n_noise, n_halos, 7)
    return t, torch.randn((n_noise, n_halos, 7), generator=gen)


def stratified_stderr(values: torch.Tensor, antithetic: bool = False) -> torch.Tensor:
    """Standard error of the mean of (..., K) per-draw values from :func:`crn_draws`.

    One value per stratum (antithetic pairs averaged first); adjacent strata are collapsed in
    pairs, var = sum_j (f_2j - f_2j+1)^2 / S^2 for S strata (conservative). With fewer than two
    strata pairs this falls back to the plain sample standard error.
    """
    if antithetic:
        values = 0.5 * (values[..., 0::2] + values[..., 1::2])
    s = values.shape[-1]
    if s < 2:
        return torch.full(values.shape[:-1], float("nan"), dtype=values.dtype)
    m = s - (s % 2)
    d = values[..., 0:m:2] - values[..., 1:m:2]
    var = d.pow(2).sum(-1) / s**2
    if s % 2:  # odd: the last stratum borrows the spread of the pairs
        var = var * s / m
    return var.sqrt()


@torch.inference_mode()
def diffusion_terms(vdm: VDM, x: torch.Tensor, theta_unit: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                    batch_size: int = 8) -> Iterator[tuple[int, torch.Tensor]]:
    """Per-draw diffusion losses for one catalog at P parameter points, streamed in chunks.

    Args:
        x: (N, 7) standardised catalog, or (P, N, 7) when the standardisation depends on theta
            (conditional features: the same catalog standardised at each theta);
            theta_unit: (P, 2) in [0, 1]^2; t: (K,); eps: (K, N, 7).
        batch_size: network evaluations per forward pass (rounded to whole theta points).

    Yields:
        (first theta index of the chunk, (chunk, K) diffusion losses in nats).
    """
    device = x.device
    t = t.to(device)
    eps = eps.to(device)
    gamma, dgamma = vdm.schedule(t)
    alpha, sigma = alpha_sigma(gamma)
    target = vdm.target_noise(eps, gamma).float()  # eps, or on the torus the positions' wrapped noise
    per_theta = x.ndim == 3
    if not per_theta:
        z = alpha[:, None, None] * x[None] + sigma[:, None, None] * eps  # (K, N, 7), independent of theta
    k = len(t)
    n_shape = x.shape[-2:]
    per = max(1, batch_size // k)
    for start in range(0, len(theta_unit), per):
        th = theta_unit[start:start + per]
        p = len(th)
        if per_theta:  # same times and noise (common random numbers), the catalog as standardised at theta
            zz = (alpha[None, :, None, None] * x[start:start + p, None]
                  + sigma[None, :, None, None] * eps[None]).reshape(p * k, *n_shape)
        else:
            zz = z.repeat(p, 1, 1)
        gg = gamma.repeat(p)
        thth = th.repeat_interleave(k, dim=0)
        out = []
        for s in range(0, len(zz), max(batch_size, 1)):
            e = vdm.eps_hat(zz[s:s + batch_size], gg[s:s + batch_size], thth[s:s + batch_size]).float()
            out.append(e)
        eps_hat = torch.cat(out).view(p, k, *n_shape)
        err = (target[None] - eps_hat).pow(2).flatten(2).sum(-1)  # (p, K)
        yield start, 0.5 * dgamma[None, :] * err


def elbo_scan(vdm: VDM, x: torch.Tensor, theta_unit: torch.Tensor, n_noise: int = DEFAULT_NOISE, seed: int = 0,
              batch_size: int = 8, antithetic: bool = False, log_jacobian: float | Sequence[float] = 0.0,
              cancel: Callable[[], bool] | None = None) -> Iterator[tuple[int, float, float]]:
    """Stream (index, ELBO, stderr) for one standardised catalog over theta_unit (P, 2).

    ``x`` is (N, 7), or (P, N, 7) with ``log_jacobian`` (P,) when the standardisation depends on theta.
    """
    for i, ll, err, _ in elbo_scan_draws(vdm, x, theta_unit, n_noise, seed, batch_size, antithetic, log_jacobian,
                                         cancel):
        yield i, ll, err


def elbo_scan_draws(vdm: VDM, x: torch.Tensor, theta_unit: torch.Tensor, n_noise: int = DEFAULT_NOISE,
                    seed: int = 0, batch_size: int = 8, antithetic: bool = False,
                    log_jacobian: float | Sequence[float] = 0.0, cancel: Callable[[], bool] | None = None
                    ) -> Iterator[tuple[int, float, float, np.ndarray]]:
    """:func:`elbo_scan` with each point's random part per time stratum, (index, ELBO, stderr, draws (S,)): minus
    the diffusion loss of each stratum (antithetic pairs averaged), nats, whose mean is the ELBO's random part."""
    if x.ndim == 3 and len(x) != len(theta_unit):
        raise ValueError(f"per-theta catalogs {tuple(x.shape)} do not match {len(theta_unit)} theta points")
    t, eps = crn_draws(x.shape[-2], n_noise, seed, antithetic=antithetic)
    xs = x if x.ndim == 3 else x[None]
    with torch.inference_mode():
        fixed = (vdm.reconstruction_loss(xs) + vdm.prior_loss(xs)).double().cpu().numpy()
    fixed = np.broadcast_to(fixed, (len(theta_unit),))  # one value, or one per theta
    log_jac = np.broadcast_to(np.asarray(log_jacobian, dtype=np.float64), (len(theta_unit),))
    for start, diff in diffusion_terms(vdm, x, theta_unit, t, eps, batch_size=batch_size):
        diff = diff.double()
        mean = diff.mean(-1)
        err = stratified_stderr(diff, antithetic=antithetic)
        strata = (0.5 * (diff[..., 0::2] + diff[..., 1::2]) if antithetic else diff).cpu().numpy()
        for j in range(len(mean)):
            i = start + j
            yield i, float(-(fixed[i] + mean[j]) + log_jac[i]), float(err[j]), -strata[j]
        if cancel is not None and cancel():
            raise Cancelled("likelihood scan cancelled")


def difference_stderr(draws: Any, reference: int) -> np.ndarray:
    """(P,) standard errors of log L(theta_p) - log L(theta_reference) (nats) from the points' ``draws``
    ((P, S): :attr:`ScanPoint.draws` of one scan, common random numbers) with :func:`stratified_stderr`'s
    collapsed-strata estimator; 0 at the reference (NaN everywhere with a single stratum). On the built-in model
    the absolute ELBO's error is ~690 nats for 400 halos, the difference to the peak of a profile 0.6-10 nats across
    the prior. Stratified draws (the default): within 0.85-1.2x of the seed-to-seed scatter on the toy test; with
    antithetic pairs the pair means vary so little within a stratum that the collapsed estimator overstates it,
    up to ~3x."""
    d = np.asarray(draws, dtype=np.float64)
    if d.ndim != 2 or not 0 <= reference < len(d):
        raise ParameterError(f"draws must be (P, S) with a reference index in range, got {d.shape}, {reference}")
    return stratified_stderr(torch.from_numpy(d - d[reference])).numpy()


# -------------------------------------------------------------------------------- profiles and grids
def _truth_or_centre(model: DiffusionModel, catalog: HaloCatalog) -> tuple[float, float]:
    lo_hi = model.prior.bounds()
    centre = lo_hi.mean(axis=1)
    om = catalog.omega_m if catalog.omega_m is not None else centre[0]
    s8 = catalog.sigma_8 if catalog.sigma_8 is not None else centre[1]
    return float(om), float(s8)


def profile_grid(model: DiffusionModel, catalog: HaloCatalog, param: str, points: int = 30,
                 other: float | None = None) -> np.ndarray:
    """(P, 2) grid spanning the prior in ``param``, the other parameter at ``other`` (default: the
    catalog's truth, or the prior centre when unknown)."""
    if param not in PARAMS:
        raise ParameterError(f"param must be one of {', '.join(PARAMS)}, got {param!r}")
    if points < 3:
        raise ParameterError(f"a profile needs >= 3 points, got {points}")
    i = PARAMS.index(param)
    base = list(_truth_or_centre(model, catalog))
    if other is not None:
        base[1 - i] = float(other)
    lo, hi = model.prior.bounds()[i]
    grid = np.tile(np.array(base, dtype=np.float64), (points, 1))
    grid[:, i] = np.linspace(lo, hi, points)
    return grid


def profile_1d(model: DiffusionModel, catalog: HaloCatalog, param: str = "omega_m", points: int = 30,
               n_noise: int = DEFAULT_NOISE, seed: int = 0, other: float | None = None,
               cancel: Callable[[], bool] | None = None, **kwargs: Any) -> Iterator[ScanPoint]:
    """ELBO along one parameter over the prior range, the other fixed (truth, or prior centre)."""
    grid = profile_grid(model, catalog, param, points, other)
    return model.scan(catalog, grid, n_noise=n_noise, seed=seed, cancel=cancel, **kwargs)


def grid_2d_axes(model: DiffusionModel, points: int | tuple[int, int] = 15) -> tuple[np.ndarray, np.ndarray]:
    p1, p2 = (points, points) if isinstance(points, int) else points
    b = model.prior.bounds()
    return np.linspace(b[0, 0], b[0, 1], p1), np.linspace(b[1, 0], b[1, 1], p2)


def grid_2d(model: DiffusionModel, catalog: HaloCatalog, points: int | tuple[int, int] = 15,
            n_noise: int = DEFAULT_NOISE, seed: int = 0, cancel: Callable[[], bool] | None = None,
            **kwargs: Any) -> Iterator[ScanPoint]:
    """ELBO on a (P1 x P2) grid over the prior box; ScanPoint.index = i * P2 + j (omega_m index i)."""
    om, s8 = grid_2d_axes(model, points)
    grid = np.array([(a, b) for a in om for b in s8], dtype=np.float64)
    return model.scan(catalog, grid, n_noise=n_noise, seed=seed, cancel=cancel, **kwargs)


# -------------------------------------------------------------------------------- posterior summaries
def _delta(level: float, dof: int) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(level, dof) / 2.0)


def profile_interpolant(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Cubic spline (not-a-knot) through a sorted 1-D profile.

    Not PCHIP: a monotone interpolant puts every maximum exactly on a grid node, so with a likelihood
    narrower than a few grid steps the MAP and the interval ends were quantised to the grid (errors up
    to half a step, 0.007 in sigma_8 for 30 points over the prior). A smooth ELBO profile (common random
    numbers) is well represented by a cubic spline; three points fall back to a parabola.
    """
    from scipy.interpolate import CubicSpline

    if len(x) == 3:
        coef = np.polyfit(x, y, 2)
        return lambda t: np.polyval(coef, t)
    return CubicSpline(x, y, bc_type="not-a-knot")


def summarize_profile(grid_values: Sequence[float], log_likelihood: Sequence[float],
                      levels: Sequence[float] = LEVELS, temperature: float | Tempering = 1.0,
                      box_log_likelihood: Sequence[float] | None = None) -> dict[str, Any]:
    """Posterior summary of a 1-D likelihood profile under a uniform prior on the grid range.

    The profile is interpolated by a cubic spline onto a fine grid (:func:`profile_interpolant`). Returns
    ``map``, ``interval68`` and ``interval95`` (the connected set around the MAP with
    log L >= max - chi2_ppf(p, 1)/2, i.e. Delta = 0.5 and 1.92; an end at the grid edge means the
    interval is cut by the prior: ``truncated68`` / ``truncated95``), ``posterior_mean``,
    ``posterior_std`` and equal-tailed ``credible68`` / ``credible95``. With ``temperature`` T (a
    calibrated model, :func:`calibrate_temperature`) all of it comes from log L / T: Delta becomes T Delta;
    with a :class:`Tempering` from its log L_T (``box_log_likelihood``: the box statistics' part of log L per
    point, needed when it tempers the network's term alone).
    """
    tempering = as_tempering(temperature)
    x = np.asarray(grid_values, dtype=np.float64)
    y = tempering.apply(log_likelihood, box_log_likelihood)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 3:
        raise ParameterError("summarize_profile needs two 1-D arrays of equal length >= 3")
    if not np.all(np.isfinite(y)):
        raise ParameterError("log-likelihood profile has non-finite values")
    order = np.argsort(x)
    x, y = x[order], y[order]
    fine = np.linspace(x[0], x[-1], 4001)
    yf = profile_interpolant(x, y)(fine)
    imax = int(np.argmax(yf))
    out: dict[str, Any] = {"map": float(fine[imax]), "temperature": tempering.temperature}
    if tempering.network_only:
        out["network_temperature"] = tempering.network
    for level in levels:
        tag = f"{round(level * 100):d}"
        thr = yf[imax] - _delta(level, 1)
        lo = imax
        while lo > 0 and yf[lo - 1] >= thr:
            lo -= 1
        hi = imax
        while hi < len(fine) - 1 and yf[hi + 1] >= thr:
            hi += 1
        a = _crossing(fine, yf, lo - 1, lo, thr) if lo > 0 else fine[0]
        b = _crossing(fine, yf, hi, hi + 1, thr) if hi < len(fine) - 1 else fine[-1]
        out[f"interval{tag}"] = [float(a), float(b)]
        out[f"truncated{tag}"] = bool(lo == 0 or hi == len(fine) - 1)
    w = np.exp(yf - yf[imax])
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(fine))])
    cdf /= cdf[-1]
    mean = float(_trapz(w * fine, fine) / _trapz(w, fine))
    out["posterior_mean"] = mean
    out["posterior_std"] = float(math.sqrt(max(_trapz(w * (fine - mean) ** 2, fine) /
                                               _trapz(w, fine), 0.0)))
    for level in levels:
        tag = f"{round(level * 100):d}"
        q = np.interp([(1 - level) / 2, (1 + level) / 2], cdf, fine)
        out[f"credible{tag}"] = [float(q[0]), float(q[1])]
    return out


def truth_deficit(grid_values: Sequence[float], log_likelihood: Sequence[float], truth: float) -> float:
    """max log L - log L(truth) of a 1-D profile (nats), both on the interpolant that
    :func:`summarize_profile` uses; the truth lies in the Delta-interval iff this is <= Delta (for a
    unimodal profile)."""
    x = np.asarray(grid_values, dtype=np.float64)
    y = np.asarray(log_likelihood, dtype=np.float64)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if not x[0] <= truth <= x[-1]:
        raise ParameterError(f"truth {truth} lies outside the profile's range [{x[0]}, {x[-1]}]")
    f = profile_interpolant(x, y)
    top = float(f(np.linspace(x[0], x[-1], 4001)).max())
    return max(top - float(f(truth)), 0.0)


def calibrate_temperature(deficits: Sequence[float], level: float = LEVELS[0], dof: int = 1) -> float:
    """Temperature T that makes ``level`` of the profiles' intervals (``dof`` = 2: 2-D contours) contain the truth.

    ``deficits`` are :func:`truth_deficit` (:func:`truth_deficit_2d`) values of held-out boxes; +inf (a truth
    outside a zoomed grid) counts as beyond every contour. T = quantile_level(deficits) / (chi2_ppf(level, dof)
    / 2): with log L / T, exactly a fraction ``level`` of these boxes has the truth inside its interval. T > 1
    widens over-confident intervals, T < 1 narrows under-confident ones.
    """
    d = np.asarray(deficits, dtype=np.float64)
    if d.ndim != 1 or len(d) < MIN_DEFICITS or np.any(np.isnan(d)) or np.any(d < 0):
        raise ParameterError(f"calibration needs >= {MIN_DEFICITS} truth deficits >= 0")
    if np.all(np.isfinite(d)):
        q = float(np.quantile(d, level))
    else:  # no interpolation toward an infinite deficit: the smallest deficit with a fraction >= level below it
        q = float(np.quantile(d, level, method="inverted_cdf"))
        if not math.isfinite(q):
            raise ParameterError(f"more than {1 - level:.0%} of the truths lie outside the scanned grids")
    return float(max(q, 1e-6) / _delta(level, dof))


def fine_profile_terms(grid_values: Sequence[float], log_likelihood: Sequence[float],
                       box_log_likelihood: Sequence[float]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[Any], Any], Callable[[Any], Any]]:
    """(fine grid, box term on it, network term on it, box spline, network spline) of a 1-D profile with its box
    statistics' term: the interpolants :func:`summarize_profile` and :func:`truth_deficit` use (4,001 points over
    the profile's range). The spline is linear in the data, so log L_T of any :class:`Tempering` on the fine grid
    is box + network / T_net, divided by T."""
    x = np.asarray(grid_values, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    box = np.asarray(box_log_likelihood, dtype=np.float64)
    if x.ndim != 1 or ll.shape != x.shape or box.shape != x.shape or len(x) < 3:
        raise ParameterError("a profile with its box term needs three 1-D arrays of equal length >= 3")
    order = np.argsort(x)
    x, ll, box = x[order], ll[order], box[order]
    f_box, f_net = profile_interpolant(x, box), profile_interpolant(x, ll - box)
    fine = np.linspace(x[0], x[-1], 4001)
    return fine, f_box(fine), f_net(fine), f_box, f_net


def network_tempered_deficits_1d(grid_values: Sequence[float], log_likelihood: Sequence[float],
                                 box_log_likelihood: Sequence[float], truth: float,
                                 network_temperatures: Sequence[float]) -> np.ndarray:
    """(K,): :func:`truth_deficit` of a 1-D profile tempered as box + network / T_net (T = 1) for each of K
    ``network_temperatures``. The box and network terms are interpolated once (:func:`fine_profile_terms`) and
    combined per T_net (the same numbers, K times faster); a T divides these deficits."""
    fine, fine_box, fine_net, f_box, f_net = fine_profile_terms(grid_values, log_likelihood, box_log_likelihood)
    if not fine[0] <= truth <= fine[-1]:
        raise ParameterError(f"truth {truth} lies outside the profile's range [{fine[0]}, {fine[-1]}]")
    at_box, at_net = float(f_box(truth)), float(f_net(truth))
    return np.array([max(float((fine_box + fine_net / float(t)).max()) - (at_box + at_net / float(t)), 0.0)
                     for t in network_temperatures])


#: The T_net values a network tempering is chosen from (``tools/refit_temperature.py --network``): 1-100, 8 % apart.
NETWORK_TEMPERATURES = tuple(float(t) for t in np.geomspace(1.0, 100.0, 61))


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ParameterError(f"temperature must be a positive number, got {temperature!r}")
    return t


def _crossing(x: np.ndarray, y: np.ndarray, i: int, j: int, thr: float) -> float:
    if y[j] == y[i]:
        return float(x[i])
    return float(x[i] + (thr - y[i]) * (x[j] - x[i]) / (y[j] - y[i]))


def grid_interpolant_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray
                        ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Interpolant f(om, s8) of a rectilinear 2-D grid log L[i, j] (omega_m[i], sigma_8[j]), evaluated on the
    outer product of its arguments: a bicubic interpolating spline (lower degree along an axis of < 4 nodes),
    the 2-D counterpart of :func:`profile_interpolant` (a smooth ELBO surface, common random numbers)."""
    from scipy.interpolate import RectBivariateSpline

    om = np.asarray(omega_m, dtype=np.float64)
    s8 = np.asarray(sigma_8, dtype=np.float64)
    spline = RectBivariateSpline(om, s8, np.asarray(log_likelihood, dtype=np.float64),
                                 kx=min(3, len(om) - 1), ky=min(3, len(s8) - 1), s=0)
    return lambda a, b: spline(np.atleast_1d(a), np.atleast_1d(b), grid=True)


def _grid_arrays(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(omega_m, sigma_8, log L) as float arrays; ParameterError unless log L is a finite (P1, P2) grid, P >= 2."""
    om = np.asarray(omega_m, dtype=np.float64)
    s8 = np.asarray(sigma_8, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    if ll.shape != (len(om), len(s8)) or len(om) < 2 or len(s8) < 2:
        raise ParameterError(f"log_likelihood has shape {ll.shape}, expected {(len(om), len(s8))} (>= 2 x 2)")
    if not np.all(np.isfinite(ll)):
        raise ParameterError("log-likelihood grid has non-finite values")
    return om, s8, ll


def tempered_grid_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                     temperature: float | Tempering = 1.0, box_log_likelihood: np.ndarray | None = None
                     ) -> np.ndarray:
    """log L_T on the nodes of a 2-D grid (checked as :func:`_grid_arrays`): the surface summaries, contours and
    zoom windows use. Interpolation is linear in the data, so interpolating log L_T is tempering the interpolant."""
    om, s8, ll = _grid_arrays(omega_m, sigma_8, log_likelihood)
    tempering = as_tempering(temperature)
    box = None
    if tempering.network_only and box_log_likelihood is not None:
        box = np.asarray(box_log_likelihood, dtype=np.float64)
        if box.shape != ll.shape:
            raise ParameterError(f"box log-likelihood has shape {box.shape}, log L {ll.shape}")
        box = box if np.all(np.isfinite(box)) else None  # missing terms: Tempering says what it needs
    return tempering.apply(ll, box)


def fine_grid_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                 points: int = 201) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(omega_m, sigma_8, log L) of :func:`grid_interpolant_2d` on a ``points`` x ``points`` grid spanning the
    original one (for contours and summaries)."""
    om = np.asarray(omega_m, dtype=np.float64)
    s8 = np.asarray(sigma_8, dtype=np.float64)
    fo, fs = np.linspace(om[0], om[-1], points), np.linspace(s8[0], s8[-1], points)
    return fo, fs, grid_interpolant_2d(om, s8, log_likelihood)(fo, fs)


def truth_deficit_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                     truth: Sequence[float]) -> float:
    """max log L - log L(truth) of a 2-D grid on the interpolant :func:`summarize_grid_2d` uses (nats); inf
    when the truth lies outside the grid. The truth is inside the p contour iff this is <= chi2_ppf(p, 2) / 2."""
    om, s8, ll = _grid_arrays(omega_m, sigma_8, log_likelihood)
    if not (om[0] <= truth[0] <= om[-1] and s8[0] <= truth[1] <= s8[-1]):
        return math.inf
    f = grid_interpolant_2d(om, s8, ll)
    top = float(f(np.linspace(om[0], om[-1], 201), np.linspace(s8[0], s8[-1], 201)).max())  # fine_grid_2d's
    return max(top - float(f(truth[0], truth[1])[0, 0]), 0.0)


def truth_profile_deficits_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                              truth: Sequence[float]) -> np.ndarray:
    """(2,): for Omega_m and sigma_8, max - value at the truth of the profile likelihood over the other parameter
    (the 1-D intervals of a 2-D grid, as :func:`summarize_grid_2d` makes them), on the same interpolant (nats; inf
    for a truth outside the grid's range). The truth is in the p interval iff this is <= chi2_ppf(p, 1) / 2."""
    om, s8, ll = _grid_arrays(omega_m, sigma_8, log_likelihood)
    return _profile_deficits_fine(*fine_grid_2d(om, s8, ll), truth)


def _profile_deficits_fine(fo: np.ndarray, fs: np.ndarray, fine: np.ndarray, truth: Sequence[float]) -> np.ndarray:
    out = []
    for axis, (values, t) in enumerate(((fo, truth[0]), (fs, truth[1]))):
        prof = fine.max(axis=1 - axis)  # as summarize_grid_2d: its profile, through truth_deficit's spline
        out.append(truth_deficit(values, prof, t) if values[0] <= t <= values[-1] else math.inf)
    return np.array(out)


def network_tempered_deficits_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                                 box_log_likelihood: np.ndarray, truth: Sequence[float],
                                 network_temperatures: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The truth's deficits of a 2-D grid tempered as box + network / T_net for each of K ``network_temperatures``:
    ((K,) :func:`truth_deficit_2d`, (K, 2) :func:`truth_profile_deficits_2d`) of :func:`tempered_grid_2d`. The
    interpolant is linear in the data, so the box and network terms are interpolated once and combined per T_net
    (the same numbers, K times faster)."""
    om, s8, ll = _grid_arrays(omega_m, sigma_8, log_likelihood)
    box = _grid_arrays(om, s8, box_log_likelihood)[2]
    fo, fs, fine_box = fine_grid_2d(om, s8, box)
    fine_net = fine_grid_2d(om, s8, ll - box)[2]
    inside = om[0] <= truth[0] <= om[-1] and s8[0] <= truth[1] <= s8[-1]
    at_box = at_net = math.nan
    if inside:
        at_box = float(grid_interpolant_2d(om, s8, box)(truth[0], truth[1])[0, 0])
        at_net = float(grid_interpolant_2d(om, s8, ll - box)(truth[0], truth[1])[0, 0])
    d2, dp = [], []
    for t in network_temperatures:
        fine = fine_box + fine_net / float(t)
        d2.append(max(float(fine.max()) - (at_box + at_net / float(t)), 0.0) if inside else math.inf)
        dp.append(_profile_deficits_fine(fo, fs, fine, truth))
    return np.array(d2), np.array(dp)


def summarize_grid_2d(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                      levels: Sequence[float] = LEVELS, temperature: float | Tempering = 1.0,
                      box_log_likelihood: np.ndarray | None = None) -> dict[str, Any]:
    """Summary of a 2-D grid log L[i, j] (omega_m[i], sigma_8[j]) under a uniform prior.

    Everything comes from the tempered surface log L_T (``temperature``: a plain T, log L / T, or a
    :class:`Tempering`, with ``box_log_likelihood`` of the same shape when it tempers the network's term alone;
    :func:`tempered_grid_2d`), interpolated by :func:`grid_interpolant_2d` onto a 201 x 201 grid (so the MAP and
    the intervals are not snapped to the nodes). Returns the MAP, the contour levels of log L_T,
    max - chi2_ppf(p, 2) / 2 (``levels``: 1.15 and 3.00 below its maximum for 68.27 % and 95 %), and for each
    parameter the summary of its profile likelihood (maximum over the other parameter; 1-dof thresholds) and of
    its marginal posterior.
    """
    tempering = as_tempering(temperature)
    om, s8, ll = fine_grid_2d(omega_m, sigma_8, tempered_grid_2d(omega_m, sigma_8, log_likelihood, tempering,
                                                                 box_log_likelihood))
    i, j = np.unravel_index(int(np.argmax(ll)), ll.shape)
    top = float(ll[i, j])
    out: dict[str, Any] = {"map": [float(om[i]), float(s8[j])], "temperature": tempering.temperature,
                           "levels": {f"{round(p * 100):d}": top - _delta(p, 2) for p in levels}}
    if tempering.network_only:
        out["network_temperature"] = tempering.network
    post = np.exp(ll - top)
    for axis, (name, values) in enumerate((("omega_m", om), ("sigma_8", s8))):
        summary = summarize_profile(values, ll.max(axis=1 - axis), levels)  # already tempered
        summary.update({k: v for k, v in out.items() if k.endswith("temperature")})
        marginal = _trapz(post, om if axis == 1 else s8, axis=1 - axis)
        marginal_ll = np.log(np.maximum(marginal, 1e-300))
        summary["marginal"] = {k: v for k, v in summarize_profile(values, marginal_ll, levels).items()
                               if k.startswith(("posterior", "credible"))}
        out[name] = summary
    return out
