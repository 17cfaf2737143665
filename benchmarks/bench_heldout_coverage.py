"""Compare models' likelihood calibration on the same held-out boxes (boxes none of them trained on).

    python benchmarks/bench_heldout_coverage.py --models resources/models/default OTHER_MODEL_DIR \
        --suite training/default/suite.h5 --first-index 1632 [--boxes 50] [-o results/bench_heldout_coverage.json]

The boxes: the validation boxes of the first model (model.json ``data.val_indices``) at suite index
>= ``--first-index`` (e.g. boxes added to a suite after the other models were trained), that no model trained on,
that no model's temperature was fitted on and that no early-stopping choice saw (the first ``val_boxes``);
``--boxes`` of them from ``--offset`` on, or exactly the boxes of earlier results (``--indices-from``). Prints a
table of raw and calibrated 68 % / 95 % coverage, median 68 % widths and MAP errors per model and parameter,
and writes JSON (with the per-box MAPs). Every model's indices must refer to ``--suite`` (models trained on it
or on a prefix of it, e.g. before boxes were appended).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lssviewer.io import hdf5
from lssviewer.model import load_model
from lssviewer.model.validation import DEFAULT_NOISE, PARAMS, coverage

RESULTS = Path(__file__).parent / "results"


def common_heldout(models, suite_size: int, first_index: int, exclude_calibration: bool = True) -> list[int]:
    """Indices no model trained on, calibrated on (unless ``exclude_calibration`` is False: for measures that
    use no temperature) or early-stopped on, from the first model's validation set."""
    candidates = [i for i in models[0].meta["data"]["val_indices"] if i >= first_index]
    excluded: set[int] = set()
    for m in models:
        data = m.meta["data"]
        val = list(data.get("val_indices", []))
        if data.get("n_catalogs", suite_size) > first_index:  # trained on this suite's later boxes: keep its val
            excluded |= set(range(suite_size)) - set(val)
        if exclude_calibration:
            excluded |= set(m.meta.get("calibration", {}).get("indices", []))
        # the boxes of the training's validation loss (early stopping); 16 is TrainConfig's default
        excluded |= set(val[: int(m.meta.get("training", {}).get("config", {}).get("val_boxes", 16))])
    return [i for i in candidates if i not in excluded]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, help="model directories (the first one's split is used)")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--first-index", type=int, default=0, help="only boxes at this suite index or later")
    ap.add_argument("--boxes", type=int, default=50)
    ap.add_argument("--offset", type=int, default=0, help="skip the first K common boxes (to extend an earlier run)")
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--n-noise", type=int, default=DEFAULT_NOISE)
    ap.add_argument("--indices-from", nargs="+", metavar="JSON",
                    help="score exactly the boxes of these earlier results (a new model on an older comparison's "
                         "boxes); each must be held out for every model here")
    ap.add_argument("-o", "--output", default=str(RESULTS / "bench_heldout_coverage.json"))
    args = ap.parse_args(argv)
    models = [load_model(m) for m in args.models]
    common = common_heldout(models, hdf5.count(args.suite), args.first_index)
    idx = common[args.offset: args.offset + args.boxes]
    if args.indices_from:
        idx = [int(i) for f in args.indices_from for i in json.loads(Path(f).read_text())["indices"]]
        outside = sorted(set(idx) - set(common))
        if outside:
            raise SystemExit(f"boxes {outside[:5]}... of --indices-from are not held out for these models")
    if not idx:
        raise SystemExit("no common held-out boxes")
    boxes = hdf5.read(args.suite, idx)
    report = {"suite": args.suite, "n_common": len(common), "offset": args.offset, "indices": idx,
              "points": args.points, "n_noise": args.n_noise, "models": {}}
    rows = []
    for path, model in zip(args.models, models, strict=True):
        t0 = time.perf_counter()
        cov = coverage(model, boxes, args.points, args.n_noise)
        cov["seconds"] = round(time.perf_counter() - t0, 1)
        report["models"][path] = cov
        for tag in ("raw", "calibrated"):
            if tag not in cov:
                continue
            for p in PARAMS:
                r = cov[tag][p]
                rows.append((path, tag, cov[tag]["temperature"], p, r["coverage68"], r["coverage95"],
                             r["median_width68"], r["median_abs_map_error"], r["mean_map_error"]))
    head = ("model", "intervals", "T", "param", "cov68", "cov95", "width68", "med|err|", "mean err")
    print(f"{len(idx)} common held-out boxes (binomial sd of a 68 % coverage: {(0.68 * 0.32 / len(idx)) ** 0.5:.3f})")
    print("  ".join(f"{h:>10}" for h in head))
    for row in rows:
        print("  ".join(f"{v:>10}" if isinstance(v, str) else f"{v:>10.4g}" for v in row))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
