"""DDP smoke test: 2 CPU processes (gloo) train the same model as one process with the same global batch.

Each rank takes its half of the same global batch (same boxes, augmentations, times and noise) and
DDP averages the gradients, so the result equals the single-process run up to float32 rounding of
the gradient reduction (a few 1e-7 relative), which AdamW amplifies to at most ~lr * 1e-2 over a few
steps: 1e-4 absolute on weights of order 0.1 is a safe bound that still catches any real divergence
(a wrong batch split or missing all-reduce moves weights by ~lr = 1e-3 per step).
"""

from __future__ import annotations

import torch
import torch.multiprocessing as mp
from _model_helpers import ddp_worker, tiny_config, toy_suite

from lssviewer.model import checkpoint
from lssviewer.model.train import train


def test_two_process_gloo_matches_single_process(tmp_path):
    cfg = tiny_config(steps=4, batch_size=4, val_every=4, ckpt_every=4)
    train(toy_suite(16, 8, seed=4), tmp_path / "single", cfg, progress=False)
    mp.spawn(ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path / "ddp"), cfg.to_dict(), 16), nprocs=2,
             join=True)
    meta, ddp = checkpoint.load_train_state(tmp_path / "ddp")
    _, single = checkpoint.load_train_state(tmp_path / "single")
    assert meta["step"] == 4
    moved = 0.0
    for k in single:
        if k.startswith("model."):
            assert torch.allclose(ddp[k], single[k], atol=1e-4, rtol=0), k
            moved = max(moved, float((single[k] - _initial(cfg)[k[6:]]).abs().max()))
    assert moved > 1e-3  # the comparison is not vacuous: training changed the weights
    assert checkpoint.load_model_files(tmp_path / "ddp")[0]["training"]["processes"] == 2


def _initial(cfg):
    from lssviewer.model.train import build_model

    torch.manual_seed(cfg.seed)
    return build_model(cfg).state_dict()
