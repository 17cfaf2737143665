"""``lssviewer train``: train (or resume) the diffusion model on a suite of simulations."""

from __future__ import annotations

import argparse

HELP = "train the diffusion model on a suite (resumable; GPUs and torchrun when available)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="suite file (native HDF5, e.g. from 'lssviewer suite')")
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.csv; a model directory)")
    p.add_argument("--config", help="training configuration (TOML or JSON; see docs/model.md)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--steps", type=int, help="total optimisation steps (overrides the config)")
    p.add_argument("--batch-size", type=int, help="global batch size (overrides the config)")
    p.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: automatic)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--max-minutes", type=float,
                   help="stop with a checkpoint after this many minutes (resume later with --resume)")
    p.add_argument("--init-from", metavar="MODEL_DIR",
                   help="start from this model's weights (fine-tuning; new parts of the architecture start at zero)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from lssviewer.model import checkpoint
    from lssviewer.model.train import TrainConfig, load_config, train

    torch.set_flush_denormal(True)
    config = load_config(args.config) if args.config else None
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.device:
        overrides["device"] = args.device
    if args.bf16:
        overrides["precision"] = "bf16"
    if args.compile:
        overrides["compile"] = True
    if args.init_from:
        overrides["init_from"] = str(args.init_from)
    if overrides:
        if config is None and args.resume and checkpoint.has_train_state(args.out):
            saved, _ = checkpoint.load_train_state(args.out)
            config = TrainConfig.from_dict(saved["config"])
        config = (config or TrainConfig()).replace(**overrides)
    time_limit = None if args.max_minutes is None else 60.0 * args.max_minutes
    result = train(args.data, args.out, config, resume=args.resume, progress=not args.no_progress,
                   time_limit=time_limit)
    if result.stopped_early:
        print(f"lssviewer train: stopped at step {result.step}; continue with --resume")
    return 0
