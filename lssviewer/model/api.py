"""The public model API (contract: docs/model-api.md): :func:`load_model` and :class:`DiffusionModel`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lssviewer import resources
from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology, PriorBox
from lssviewer.errors import CatalogError, FormatError, LssviewerError, ParameterError
from lssviewer.model import checkpoint
from lssviewer.model.data import theta_to_unit
from lssviewer.model.features import FeatureTransform, box_statistics, catalog_to_raw, raw_to_physical
from lssviewer.model.likelihood import DEFAULT_NOISE, ScanPoint, Tempering, elbo_scan_draws
from lssviewer.model.network import NetworkConfig
from lssviewer.model.sampler import FINALS, SAMPLERS, SPACINGS, sample
from lssviewer.model.vdm import VDM

#: Where the built-in model is looked for (resources/ of a checkout, or lssviewer._resources of a wheel).
DEFAULT_MODEL_DIRS = (resources.default_model_dir(),)


def default_device() -> str:
    """"cuda" if available, else "mps", else "cpu"."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def default_model_dir() -> Path:
    """The directory of the built-in model; LssviewerError when none is installed."""
    for d in DEFAULT_MODEL_DIRS:
        if (d / checkpoint.MODEL_JSON).is_file():
            return d
    raise LssviewerError(
        f"no trained default model is installed (looked in {DEFAULT_MODEL_DIRS[-1]}); train one with "
        "'lssviewer train --data suite.h5 --out runs/NAME' and pass '--model runs/NAME' (or copy its "
        "model.json and model.safetensors into that folder)")


def load_model(path: str | os.PathLike[str] | None = None, device: str | None = None) -> DiffusionModel:
    """Open a model directory (``None``: the built-in model) on ``device`` (``None``: automatic).

    Raises LssviewerError (one line, naming the path) for a missing, corrupt or incompatible checkpoint.
    """
    directory = default_model_dir() if path is None else Path(path)
    meta, weights = checkpoint.load_model_files(directory)
    try:
        vdm = build_vdm(meta)
        vdm.load_state_dict(weights, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise FormatError(f"checkpoint does not match its architecture ({' '.join(str(exc).split())[:160]})",
                          directory) from None
    try:
        card = checkpoint.read_card(directory)
    except FormatError:
        card = None
    return DiffusionModel(vdm, meta, device=device or default_device(), card=card, path=directory)


def build_vdm(meta: dict[str, Any]) -> VDM:
    """An untrained VDM with the architecture described in a model.json dict."""
    arch = meta["architecture"]
    sched = arch["schedule"]
    return VDM(NetworkConfig.from_dict(arch["network"]), gamma_min=float(sched["gamma_min"]),
               gamma_max=float(sched["gamma_max"]), schedule=str(sched["kind"]),
               learn_endpoints=bool(sched.get("learn_endpoints", False)))


class DiffusionModel:
    """A trained p(catalog | Omega_m, sigma_8): sampling and likelihood scans.

    Attributes:
        prior: the prior box of (Omega_m, sigma_8) it was trained on.
        n_halos: halos per catalog; box_size [Mpc/h]; redshift.
        device: torch device string; card: model card dict; default_steps: sampler steps when None.
        temperature: likelihood calibration T (model.json ``calibration``; 1 when absent): posterior
            summaries use log L / T, i.e. intervals where log L >= max - T * chi2_ppf(p, dof) / 2
            (:func:`lssviewer.model.likelihood.calibrate_temperature`); 2-D grids use it unless the calibration has
            a ``grid_temperature``.
        grid_temperature: ``calibration.grid_temperature`` (None when absent): the T of 2-D grids, fitted on the
            truth's 2-D deficits of held-out boxes (``tools/refit_temperature.py --grid``, from
            ``benchmarks/bench_coverage_2d.py``); see :meth:`grid_temperature_or_pooled`.
        network_temperature: ``calibration.network_temperature`` (None when absent): T_net of the network's term
            of log L, tempered apart from the box statistics' Gaussian (:class:`~lssviewer.model.likelihood.Tempering`);
            2-D grids then use [box + network / T_net] / grid_temperature, the two fitted together
            (:meth:`grid_tempering`; ``tools/refit_temperature.py --grid --network``).
        profile_temperatures: {param: T} (``calibration.profile_temperatures``; empty when absent): a 1-D
            profile over ``param`` uses its own T, fitted on that parameter's held-out deficits alone
            (``tools/refit_temperature.py --per-parameter``); see :meth:`profile_temperature`.
        profile_temperings: {param: Tempering} (``calibration.profile_tempering``, {param: {temperature,
            network_temperature}}; empty when absent): a 1-D profile over ``param`` uses [box + network / T_net] / T,
            T fitted per parameter with the network's term tempered (``tools/refit_temperature.py --network
            --profiles``); takes precedence over ``profile_temperatures``: see :meth:`profile_tempering`.
        fixed_cosmology: omega_b, h, n_s of the training suite; transform: feature standardisation.
    """

    def __init__(self, vdm: VDM, meta: dict[str, Any], device: str = "cpu", card: dict[str, Any] | None = None,
                 path: str | os.PathLike[str] | None = None):
        try:
            self.prior = PriorBox.from_dict(meta["prior"])
            self.n_halos = int(meta["n_halos"])
            self.box_size = float(meta["box_size"])
            self.redshift = float(meta["redshift"])
            self.transform = FeatureTransform.from_dict(meta["features"])
            self.fixed_cosmology = {k: float(v) for k, v in meta.get("fixed_cosmology", {}).items()}
            sampler_meta = meta.get("sampler", {})
            self.default_steps = int(sampler_meta.get("default_steps", 25))
            self.sampler = str(sampler_meta.get("method", "dpm2"))
            # checkpoints written before the final denoising step existed keep their decoder-mean output
            self.sampler_final = str(sampler_meta.get("final", "decoder_mean"))
            if self.sampler_final not in FINALS:
                raise ValueError(f"sampler final step {self.sampler_final!r}")
            self.sampler_spacing = str(sampler_meta.get("spacing", "time"))
            if self.sampler_spacing not in SPACINGS:
                raise ValueError(f"sampler step spacing {self.sampler_spacing!r}")
            calibration = meta.get("calibration", {})
            self.temperature = float(calibration.get("temperature", 1.0))
            if not (np.isfinite(self.temperature) and self.temperature > 0):
                raise ValueError(f"calibration temperature {self.temperature}")
            self.profile_temperatures = {str(k): float(v)
                                         for k, v in calibration.get("profile_temperatures", {}).items()}
            for name, t in self.profile_temperatures.items():
                if name not in ("omega_m", "sigma_8") or not (np.isfinite(t) and t > 0):
                    raise ValueError(f"calibration profile temperature {name}: {t}")
            grid_t = calibration.get("grid_temperature")
            self.grid_temperature = None if grid_t is None else float(grid_t)
            if self.grid_temperature is not None and not (np.isfinite(self.grid_temperature)
                                                          and self.grid_temperature > 0):
                raise ValueError(f"calibration grid temperature {self.grid_temperature}")
            net_t = calibration.get("network_temperature")
            self.network_temperature = None if net_t is None else float(net_t)
            if self.network_temperature is not None and not (np.isfinite(self.network_temperature)
                                                             and self.network_temperature > 0
                                                             and self.transform.per_box):
                raise ValueError(f"calibration network temperature {self.network_temperature} (needs a finite "
                                 "positive value and a box-standardised model)")
            self.profile_temperings = {}
            for name, pair in calibration.get("profile_tempering", {}).items():
                t, t_net = float(pair["temperature"]), float(pair["network_temperature"])
                if name not in ("omega_m", "sigma_8") or not (np.isfinite(t) and t > 0 and np.isfinite(t_net)
                                                              and t_net > 0 and self.transform.per_box):
                    raise ValueError(f"calibration profile tempering {name}: {pair} (needs finite positive values "
                                     "and a box-standardised model)")
                self.profile_temperings[str(name)] = Tempering(temperature=t, network=t_net)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"model.json lacks or garbles {exc}", path) from None
        self.meta = meta
        self.path = None if path is None else Path(path)
        try:
            self.device = str(torch.device(device))
            self.vdm = vdm.to(self.device).eval()
        except (RuntimeError, AssertionError) as exc:
            raise ParameterError(f"cannot use device {device!r} ({' '.join(str(exc).split())[:120]})") from None
        self.card = card if card is not None else self._basic_card()

    def _basic_card(self) -> dict[str, Any]:
        return {"name": self.path.name if self.path else "model", "n_halos": self.n_halos,
                "box_size": self.box_size, "redshift": self.redshift, "prior": self.prior.to_dict(),
                "training": self.meta.get("training", {}), "data": self.meta.get("data", {}),
                "validation": "not measured (no card.json)"}

    def __repr__(self) -> str:
        return (f"DiffusionModel(n_halos={self.n_halos}, box={self.box_size:g} Mpc/h, z={self.redshift:g}, "
                f"device={self.device!r})")

    # ------------------------------------------------------------------------------------- checks
    def profile_temperature(self, param: str) -> float:
        """Calibration temperature of all of log L in a 1-D profile over ``param`` ("omega_m" or "sigma_8"): the
        parameter's own (``profile_temperatures``) when the calibration has one, else the pooled
        :attr:`temperature`. A calibration with a :attr:`profile_temperings` pair for ``param`` takes precedence:
        1-D profiles ask :meth:`profile_tempering`.

        One pooled T cannot calibrate both parameters when one is over-confident and the other under-confident
        (the built-in model: docs/model.md, "The shipped default model"); 2-D grids use :meth:`grid_tempering`.
        """
        return self.profile_temperatures.get(param, self.temperature)

    def profile_tempering(self, param: str) -> Tempering:
        """How a 1-D profile over ``param`` tempers log L: the parameter's [box + network / T_net] / T
        (:attr:`profile_temperings`) when the calibration has one, else log L / :meth:`profile_temperature`."""
        own = self.profile_temperings.get(param)
        return own if own is not None else Tempering(temperature=self.profile_temperature(param))

    def grid_temperature_or_pooled(self) -> float:
        """Calibration temperature of a 2-D grid over (Omega_m, sigma_8): :attr:`grid_temperature` when the
        calibration has one, else the pooled :attr:`temperature`. With a :attr:`network_temperature` the grid
        temperature belongs with it (it divides box + network / T_net, not log L): use :meth:`grid_tempering`.

        A 1-D profile holds the other parameter at its true value; a 2-D grid lets the peak slide along the
        Omega_m-sigma_8 degeneracy, where the built-in model is biased and far more over-confident than its
        profiles show (docs/model.md, "2-D grids"), so it needs its own T, fitted on 2-D deficits.
        """
        return self.temperature if self.grid_temperature is None else self.grid_temperature

    def grid_tempering(self) -> Tempering:
        """How 2-D grids temper log L: when the calibration has a :attr:`network_temperature`, [box + network /
        T_net] / T with T the :attr:`grid_temperature` fitted together with it (1 when absent); else log L / T with
        :meth:`grid_temperature_or_pooled`."""
        if self.network_temperature is not None:  # the grid temperature was fitted together with it (or none)
            return Tempering(temperature=self.grid_temperature or 1.0, network=self.network_temperature)
        return Tempering(temperature=self.grid_temperature_or_pooled())

    def check_theta(self, omega_m: float, sigma_8: float, allow_extrapolation: bool = False) -> None:
        """ParameterError unless (omega_m, sigma_8) is finite and (unless allowed) inside the prior box."""
        if not (np.isfinite(omega_m) and np.isfinite(sigma_8)):
            raise ParameterError(f"(omega_m={omega_m}, sigma_8={sigma_8}) is not finite")
        if not allow_extrapolation:
            try:
                self.prior.check(float(omega_m), float(sigma_8))
            except ParameterError as exc:
                raise ParameterError(f"{exc.message}; the model was trained there only "
                                     "(allow_extrapolation / --allow-extrapolation to go outside)") from None

    def check_catalog(self, catalog: HaloCatalog) -> None:
        """CatalogError if the catalog's N, box or redshift differ from the model's."""
        if catalog.n_halos != self.n_halos:
            raise CatalogError(f"catalog has {catalog.n_halos} halos but the model scores exactly {self.n_halos} "
                               f"(cut it to its {self.n_halos} most massive halos first, e.g. --most-massive)")
        if not np.isclose(catalog.box_size, self.box_size, rtol=1e-6):
            raise CatalogError(f"catalog box is {catalog.box_size:g} Mpc/h, the model's is {self.box_size:g} Mpc/h")
        if abs(catalog.redshift - self.redshift) > 1e-6:
            raise CatalogError(f"catalog is at z = {catalog.redshift:g}, the model at z = {self.redshift:g}")

    def _standardised(self, catalog: HaloCatalog, theta_unit: np.ndarray | None = None) -> torch.Tensor:
        """(N, 7), or (P, N, 7) for a model with theta-dependent standardisation at theta_unit (P, 2)."""
        self.check_catalog(catalog)
        raw = catalog_to_raw(catalog)
        if self.transform.theta_dependent:
            x = self.transform.standardise(np.broadcast_to(raw, (len(theta_unit), *raw.shape)), theta_unit)
        else:
            x = self.transform.standardise(raw)
        worst, limit = float(np.abs(x[..., 3:] / self.transform.spreads).max()), 50.0
        if self.transform.per_box:  # scale-free standardisation: judge the box statistics against the prior box
            worst, limit = self._box_outlier(raw), 20.0  # held-out boxes of the built-in suite: < 5
        if worst > limit:
            raise CatalogError(f"catalog velocities or masses lie {worst:.0f} standard deviations from the "
                               "training data (units? masses must be Msun/h, velocities km/s)")
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _box_outlier(self, raw: np.ndarray, points: int = 9) -> float:
        """How many standard deviations of their scatter a catalog's box statistics lie from those of the
        closest cosmology of a points x points grid over the prior box (max over the three statistics)."""
        g = np.linspace(0.0, 1.0, points)
        grid = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
        z = (box_statistics(raw) - self.transform.box_mean(grid)) / self.transform.box_sd(grid)
        return float(np.abs(z).max(axis=-1).min())

    @property
    def scan_batch_size(self) -> int:
        """Network evaluations per forward pass of a likelihood scan on this model's device."""
        return 8 if self.device == "cpu" else 256

    def _theta_unit(self, theta: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(theta_to_unit(theta, self.prior), dtype=torch.float32, device=self.device)

    def cosmology(self, omega_m: float, sigma_8: float) -> Cosmology:
        return Cosmology(omega_m=float(omega_m), sigma_8=float(sigma_8), **self.fixed_cosmology)

    def _physical(self, x: torch.Tensor, theta_unit: torch.Tensor | None = None,
                  box: np.ndarray | None = None) -> np.ndarray:
        th = None if theta_unit is None else theta_unit.detach().to("cpu", torch.float64).numpy()
        raw = self.transform.unstandardise(x.detach().to("cpu", torch.float64).numpy(), th, box)
        return raw_to_physical(raw, self.box_size)

    # ------------------------------------------------------------------------------------- sampling
    def sample(self, omega_m: float, sigma_8: float, n: int = 1, seed: int = 0, steps: int | None = None,
               progress: Callable[[int, int, np.ndarray], None] | None = None,
               cancel: Callable[[], bool] | None = None, allow_extrapolation: bool = False,
               method: str | None = None, final: str | None = None,
               spacing: str | None = None) -> list[HaloCatalog]:
        """Draw ``n`` catalogs at (omega_m, sigma_8).

        ``progress(step, total, state)`` receives after each step the current denoised estimate as a
        float32 array (n, n_halos, 7): x, y, z [Mpc/h, wrapped into the box], vx, vy, vz [km/s],
        log10 M [Msun/h]. ``cancel() -> True`` aborts with :class:`Cancelled`. Same seed, same catalogs.
        ``method``: ``"dpm2"``, ``"ddim"`` or ``"ancestral"`` (default: the checkpoint's). ``final``:
        ``"denoise"`` (one more network evaluation at t = 0 returns its estimate of the clean catalog) or
        ``"decoder_mean"`` (z_0 / alpha_0, which keeps the last latent's noise; :func:`sampler.sample`);
        default: the checkpoint's (``"decoder_mean"`` for checkpoints that name none). ``spacing``: the steps
        uniform in ``"time"`` or in ``"logsnr"`` (default: the checkpoint's; ``"time"`` for checkpoints that name
        none).
        """
        self.check_theta(omega_m, sigma_8, allow_extrapolation)
        n = int(n)
        if n < 1:
            raise ParameterError(f"n must be >= 1, got {n}")
        steps = self.default_steps if steps is None else int(steps)
        if steps < 1:
            raise ParameterError(f"steps must be >= 1, got {steps}")
        method = method or self.sampler
        if method not in SAMPLERS:
            raise ParameterError(f"unknown sampler {method!r} (choose from {', '.join(SAMPLERS)})")
        final = final or self.sampler_final
        if final not in FINALS:
            raise ParameterError(f"unknown final step {final!r} (choose from {', '.join(FINALS)})")
        spacing = spacing or self.sampler_spacing
        if spacing not in SPACINGS:
            raise ParameterError(f"unknown step spacing {spacing!r} (choose from {', '.join(SPACINGS)})")
        theta = self._theta_unit(np.tile([float(omega_m), float(sigma_8)], (n, 1)))
        gen = torch.Generator().manual_seed(int(seed))
        box = None
        if self.transform.per_box:  # the box statistics first (their own stream), then the standardised catalog
            unit = theta_to_unit(np.tile([float(omega_m), float(sigma_8)], (n, 1)), self.prior)  # float64
            box = self.transform.draw_box_statistics(unit, np.random.default_rng(int(seed)))
        callback = None
        if progress is not None:
            def callback(step: int, total: int, x_hat: torch.Tensor) -> None:
                progress(step, total, self._physical(x_hat, theta, box).astype(np.float32))
        x = sample(self.vdm, theta, self.n_halos, steps, gen, method=method, callback=callback, cancel=cancel,
                   final=final, spacing=spacing)
        if box is not None:  # onto the exactly standardised catalogs (on the CPU: MPS has no float64)
            x = self.transform.project(x.detach().to("cpu", torch.float64), standardised=True)
        phys = self._physical(x, theta, box)
        if not np.all(np.isfinite(phys)):
            raise LssviewerError("the sampler produced non-finite values (diverged model?)", self.path)
        cosmo = self.cosmology(omega_m, sigma_8)
        out = []
        for i in range(n):
            prov = {"generator": "lssviewer.model", "model": str(self.path) if self.path else None,
                    "model_sha256": self.meta.get("weights_sha256"), "seed": int(seed), "index": i,
                    "steps": steps, "sampler": method, "final": final, "spacing": spacing,
                    "omega_m": float(omega_m), "sigma_8": float(sigma_8)}
            log_m = np.clip(phys[i, :, 6], -30.0, 30.0)
            out.append(HaloCatalog(positions=phys[i, :, :3], velocities=phys[i, :, 3:6], masses=10.0**log_m,
                                   box_size=self.box_size, redshift=self.redshift, cosmology=cosmo,
                                   name=f"sample {i} (omega_m={omega_m:g}, sigma_8={sigma_8:g}, seed={seed})",
                                   provenance=prov))
        return out

    # ------------------------------------------------------------------------------------- likelihood
    def scan(self, catalog: HaloCatalog, grid: Any, n_noise: int = DEFAULT_NOISE, seed: int = 0,
             cancel: Callable[[], bool] | None = None, allow_extrapolation: bool = False,
             batch_size: int | None = None, antithetic: bool = False) -> Iterator[ScanPoint]:
        """Yield a :class:`ScanPoint` per row of ``grid`` ((P, 2) of (omega_m, sigma_8)) as points finish.

        The same noise draws and times (from ``seed``) are used at every grid point (common random
        numbers). ``log_likelihood`` is the ELBO in nats of the density of (x, y, z [Mpc/h],
        vx, vy, vz [km/s], log10 M [dex]) (box-standardised models: plus the box statistics' Gaussian, up to
        a theta-independent constant; docs/model.md). ``n_noise`` draws at as many stratified times (default), or
        with ``antithetic`` n_noise / 2 times each used with eps and -eps. Stratified is the default:
        on the built-in model v0.2 the MAP of a 30-point profile scattered between seeds by 0.037 in sigma_8
        (0.0065 in Omega_m) with 8 antithetic draws, 0.0070 (0.0041) with 8 stratified ones and 0.0028
        (0.0024) with 16 (``benchmarks/bench_scan_estimators.py``, 8 held-out boxes): the
        theta-dependent part of the loss sits at log-SNR -4..4, which 4 times resolve poorly, whereas
        the odd-in-eps noise that antithetic pairs cancel matters mainly for near-Gaussian toy data.
        """
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim == 1 and grid.shape == (2,):
            grid = grid[None]
        if grid.ndim != 2 or grid.shape[1] != 2 or len(grid) == 0:
            raise ParameterError(f"grid must have shape (P, 2) of (omega_m, sigma_8), got {grid.shape}")
        for om, s8 in grid:
            self.check_theta(om, s8, allow_extrapolation)
        theta_unit = theta_to_unit(grid, self.prior)
        x = self._standardised(catalog, theta_unit)
        if batch_size is None:
            batch_size = self.scan_batch_size
        log_jac = self.transform.log_density_terms(catalog_to_raw(catalog), theta_unit)
        box_ll = self.box_log_likelihood(catalog, grid)

        def generate() -> Iterator[ScanPoint]:
            th = torch.as_tensor(theta_unit, dtype=torch.float32, device=self.device)
            for i, ll, err, draws in elbo_scan_draws(self.vdm, x, th, n_noise=n_noise, seed=seed,
                                                     batch_size=batch_size, antithetic=antithetic,
                                                     log_jacobian=log_jac, cancel=cancel):
                yield ScanPoint(index=i, theta=(float(grid[i, 0]), float(grid[i, 1])), log_likelihood=ll,
                                stderr=err, box_log_likelihood=None if box_ll is None else float(box_ll[i]),
                                draws=tuple(float(v) for v in draws))

        return generate()

    def box_log_likelihood(self, catalog: HaloCatalog, grid: Any) -> np.ndarray | None:
        """(P,) the box statistics' Gaussian at ``grid`` ((P, 2) of (omega_m, sigma_8)) in nats: the part of
        :meth:`scan`'s log L that is analytic in theta for a box-standardised model (the rest is the network's);
        None for a model without per-box standardisation."""
        if not self.transform.per_box:
            return None
        unit = theta_to_unit(np.asarray(grid, dtype=np.float64).reshape(-1, 2), self.prior)
        raw = np.asarray(catalog_to_raw(catalog), dtype=np.float64)
        return np.asarray(self.transform.box_log_prob(box_statistics(raw), unit))

    def log_likelihood(self, catalog: HaloCatalog, omega_m: float, sigma_8: float, n_noise: int = DEFAULT_NOISE,
                       seed: int = 0, allow_extrapolation: bool = False) -> tuple[float, float]:
        """(ELBO, stderr) at one point, in nats."""
        pt = next(iter(self.scan(catalog, [[omega_m, sigma_8]], n_noise=n_noise, seed=seed,
                                 allow_extrapolation=allow_extrapolation)))
        return pt.log_likelihood, pt.stderr
