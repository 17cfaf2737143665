"""Benchmark of the diffusion model: CPU sampling and likelihood-profile times, GPU figures, and the
quality of few-step samplers on the toy problem with a known answer.

    python benchmarks/bench_model.py                 # CPU timings (2 threads) of the default architecture
    python benchmarks/bench_model.py --model DIR     # ... of a trained model directory as well
    python benchmarks/bench_model.py --toy           # + sampler steps vs sample quality (trains a toy model)
    python benchmarks/bench_model.py --gpu           # + GPU timings (training steps/s, sampling, profile)

Prints a table and writes benchmarks/results/bench_model.json. Timings are medians of repeats; on a
shared machine they are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the toy problem lives with the tests

from lssviewer.catalog import HaloCatalog  # noqa: E402
from lssviewer.cosmology import Cosmology  # noqa: E402
from lssviewer.model.api import DiffusionModel, load_model  # noqa: E402
from lssviewer.model.features import FeatureTransform  # noqa: E402
from lssviewer.model.likelihood import DEFAULT_NOISE, profile_1d  # noqa: E402
from lssviewer.model.network import NetworkConfig, count_parameters  # noqa: E402
from lssviewer.model.vdm import VDM  # noqa: E402

BOX = 400.0


def synthetic_model(n_halos: int, net: NetworkConfig, device: str = "cpu") -> DiffusionModel:
    """A model with random (not trained) weights: the cost of sampling and scoring does not depend on them."""
    torch.manual_seed(0)
    vdm = VDM(net)
    with torch.no_grad():
        for p in vdm.network.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.02)
    meta = {"prior": {"omega_m": [0.1, 0.5], "sigma_8": [0.6, 1.0]}, "n_halos": n_halos, "box_size": BOX,
            "redshift": 0.5, "features": FeatureTransform(BOX, 300.0, 13.5, 0.3).to_dict(),
            "sampler": {"method": "dpm2", "default_steps": 50, "final": "denoise", "spacing": "logsnr"}}
    return DiffusionModel(vdm, meta, device=device)


def fake_catalog(model: DiffusionModel, seed: int = 0) -> HaloCatalog:
    rng = np.random.default_rng(seed)
    n = model.n_halos
    return HaloCatalog(rng.uniform(0, model.box_size, (n, 3)), rng.normal(0, 300, (n, 3)),
                       10 ** rng.normal(13.5, 0.3, n), box_size=model.box_size, redshift=model.redshift,
                       cosmology=Cosmology(0.3, 0.8))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_inference(model: DiffusionModel, label: str, steps_list, repeats: int, n_noise: int = DEFAULT_NOISE,
                    points: int = 30) -> list[dict]:
    rows = []
    cat = fake_catalog(model)
    for steps in steps_list:
        t = timed(lambda s=steps: model.sample(0.3, 0.8, n=1, seed=0, steps=s), repeats)
        rows.append({"what": "sample 1 catalog", "model": label, "n_halos": model.n_halos, "steps": steps,
                     "final": model.sampler_final, "spacing": model.sampler_spacing,
                     "device": model.device, "seconds": round(t, 3)})
    t = timed(lambda: list(profile_1d(model, cat, "omega_m", points=points, n_noise=n_noise)), max(1, repeats - 1))
    rows.append({"what": f"{points}-point profile", "model": label, "n_halos": model.n_halos, "n_noise": n_noise,
                 "device": model.device, "seconds": round(t, 3)})
    return rows


def bench_train_steps(net: NetworkConfig, n_halos: int, batch: int, device: str, bf16: bool, steps: int = 20) -> dict:
    torch.manual_seed(0)
    vdm = VDM(net).to(device)
    opt = torch.optim.AdamW(vdm.parameters(), lr=1e-4)
    x = torch.randn(batch, n_halos, 7, device=device)
    th = torch.rand(batch, 2, device=device)

    def step():
        t = torch.rand(batch, device=device)
        eps = torch.randn_like(x)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            terms = vdm(x, th, t, eps, variance_grad=True)
        vdm.schedule.holder.scale = 2 * terms["diffusion"].detach() / x[0].numel()
        loss = sum(v.mean() for v in terms.values()) / x[0].numel()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    return {"what": "train step", "n_halos": n_halos, "batch": batch, "bf16": bf16, "device": device,
            "params_M": round(count_parameters(vdm) / 1e6, 2), "seconds": round(dt, 4), "steps_per_s": round(1 / dt, 1)}


def bench_toy_sampler_quality(steps_list) -> list[dict]:
    """Train the toy model of the tests and measure sample quality vs sampler and steps (exact answer known)."""
    from _model_helpers import SIGMA_M, toy_params, toy_suite
    from scipy import stats

    from lssviewer.model.train import TrainConfig, train

    out = Path(tempfile.mkdtemp()) / "toy"
    cfg = TrainConfig(steps=2000, batch_size=64, lr=2e-3, warmup=100, ema_decay=0.99, val_fraction=0.0,
                      grad_clip=1.0, log_every=500, val_every=10**6, ckpt_every=10**6,
                      network=NetworkConfig(d_model=64, n_layers=2, n_heads=4, mlp_ratio=2, fourier_features=1,
                                            cond_dim=64))
    train(toy_suite(4000, 8, seed=0), out, cfg, progress=False)
    model = load_model(out, device="cpu")
    rows = []
    om, s8 = 0.3, 0.8
    sv, mu = toy_params(om, s8)
    for method in ("dpm2", "ddim", "ancestral"):
        for steps in steps_list:
            cats = model.sample(om, s8, n=256, seed=1, steps=steps, method=method)
            v = np.concatenate([c.velocities for c in cats]).ravel() / sv
            m = (np.concatenate([c.log10_mass for c in cats]) - mu) / SIGMA_M
            u = np.concatenate([c.positions for c in cats]).ravel() / model.box_size
            rows.append({"what": "toy sample quality", "sampler": method, "steps": steps,
                         "ks_velocity": round(float(stats.kstest(v, "norm").statistic), 4),
                         "ks_log_mass": round(float(stats.kstest(m, "norm").statistic), 4),
                         "ks_position": round(float(stats.kstest(u, "uniform").statistic), 4),
                         "velocity_std_ratio": round(float(v.std()), 4), "n_values": int(v.size)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="also time this trained model directory")
    ap.add_argument("--toy", action="store_true", help="few-step sampler quality on the toy problem")
    ap.add_argument("--gpu", action="store_true", help="GPU timings (if CUDA is available)")
    ap.add_argument("--skip-cpu", action="store_true", help="skip the CPU timings")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, the target machine)")
    ap.add_argument("--n-halos", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--out", help="JSON output (default: results/bench_model.json, with --gpu bench_model_gpu.json)")
    args = ap.parse_args()
    args.out = args.out or str(HERE / "results" / ("bench_model_gpu.json" if args.gpu else "bench_model.json"))
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    default_net = NetworkConfig()  # d128 x 4 layers: the CPU-sized default architecture
    for n in [] if args.skip_cpu else args.n_halos:
        rows += bench_inference(synthetic_model(n, default_net), "d128x4 (random weights)", [25, 50],
                                args.repeats)
    if args.model:
        m = load_model(args.model, device="cpu")
        rows += bench_inference(m, args.model, [m.default_steps], args.repeats)
    if args.toy:
        rows += bench_toy_sampler_quality([10, 25, 50, 200])
    if args.gpu and torch.cuda.is_available():
        torch.set_num_threads(8)
        torch.backends.cuda.matmul.allow_tf32 = True
        big = NetworkConfig(d_model=256, n_layers=6, n_heads=4, mlp_ratio=4, cond_dim=256)
        for net, label in ((default_net, "d128x4"), (big, "d256x6 (CM23 size)")):
            for n, batch in ((1000, 64), (5000, 16)):
                for bf16 in (False, True):
                    r = bench_train_steps(net, n, batch, "cuda", bf16)
                    r["model"] = label
                    rows.append(r)
        for n in (1000, 5000):
            g = synthetic_model(n, default_net, device="cuda")
            rows += bench_inference(g, "d128x4 (random weights)", [50, 200], args.repeats)
    env = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(),
           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    print(f"{'what':<22} {'model':<28} {'N':>6} {'steps':>6} {'device':>7} {'seconds':>9}  other")
    for r in rows:
        other = {k: v for k, v in r.items() if k not in ("what", "model", "n_halos", "steps", "device", "seconds")}
        print(f"{r['what']:<22} {str(r.get('model', '')):<28} {str(r.get('n_halos', '')):>6} "
              f"{str(r.get('steps', '')):>6} {str(r.get('device', '')):>7} {str(r.get('seconds', '')):>9}  {other}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
