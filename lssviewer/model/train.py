"""Training loop: AdamW, linear warm-up + cosine decay, gradient clipping, EMA weights, validation
ELBO on held-out boxes, CSV metrics, periodic atomic checkpoints, bit-exact resume, and DDP.

Use from the command line (``lssviewer train --data suite.h5 --out runs/NAME [--config cfg.toml]
[--resume]``) or from Python (:func:`train`). Several GPUs: ``torchrun --nproc-per-node 4 -m
lssviewer train ...`` (each process takes a slice of the same global batch; rank 0 writes).

Configuration files are TOML (read with ``tomllib`` on Python >= 3.11, ``tomli`` if installed on
3.10, else a small built-in reader for the flat subset we use: ``[section]`` headers and
``key = number | "string" | true/false``) or JSON. Keys are the fields of :class:`TrainConfig`;
the network architecture goes in a ``[network]`` table (fields of
:class:`~lssviewer.model.network.NetworkConfig`) and the prior box in a ``[prior]`` table
(``omega_m = [0.1, 0.5]``).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, PriorBox
from lssviewer.errors import LssviewerError, ParameterError
from lssviewer.model import checkpoint
from lssviewer.model.data import (
    BatchSource,
    Suite,
    check_suite_in_prior,
    features_sha256,
    load_suite,
    split_indices,
    suite_from_catalogs,
    theta_to_unit,
    warm_start_split,
)
from lssviewer.model.features import FeatureTransform
from lssviewer.model.likelihood import crn_draws, diffusion_terms
from lssviewer.model.network import NetworkConfig, count_parameters
from lssviewer.model.sampler import FINALS, SAMPLERS, SPACINGS
from lssviewer.model.vdm import VDM, low_discrepancy_times

METRIC_FIELDS = ("step", "wall_s", "lr", "loss", "reconstruction", "prior", "diffusion", "grad_norm",
                 "steps_per_s", "val_nelbo_per_dim", "val_elbo_per_halo")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training configuration (every field can be set in the TOML/JSON config file).

    Loss values are per dimension (nats / (7 N)) in standardised units.
    """

    # data
    n_halos: int | None = None  # keep the n most massive halos of each box (None: all; equal N needed)
    val_fraction: float = 0.1  # boxes held out for validation
    val_boxes: int = 16  # held-out boxes used by the periodic validation ELBO
    val_noise: int = 16  # noise draws per validation box (fixed per box: common random numbers over time)
    prior: PriorBox = DEFAULT_PRIOR
    # 0: fixed standardisation; d > 0: velocity std and log-mass mean/std as degree-d polynomials of theta
    # (lssviewer.model.features: the mass scale and sigma_v at theta become exact and explicit)
    feature_theta_degree: int = 0
    # box standardisation (needs feature_theta_degree >= 1): each box by its own mass mean/spread and velocity
    # rms, whose distribution given theta (polynomial mean, box-to-box covariance) is part of the model
    feature_per_box: bool = False
    # their scatter: log standard deviations as polynomials of this degree in theta (0: constant)
    feature_box_sd_degree: int = 1
    # standard deviations of the standardised velocities / log masses (positions: 1). Below 1 the reverse process
    # settles them later than the positions, conditioned on formed structure (docs/model.md, "Feature scales")
    feature_velocity_scale: float = 1.0
    feature_mass_scale: float = 1.0
    # model
    network: NetworkConfig = NetworkConfig()
    gamma_min: float = -10.0
    gamma_max: float = 8.0
    schedule: str = "learned"  # "learned" (monotone net, variance-minimising) or "linear"
    learn_endpoints: bool = False
    # warm start: a model directory whose weights (and feature standardisation) start the run; the
    # architecture must match except for new zero-initialised parts (e.g. network.relative_phases), so the
    # run starts from exactly that model's function
    init_from: str = ""
    # with init_from: train only the new parts (the source's weights stay frozen; an adapter fine-tune that
    # cannot move the source's function except through the new parts)
    train_new_only: bool = False
    # optimisation
    steps: int = 20000
    batch_size: int = 8  # global batch (split over DDP ranks)
    lr: float = 3e-4
    min_lr: float = 1e-5
    warmup: int = 1000
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 0.5
    ema_decay: float = 0.999
    # augmentation (periodic box)
    augment_symmetries: bool = True  # the 48 symmetries of the cube
    augment_shifts: bool = True  # random periodic translations
    # bookkeeping
    seed: int = 0
    log_every: int = 50
    val_every: int = 1000
    ckpt_every: int = 500
    # sampler defaults stored in the checkpoint
    sample_steps: int = 50
    sampler: str = "dpm2"  # "dpm2" (DPM-Solver++(2M)), "ddim" or "ancestral"
    sample_final: str = "denoise"  # "denoise" (one network evaluation at t = 0) or "decoder_mean" (z_0 / alpha_0)
    sample_spacing: str = "logsnr"  # steps uniform in "logsnr" or in "time"
    # performance
    device: str = "auto"  # auto: cuda, mps, cpu
    precision: str = "fp32"  # "fp32" or "bf16" (autocast; CUDA)
    compile: bool = False  # torch.compile the model

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0"),
            (self.warmup >= 0, "warmup must be >= 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.val_noise >= 2, "val_noise must be >= 2"),
            (0 <= self.feature_theta_degree <= 6, "feature_theta_degree must be in 0..6"),
            (not self.feature_per_box or self.feature_theta_degree >= 1,
             "feature_per_box needs feature_theta_degree >= 1"),
            (0 <= self.feature_box_sd_degree <= 3, "feature_box_sd_degree must be in 0..3"),
            (all(math.isfinite(v) and v > 0 for v in (self.feature_velocity_scale, self.feature_mass_scale)),
             "feature_velocity_scale and feature_mass_scale must be > 0"),
            (self.schedule in ("learned", "linear"), "schedule must be 'learned' or 'linear'"),
            (self.precision in ("fp32", "bf16"), "precision must be 'fp32' or 'bf16'"),
            (self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}"),
            (self.sample_final in FINALS, f"sample_final must be one of {', '.join(FINALS)}"),
            (self.sample_spacing in SPACINGS, f"sample_spacing must be one of {', '.join(SPACINGS)}"),
            (self.gamma_min < self.gamma_max, "gamma_min must be < gamma_max"),
            (not self.train_new_only or bool(self.init_from), "train_new_only needs init_from"),
            (self.network.d_model % self.network.n_heads == 0, "network.d_model must be divisible by n_heads"),
            (min(self.log_every, self.val_every, self.ckpt_every, self.sample_steps) >= 1,
             "log_every, val_every, ckpt_every and sample_steps must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ParameterError(f"bad training config: {msg}")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["network"] = self.network.to_dict()
        d["prior"] = self.prior.to_dict()
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ParameterError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            try:
                if key == "network":
                    kwargs[key] = NetworkConfig.from_dict(value)
                elif key == "prior":
                    kwargs[key] = PriorBox.from_dict(value)
                elif key == "n_halos":
                    kwargs[key] = None if value is None else int(value)
                else:
                    default = fields[key].default
                    kwargs[key] = type(default)(value) if not isinstance(default, bool) else _as_bool(value)
            except (TypeError, ValueError, KeyError) as exc:
                raise ParameterError(f"bad value for training option {key!r}: {exc}") from None
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected true/false, got {value!r}")


# ------------------------------------------------------------------------------------------ config files
def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Read a TOML or JSON training config (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LssviewerError(f"cannot read config ({exc.strerror})", path) from None
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            values = parse_toml(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ParameterError(f"cannot parse config: {exc}", path) from None
    try:
        return TrainConfig.from_dict(values)
    except ParameterError as exc:
        raise exc.with_path(path) from None


def parse_toml(text: str) -> dict[str, Any]:
    """TOML -> dict via tomllib / tomli, or the built-in reader of the flat subset."""
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            return _parse_toml_subset(text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(str(exc)) from None


def _parse_toml_subset(text: str) -> dict[str, Any]:
    """``[table]`` headers and ``key = value`` lines (numbers, strings, booleans, flat arrays)."""
    out: dict[str, Any] = {}
    table = out
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip() if '"' not in line else line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            table = out.setdefault(line[1:-1].strip(), {})
            continue
        if "=" not in line:
            raise ValueError(f"line {n}: expected key = value")
        key, value = (s.strip() for s in line.split("=", 1))
        table[key] = _toml_value(value, n)
    return out


def _toml_value(value: str, n: int) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    if value.startswith("[") and value.endswith("]"):
        return [_toml_value(v.strip(), n) for v in value[1:-1].split(",") if v.strip()]
    try:
        return int(value.replace("_", ""))
    except ValueError:
        try:
            return float(value.replace("_", ""))
        except ValueError:
            raise ValueError(f"line {n}: cannot read value {value!r}") from None


# ------------------------------------------------------------------------------------------ helpers
def choose_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up from 0 to lr over ``warmup`` steps, then cosine decay to ``min_lr`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    frac = min((step - cfg.warmup) / span, 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * frac))


def build_model(cfg: TrainConfig) -> VDM:
    return VDM(cfg.network, gamma_min=cfg.gamma_min, gamma_max=cfg.gamma_max, schedule=cfg.schedule,
               learn_endpoints=cfg.learn_endpoints)


def model_meta(cfg: TrainConfig, suite: Suite, transform: FeatureTransform, train_idx: np.ndarray,
               val_idx: np.ndarray, step: int, wall_s: float, device: str, world: int) -> dict[str, Any]:
    """The model.json content (everything but the weights)."""
    return {
        "architecture": {
            "network": cfg.network.to_dict(),
            "schedule": {"kind": cfg.schedule, "gamma_min": cfg.gamma_min, "gamma_max": cfg.gamma_max,
                         "learn_endpoints": cfg.learn_endpoints},
        },
        "features": transform.to_dict(),
        "n_halos": suite.n_halos,
        "box_size": suite.box_size,
        "redshift": suite.redshift,
        "prior": cfg.prior.to_dict(),
        "fixed_cosmology": suite.fixed_cosmology,
        "sampler": {"method": cfg.sampler, "default_steps": cfg.sample_steps, "final": cfg.sample_final,
                    "spacing": cfg.sample_spacing},
        "data": {**suite.provenance, "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
                 "val_indices": [int(i) for i in val_idx]},
        "training": {"step": step, "wall_time_s": round(wall_s, 1), "device": device, "processes": world,
                     "config": cfg.to_dict()},
        "code": {"lssviewer_version": _version(), "git_commit": checkpoint.git_commit()},
    }


def _version() -> str:
    from lssviewer._version import __version__

    return __version__


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, the final step and the last metrics."""

    out: Path
    step: int
    metrics: dict[str, float]
    stopped_early: bool = False


class _EMA:
    def __init__(self, model: VDM, decay: float):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: VDM, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        # frozen parameters (train_new_only) are left alone: d x + (1 - d) x is not always x in floats
        pairs = [(e, q.detach()) for e, q in zip(self.model.parameters(), model.parameters(), strict=True)
                 if q.requires_grad]
        ema_p = [e for e, _ in pairs]
        p = [q for _, q in pairs]
        torch._foreach_mul_(ema_p, d)
        torch._foreach_add_(ema_p, p, alpha=1.0 - d)


@torch.no_grad()
def validation_elbo(vdm: VDM, x_val: torch.Tensor, theta_val: torch.Tensor, n_noise: int, seed: int,
                    batch_size: int = 32) -> float:
    """Mean negative ELBO per dimension (nats, standardised units) of held-out boxes at their true theta.

    Uses fixed times and noise (from ``seed``) so that values at different steps are comparable, with different
    draws for each box (``seed + b``): the error of a few stratified times is common to all boxes that share them
    and does not average out. With one set of 8 times for all boxes, the difference between two checkpoints of the
    built-in model's run was off by up to +-45 nats per box, depending on the seed, and picked the worse one as
    "best" (docs/model.md, "Choosing the checkpoint"); with per-box draws the errors average over the boxes.
    """
    total = 0.0
    for b in range(len(x_val)):
        x = x_val[b]
        t, eps = crn_draws(x_val.shape[1], n_noise, seed + b)
        fixed = (vdm.reconstruction_loss(x[None]) + vdm.prior_loss(x[None])).item()
        for _, diff in diffusion_terms(vdm, x, theta_val[b:b + 1], t, eps, batch_size=batch_size):
            total += fixed + float(diff.double().mean())
    return total / (len(x_val) * x_val[0].numel())


def _dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank); initialises the process group under torchrun if needed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
        return dist.get_rank(), dist.get_world_size(), local
    return 0, 1, 0


# ------------------------------------------------------------------------------------------ the loop
def train(data: str | os.PathLike[str] | Sequence[HaloCatalog] | Suite, out: str | os.PathLike[str],
          config: TrainConfig | None = None, resume: bool = False, stop_after: int | None = None,
          progress: bool = True, time_limit: float | None = None) -> TrainResult:
    """Train (or resume) a model on a suite; writes the run directory ``out``.

    Args:
        data: path of a native HDF5 suite, a list of HaloCatalog, or a :class:`Suite`.
        out: run directory (model.json/.safetensors, train_state.*, metrics.csv, config.json).
        config: training configuration (default :class:`TrainConfig`); on resume the saved one is
            used unless a config is given, which must then agree with it except for ``steps``, the
            logging/checkpoint intervals and the execution settings (device, compile, precision).
        resume: continue from ``out``'s train state (bit-exact: the same parameters as a run that was
            never interrupted, on the same device and thread count).
        stop_after: stop (with a checkpoint) after this many steps of this call (tests; time slices).
        progress: show a progress bar on stderr.
        time_limit: stop (with a checkpoint) after this many seconds of this call.
    """
    out = Path(out)
    torch.set_flush_denormal(True)  # zero-initialised gates make denormals: 10x slower CPU steps otherwise
    rank, world, local_rank = _dist_info()
    is_main = rank == 0
    state_meta, state = None, None
    if checkpoint.has_train_state(out):
        if not resume:
            raise LssviewerError("the run directory already holds a training run; pass --resume to continue "
                                 "it, or choose another --out", out)
        state_meta, state = checkpoint.load_train_state(out)
        saved_cfg = TrainConfig.from_dict(state_meta["config"])
        if config is None:
            config = saved_cfg
        else:
            # execution settings may change (a GPU run continued on a CPU: fp32 there); bit-exact only if unchanged
            mutable = {"steps", "log_every", "val_every", "ckpt_every", "device", "compile", "precision"}
            diffs = [k for k, v in config.to_dict().items() if k not in mutable and saved_cfg.to_dict()[k] != v]
            if diffs:
                raise ParameterError(f"config differs from the run being resumed in: {', '.join(diffs)}", out)
    elif resume and is_main:
        print(f"lssviewer train: nothing to resume in {out}; starting a new run", file=sys.stderr)
    cfg = config or TrainConfig()

    # ---- data
    if isinstance(data, Suite):
        suite = data
    elif isinstance(data, (str, os.PathLike)):
        suite = load_suite(data, n_halos=cfg.n_halos)
    else:
        suite = suite_from_catalogs(list(data), n_halos=cfg.n_halos)
    check_suite_in_prior(suite, cfg.prior)
    if state_meta is not None and state_meta["data_sha256"] != suite.provenance["features_sha256"]:
        raise LssviewerError("the training data differ from those of the run being resumed", out)
    if state_meta is not None and "val_indices" in state_meta:  # the split the resumed run began with
        val_idx = np.asarray(sorted(int(i) for i in state_meta["val_indices"]), dtype=np.int64)
        train_idx = np.setdiff1d(np.arange(len(suite)), val_idx)
    elif state_meta is None and cfg.init_from:  # the source's held-out boxes stay held out, on a grown suite too
        train_idx, val_idx = _warm_start_split(cfg, suite, is_main)
    else:  # (also a resumed run whose train state predates 0.1.0: it began with the plain split)
        train_idx, val_idx = split_indices(len(suite), cfg.val_fraction, cfg.seed)
    if len(train_idx) == 0:
        raise LssviewerError("no training boxes left after the validation split")
    init_weights = None
    if state_meta is not None:  # the standardisation the run was trained with
        transform = FeatureTransform.from_dict(state_meta["features"])
    elif cfg.init_from:
        transform, init_weights = _warm_start_files(cfg, suite)
    else:
        transform = FeatureTransform.fit(suite.raw[train_idx], suite.box_size,
                                         theta_to_unit(suite.theta[train_idx], cfg.prior), cfg.feature_theta_degree,
                                         per_box=cfg.feature_per_box, sd_degree=cfg.feature_box_sd_degree,
                                         velocity_scale=cfg.feature_velocity_scale,
                                         mass_scale=cfg.feature_mass_scale)

    # the parts a warm start adds (the ones train_new_only trains); a resumed run keeps those it started with,
    # whatever has since become of the init_from directory
    if state_meta is not None and "new_parts" in state_meta:
        new_parts = tuple(state_meta["new_parts"])
    else:
        new_parts = _new_parts(cfg) if cfg.init_from else ()

    device = choose_device(cfg.device, local_rank)
    torch.manual_seed(cfg.seed)
    vdm = build_model(cfg)
    if init_weights is not None:
        _load_warm_start(vdm, init_weights, cfg.init_from, new_parts)
    vdm = vdm.to(device)
    if cfg.train_new_only:
        if not new_parts:
            raise ParameterError("train_new_only: the config switches on no new part (relative_phases, mesh_gravity, "
                                 "neighbours) that the init_from model lacks", cfg.init_from)
        for name, p in vdm.named_parameters():
            p.requires_grad_(_is_new_part(name, new_parts))
    ema = _EMA(vdm, cfg.ema_decay)
    named = [(n, p) for n, p in vdm.named_parameters() if p.requires_grad]
    decay_params = [p for n, p in named if p.ndim >= 2]
    other_params = [p for n, p in named if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay_params, "weight_decay": cfg.weight_decay},
                             {"params": other_params, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, wall = 0, 0.0
    if state is not None:
        step, wall = int(state_meta["step"]), float(state_meta["wall_time_s"])
        _restore(vdm, ema, opt, gen, named, state, device)
    # best validation loss so far (its EMA weights are kept in out/best: early stopping without a rerun)
    best = {"val": float("inf") if state_meta is None or state_meta.get("best_val_nelbo") is None
            else float(state_meta["best_val_nelbo"])}

    source = BatchSource(suite.raw[train_idx], theta_to_unit(suite.theta[train_idx], cfg.prior), transform,
                         device, symmetries=cfg.augment_symmetries, shifts=cfg.augment_shifts)
    n_val = min(cfg.val_boxes, len(val_idx))
    th_val_np = theta_to_unit(suite.theta[val_idx[:n_val]], cfg.prior)
    x_val = torch.as_tensor(transform.standardise(suite.raw[val_idx[:n_val]], th_val_np), dtype=torch.float32,
                            device=device)
    th_val = torch.as_tensor(th_val_np, dtype=torch.float32, device=device)
    # log|J| (and, box-standardised, the box statistics' log density) per halo, averaged over the validation
    # boxes at their true theta
    val_log_jac = (float(np.mean([transform.log_density_terms(r, t[None]) for r, t in
                                  zip(suite.raw[val_idx[:n_val]], th_val_np, strict=True)])) / suite.n_halos
                   if n_val else float("nan"))

    model: torch.nn.Module = vdm
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(vdm, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        model = torch.compile(model)
    if cfg.batch_size % world:
        raise ParameterError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    local = slice(rank * (cfg.batch_size // world), (rank + 1) * (cfg.batch_size // world))
    dims = suite.n_halos * 7
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                else contextlib.nullcontext())

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        _prepare_metrics(out / "metrics.csv", step)

    def save() -> None:
        if not is_main:
            return
        meta = model_meta(cfg, suite, transform, train_idx, val_idx, step, wall, str(device), world)
        tensors = _state_tensors(vdm, ema, opt, gen, named)
        checkpoint.save_train_state(out, tensors, {"step": step, "wall_time_s": wall, "config": cfg.to_dict(),
                                                   "features": transform.to_dict(),
                                                   "data_sha256": suite.provenance["features_sha256"],
                                                   "best_val_nelbo": None if math.isinf(best["val"])
                                                   else best["val"], "new_parts": list(new_parts),
                                                   "val_indices": [int(i) for i in val_idx]})
        checkpoint.save_model(out, ema.model.state_dict(), meta)

    def save_best(nelbo: float) -> None:
        """Keep the EMA weights of the best validation loss so far in out/best (a model directory)."""
        if not (is_main and math.isfinite(nelbo) and nelbo < best["val"]):
            return
        best["val"] = nelbo
        meta = model_meta(cfg, suite, transform, train_idx, val_idx, step, wall, str(device), world)
        meta["training"]["best"] = {"step": step, "val_nelbo_per_dim": nelbo}
        checkpoint.save_model(out / "best", ema.model.state_dict(), meta)

    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    bar = None
    if is_main and progress:
        from tqdm import tqdm

        print(f"lssviewer train: {len(train_idx)} training / {len(val_idx)} validation boxes of "
              f"{suite.n_halos} halos; {count_parameters(vdm) / 1e6:.2f} M parameters; device {device}"
              f"{f' x {world} processes' if world > 1 else ''}; steps {step} -> {end} of {cfg.steps}",
              file=sys.stderr)
        bar = tqdm(total=cfg.steps, initial=step, unit="step", dynamic_ncols=True, file=sys.stderr)
    metrics: dict[str, float] = {}
    acc: dict[str, Any] = {"loss": 0.0, "reconstruction": 0.0, "prior": 0.0, "diffusion": 0.0, "grad_norm": 0.0}
    n_acc, t_log = 0, time.perf_counter()
    t_call = time.perf_counter()
    vdm.train()
    try:
        while step < end:
            t0 = time.perf_counter()
            x, theta = source.draw(cfg.batch_size, gen)
            t = low_discrepancy_times(cfg.batch_size, gen).to(device)
            eps = torch.randn(x.shape, generator=gen).to(device)
            x, theta, t, eps = x[local], theta[local], t[local], eps[local]
            lr = learning_rate(step, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            with autocast:
                terms = model(x, theta, t, eps, variance_grad=True)
            per = (terms["reconstruction"] + terms["prior"] + terms["diffusion"]) / dims
            vdm.schedule.holder.scale = 2.0 * terms["diffusion"].detach() / dims
            loss = per.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.grad_clip)
            opt.step()
            step += 1
            ema.update(vdm, step)
            wall += time.perf_counter() - t0
            with torch.no_grad():  # accumulate on the device: no host sync per step
                for k in ("reconstruction", "prior", "diffusion"):
                    acc[k] = acc[k] + terms[k].detach().float().mean() / dims
                acc["loss"] = acc["loss"] + loss.detach().float()
                acc["grad_norm"] = acc["grad_norm"] + gnorm.detach().float()
            n_acc += 1
            if bar is not None:
                bar.update(1)
            if time_limit is not None and time.perf_counter() - t_call > time_limit and world == 1:
                end = step  # out of time: log, checkpoint, stop
            if step % cfg.log_every == 0 or step == end:
                now = time.perf_counter()
                metrics = {"step": step, "wall_s": round(wall, 2), "lr": lr,
                           **{k: float(v) / n_acc for k, v in acc.items()}, "steps_per_s": n_acc / (now - t_log)}
                if step % cfg.val_every == 0 or step == cfg.steps:
                    if is_main:
                        vdm.eval()
                        nelbo = validation_elbo(ema.model, x_val, th_val, cfg.val_noise, cfg.seed + 7) \
                            if n_val else float("nan")
                        vdm.train()
                        metrics["val_nelbo_per_dim"] = nelbo
                        metrics["val_elbo_per_halo"] = -nelbo * 7 + val_log_jac
                        save_best(nelbo)
                if is_main:
                    _append_metrics(out / "metrics.csv", metrics)
                    if bar is not None:
                        bar.set_postfix(loss=f"{metrics['loss']:.4f}", it_s=f"{metrics['steps_per_s']:.2f}",
                                        val=f"{metrics.get('val_nelbo_per_dim', float('nan')):.4f}")
                acc = dict.fromkeys(acc, 0.0)
                n_acc, t_log = 0, time.perf_counter()
            if step % cfg.ckpt_every == 0 or step == end:
                save()
    except KeyboardInterrupt:
        save()
        if bar is not None:
            bar.close()
        raise
    if bar is not None:
        bar.close()
    if world > 1:  # leave together: a rank that tears down gloo while rank 0 still saves can abort (SIGABRT)
        import torch.distributed as dist

        dist.barrier()
    if is_main and progress:
        print(f"lssviewer train: step {step}/{cfg.steps}, {wall:.0f} s of training; model in {out}",
              file=sys.stderr)
    return TrainResult(out=out, step=step, metrics=metrics, stopped_early=step < cfg.steps)


def _warm_start_split(cfg: TrainConfig, suite: Suite, verbose: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The split of a warm start: :func:`warm_start_split` when the suite begins with the boxes ``cfg.init_from``
    was trained on (the checksum of its first ``n_catalogs`` boxes' features is the source's ``features_sha256``:
    a suite grown by appending boxes, e.g. ``tools/union_suite.py``); otherwise (another suite, a smaller one, or a
    source that records no split) the plain split, with a note on stderr."""
    why = ""
    try:
        data = json.loads((Path(cfg.init_from) / checkpoint.MODEL_JSON).read_text())["data"]
        source_n, source_val = int(data["n_catalogs"]), [int(i) for i in data["val_indices"]]
        source_sha = str(data["features_sha256"])
    except (OSError, KeyError, TypeError, ValueError):
        why = "its model.json records no split"
    else:
        if source_n > len(suite):
            why = f"it was trained on {source_n} boxes, the suite has {len(suite)}"
        elif features_sha256(suite.raw[:source_n]) != source_sha:
            why = f"the suite's first {source_n} boxes are not those it was trained on"
    if not why:
        return warm_start_split(len(suite), cfg.val_fraction, cfg.seed, source_n, source_val)
    if verbose:
        print(f"lssviewer train: --init-from {cfg.init_from}: {why}; the suite is split anew (val_fraction "
              f"{cfg.val_fraction}, seed {cfg.seed})", file=sys.stderr)
    return split_indices(len(suite), cfg.val_fraction, cfg.seed)


def _warm_start_files(cfg: TrainConfig, suite: Suite) -> tuple[FeatureTransform, dict[str, torch.Tensor]]:
    """The feature standardisation and weights of ``cfg.init_from``, checked against the run."""
    directory = Path(cfg.init_from)
    meta, weights = checkpoint.load_model_files(directory)
    if int(meta["n_halos"]) != suite.n_halos or abs(float(meta["box_size"]) - suite.box_size) > 1e-6:
        raise ParameterError(f"--init-from model has N = {meta['n_halos']} in a {meta['box_size']} Mpc/h box; the "
                             f"suite has N = {suite.n_halos} in {suite.box_size:g} Mpc/h", directory)
    arch = meta["architecture"]
    new_net = cfg.network.to_dict()
    old_net = NetworkConfig.from_dict(arch["network"]).to_dict()
    diffs = [k for k in new_net if new_net[k] != old_net[k]
             and not (k in NEW_PART_OPTIONS and old_net[k] == 0) and not (k == "torus" and old_net[k] == 0)]
    sched = arch["schedule"]
    if (sched["kind"], float(sched["gamma_min"]), float(sched["gamma_max"])) != (
            cfg.schedule, cfg.gamma_min, cfg.gamma_max):
        diffs.append("schedule")
    if diffs:
        raise ParameterError(f"--init-from model's architecture differs from the config in: {', '.join(diffs)}",
                             directory)
    try:
        transform = FeatureTransform.from_dict(meta["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"--init-from model has unreadable features ({exc})", directory) from None
    if transform.per_box != cfg.feature_per_box:
        raise ParameterError("--init-from model's feature_per_box differs from the config", directory)
    if (transform.velocity_scale, transform.mass_scale) != (cfg.feature_velocity_scale, cfg.feature_mass_scale):
        raise ParameterError("--init-from model's feature scales differ from the config's feature_velocity_scale / "
                             "feature_mass_scale", directory)
    return transform, weights


#: network options a warm start may switch on (from 0 in the source), and the names of the zero-initialised
#: parameters each adds (so the run starts at exactly the source's function)
NEW_PART_OPTIONS = {"relative_phases": ".rel_out.", "mesh_gravity": ".mesh_out.", "neighbours": ".nbr_out."}


def _new_parts(cfg: TrainConfig) -> tuple[str, ...]:
    """Parameter-name markers of the parts this warm start adds: those of options off in the ``init_from`` model
    and on in ``cfg`` (a part the source already has is not new, and ``train_new_only`` keeps it frozen)."""
    try:
        meta = json.loads((Path(cfg.init_from) / "model.json").read_text())
        old_net = NetworkConfig.from_dict(meta["architecture"]["network"]).to_dict()
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"--init-from model has an unreadable model.json ({exc})", cfg.init_from) from None
    new_net = cfg.network.to_dict()
    return tuple(part for option, part in NEW_PART_OPTIONS.items() if old_net[option] == 0 and new_net[option] != 0)


def _is_new_part(name: str, new_parts: Sequence[str]) -> bool:
    return any(part in name for part in new_parts)


#: The input layer of the score network: on the torus it drops the raw position columns (the first three).
EMBED_WEIGHT = "network.embed.weight"


def _load_warm_start(vdm: VDM, weights: Mapping[str, torch.Tensor], path: str, new_parts: Sequence[str]) -> None:
    """Load ``weights``; the parameters they lack must be exactly the zero-initialised ``new_parts``. A source
    whose network reads the raw positions starts a torus network (``NetworkConfig.torus``) without those input
    columns: the rest of the network is the source's, which then learns the wrapped normal's noise."""
    weights = dict(weights)
    embed = weights.get(EMBED_WEIGHT)
    if vdm.torus and embed is not None and embed.shape[1] == vdm.network.embed.in_features + 3:
        weights[EMBED_WEIGHT] = embed[:, 3:].clone()
    missing, unexpected = vdm.load_state_dict(weights, strict=False)
    bad = list(unexpected) + [n for n in missing if not _is_new_part(n, new_parts)]
    bad += [n for n, _ in vdm.named_parameters() if _is_new_part(n, new_parts) and n not in missing]
    if bad:
        raise ParameterError(f"--init-from weights do not fit the architecture ({', '.join(bad[:3])})", path)


def _state_tensors(vdm: VDM, ema: _EMA, opt: torch.optim.Optimizer, gen: torch.Generator,
                   named: list[tuple[str, torch.nn.Parameter]]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for k, v in vdm.state_dict().items():
        tensors[f"model.{k}"] = v
    for k, v in ema.model.state_dict().items():
        tensors[f"ema.{k}"] = v
    for name, p in named:
        st = opt.state.get(p, {})
        for key, value in st.items():
            tensors[f"opt.{name}.{key}"] = torch.as_tensor(value)
    tensors["rng.generator"] = gen.get_state()
    return tensors


def _restore(vdm: VDM, ema: _EMA, opt: torch.optim.Optimizer, gen: torch.Generator,
             named: list[tuple[str, torch.nn.Parameter]], state: dict[str, torch.Tensor],
             device: torch.device) -> None:
    try:
        vdm.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")}, strict=True)
        ema.model.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("ema.")}, strict=True)
        for name, p in named:
            keys = [k for k in state if k.startswith(f"opt.{name}.") and k.count(".") == name.count(".") + 2]
            if keys:
                st = {k.rsplit(".", 1)[1]: state[k] for k in keys}
                opt.state[p] = {k: (v if k == "step" else v.to(device)) for k, v in st.items()}
        gen.set_state(state["rng.generator"])
    except (KeyError, RuntimeError) as exc:
        raise LssviewerError(f"train state does not match this configuration ({str(exc)[:120]})") from None


def _prepare_metrics(path: Path, step: int) -> None:
    """Create metrics.csv, or on resume drop the rows logged after the checkpoint we resume from."""
    rows = []
    if path.is_file() and step > 0:
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step") and int(float(r["step"])) <= step]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        w.writeheader()
        w.writerows(rows)


def _append_metrics(path: Path, metrics: Mapping[str, float]) -> None:
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=METRIC_FIELDS).writerow(
            {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in metrics.items() if k in METRIC_FIELDS})
