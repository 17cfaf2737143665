"""Checkpoints: safetensors for tensors, JSON for everything else (never pickle).

A *model directory* (what :func:`lssviewer.model.load_model` opens) holds

    model.json           format, version, architecture, schedule, feature normalisation, prior box,
                         n_halos, box_size, redshift, sampler defaults, data provenance, training summary,
                         code version, and the sha256 of model.safetensors
    model.safetensors    the (EMA) weights used for sampling and likelihoods
    card.json            optional model card (validation numbers; shown in the GUI About dialog)

A *training run* directory (``lssviewer train --out runs/NAME``) is a model directory plus

    train_state.json / train_state.safetensors   raw weights, EMA weights, AdamW moments, the
                                                 random-generator state, step counter (for --resume)
    metrics.csv, config.json                     the log and the resolved configuration

Every file is written atomically (temporary file + rename), the train state before the model, so a
kill at any moment leaves a loadable directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lssviewer._version import __version__
from lssviewer.errors import FormatError
from lssviewer.io.atomic import atomic_path

MODEL_FORMAT = "lssviewer-model"
#: 2: box-standardised models (features.per_box), which a version-1 reader would misread as theta-standardised;
#: version-1 files (no per_box) read unchanged.
MODEL_FORMAT_VERSION = 2
TRAIN_FORMAT = "lssviewer-train-state"
MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"
CARD_JSON = "card.json"
STATE_JSON = "train_state.json"
STATE_WEIGHTS = "train_state.safetensors"


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(obj: Mapping[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _write_tensors(tensors: Mapping[str, torch.Tensor], path: Path) -> str:
    from safetensors.torch import save_file

    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp))
    return sha256_file(path)


def _read_tensors(path: Path, expected_sha: str | None) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise FormatError(f"missing {path.name} (incomplete checkpoint)", path.parent)
    if expected_sha is not None and sha256_file(path) != expected_sha:
        raise FormatError(f"{path.name} does not match the checksum in its JSON (corrupt or mixed checkpoint)",
                          path.parent)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise FormatError(f"{path.name} is not a readable safetensors file ({' '.join(str(exc).split())[:120]})",
                          path.parent) from None


def _read_json(path: Path, fmt: str) -> dict[str, Any]:
    if not path.is_file():
        raise FormatError(f"no {path.name} here: not an lssviewer model/run directory", path.parent)
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path.name} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})",
                          path.parent) from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise FormatError(f"{path.name} is not an {fmt} file", path.parent)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION or version < 1:
        raise FormatError(f"{path.name} has format_version {version!r}; this lssviewer {__version__} reads "
                          f"version {MODEL_FORMAT_VERSION} (upgrade lssviewer or retrain)", path.parent)
    return meta


def save_model(directory: str | os.PathLike[str], weights: Mapping[str, torch.Tensor],
               meta: Mapping[str, Any]) -> None:
    """Write model.safetensors and model.json (with the weights' checksum) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sha = _write_tensors(weights, directory / MODEL_WEIGHTS)
    full = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "lssviewer_version": __version__,
            **{k: v for k, v in meta.items() if k not in ("format", "format_version", "weights_sha256")},
            "weights_sha256": sha}
    _write_json(full, directory / MODEL_JSON)


def load_model_files(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(meta, weights) of a model directory; FormatError on anything missing or corrupt."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FormatError("model directory does not exist", directory)
    meta = _read_json(directory / MODEL_JSON, MODEL_FORMAT)
    weights = _read_tensors(directory / MODEL_WEIGHTS, meta.get("weights_sha256"))
    return meta, weights


def read_card(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(directory) / CARD_JSON
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FormatError(f"{CARD_JSON} is not valid JSON", directory) from None
    return card if isinstance(card, dict) else None


def write_card(directory: str | os.PathLike[str], card: Mapping[str, Any]) -> None:
    _write_json(dict(card), Path(directory) / CARD_JSON)


def write_calibration(directory: str | os.PathLike[str], calibration: Mapping[str, Any]) -> None:
    """Store the likelihood calibration (``{"temperature": T, ...}``) in a model directory's model.json."""
    path = Path(directory) / MODEL_JSON
    meta = _read_json(path, MODEL_FORMAT)
    meta["calibration"] = dict(calibration)
    _write_json(meta, path)


def network_temperature_indices(calibration: Mapping[str, Any]) -> list[int]:
    """The suite boxes a calibration's T_net (``network_temperature``) was chosen on: those of its 2-D grid fit,
    or, when that fit took T_net as given (``grid_calibration.network_temperature_indices``), the boxes of the
    earlier fit that chose it. 1-D profiles temper the network's term by this T_net, so their tests must avoid
    these boxes, not every box of the 2-D grids' temperature."""
    grids = calibration.get("grid_calibration") or {}
    return [int(i) for i in grids.get("network_temperature_indices", grids.get("indices", []))]


def save_train_state(directory: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor],
                     meta: Mapping[str, Any]) -> None:
    """Write train_state.safetensors and train_state.json."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sha = _write_tensors(tensors, directory / STATE_WEIGHTS)
    full = {"format": TRAIN_FORMAT, "format_version": MODEL_FORMAT_VERSION, "lssviewer_version": __version__,
            **dict(meta), "weights_sha256": sha}
    _write_json(full, directory / STATE_JSON)


def load_train_state(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    directory = Path(directory)
    meta = _read_json(directory / STATE_JSON, TRAIN_FORMAT)
    return meta, _read_tensors(directory / STATE_WEIGHTS, meta.get("weights_sha256"))


def has_train_state(directory: str | os.PathLike[str]) -> bool:
    return (Path(directory) / STATE_JSON).is_file()


def git_commit() -> str | None:
    """The git commit of the source tree if it is a git checkout (for provenance), else None."""
    root = Path(__file__).resolve().parents[2]
    head = root / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = root / ".git" / ref[5:]
            if ref_path.is_file():
                return ref_path.read_text().strip()
            packed = root / ".git" / "packed-refs"
            for line in packed.read_text().splitlines():
                if line.endswith(ref[5:]):
                    return line.split()[0]
            return None
        return ref
    except OSError:
        return None
