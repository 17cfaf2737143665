"""``lssviewer sample``: draw halo catalogs from the diffusion model at a cosmology."""

from __future__ import annotations

import argparse

HELP = "sample halo catalogs from the diffusion model at (Omega_m, sigma_8)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--omega-m", type=float, required=True, help="Omega_m")
    p.add_argument("--sigma-8", type=float, required=True, help="sigma_8")
    p.add_argument("-n", type=int, default=1, help="number of catalogs (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same catalogs)")
    p.add_argument("-o", "--output", required=True, help="output file (format from the extension, e.g. .h5)")
    p.add_argument("--model", help="model directory (default: the built-in model)")
    p.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    p.add_argument("--sampler", choices=("dpm2", "ddim", "ancestral"), help="sampler (default: the model's)")
    p.add_argument("--final", choices=("denoise", "decoder_mean"),
                   help="last step: the network's estimate of the clean catalog at t = 0, or the decoder mean "
                        "z_0 / alpha_0 (default: the model's)")
    p.add_argument("--spacing", choices=("logsnr", "time"),
                   help="steps uniform in log SNR or in time (default: the model's)")
    p.add_argument("--device", help="cuda, mps or cpu (default: automatic)")
    p.add_argument("--allow-extrapolation", action="store_true",
                   help="allow a cosmology outside the model's prior box")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args: argparse.Namespace) -> int:
    import json
    import time

    import torch

    from lssviewer import io
    from lssviewer.model import load_model

    torch.set_flush_denormal(True)
    model = load_model(args.model, device=args.device)
    t0 = time.perf_counter()
    catalogs = model.sample(args.omega_m, args.sigma_8, n=args.n, seed=args.seed, steps=args.steps,
                            allow_extrapolation=args.allow_extrapolation, method=args.sampler,
                            final=args.final, spacing=args.spacing)
    seconds = time.perf_counter() - t0
    io.save(catalogs, args.output)
    summary = {"output": args.output, "n": len(catalogs), "omega_m": args.omega_m, "sigma_8": args.sigma_8,
               "seed": args.seed, "steps": args.steps or model.default_steps,
               "sampler": catalogs[0].provenance["sampler"], "final": catalogs[0].provenance["final"],
               "spacing": catalogs[0].provenance["spacing"], "n_halos": model.n_halos,
               "box_size": model.box_size, "redshift": model.redshift,
               "model": str(model.path), "device": model.device, "seconds": round(seconds, 3)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{len(catalogs)} catalog(s) of {model.n_halos} halos at omega_m={args.omega_m:g}, "
              f"sigma_8={args.sigma_8:g} (seed {args.seed}, {summary['steps']} steps, {seconds:.2f} s) "
              f"-> {args.output}")
    return 0
