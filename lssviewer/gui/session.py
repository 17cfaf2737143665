"""Session files: a JSON snapshot of what the window shows, so that it can be reopened.

A session stores the cosmological parameters, the sampler seed and steps, the model directory,
the loaded catalog files, the selected catalog and the view options. It holds no data: opening
a session re-reads the files and re-samples the model (same seed -> same catalog).

This module does not import Qt, so sessions can be written and checked from scripts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from lssviewer.errors import FormatError

#: Written into every session file; files with another ``format`` key are rejected.
SESSION_FORMAT = "lssviewer-session"
SESSION_VERSION = 1

COLOR_MODES = ("log10 mass", "speed", "line-of-sight velocity")
DISPLAY_MODES = ("sample", "simulation", "side by side")
SPACES = ("real", "redshift")
LOS_AXES = ("x", "y", "z")


@dataclasses.dataclass
class Session:
    """Everything needed to rebuild a view.

    Attributes:
        omega_m, sigma_8: the cosmology of the model sample (dimensionless).
        seed: sampler seed (int >= 0); steps: sampler steps (None -> the model's default).
        model: model directory, or None for the built-in model.
        files: catalog files that were open (absolute paths).
        selected: (file index, catalog index) of the catalog shown as "simulation", or None.
        color_by: one of :data:`COLOR_MODES`; cmap: a matplotlib colormap name.
        space: "real" or "redshift"; los_axis: line of sight for redshift space and v_los.
        display: one of :data:`DISPLAY_MODES`.
        camera: pyvista camera position ((pos), (focal point), (view up)) or None for the default.
        stat_samples: K, the number of model samples in the statistics panel.
        scan_points, scan_noise, scan_zoom: likelihood panel settings (grid points, ELBO noise draws, whether 2-D
            grids zoom in on the peak).
    """

    omega_m: float = 0.3
    sigma_8: float = 0.8
    seed: int = 0
    steps: int | None = None
    model: str | None = None
    files: list[str] = dataclasses.field(default_factory=list)
    selected: tuple[int, int] | None = None
    color_by: str = "log10 mass"
    cmap: str = "viridis"
    space: str = "real"
    los_axis: str = "z"
    display: str = "side by side"
    camera: list[list[float]] | None = None
    stat_samples: int = 4
    scan_points: int = 11
    scan_noise: int = 16
    scan_zoom: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["selected"] = None if self.selected is None else list(self.selected)
        return {"format": SESSION_FORMAT, "version": SESSION_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Any, path: str | os.PathLike[str] | None = None) -> Session:
        """Validate a decoded session; every problem is a one-line :class:`FormatError`."""
        if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
            raise FormatError("not an lssviewer session file (no \"format\": \"lssviewer-session\")", path)
        if data.get("version") != SESSION_VERSION:
            raise FormatError(f"unsupported session version {data.get('version')!r} "
                              f"(this lssviewer reads version {SESSION_VERSION})", path)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            session = cls(**values)
            session._validate()
        except (TypeError, ValueError) as exc:
            raise FormatError(f"invalid session ({exc})", path) from None
        return session

    def _validate(self) -> None:
        self.omega_m = float(self.omega_m)
        self.sigma_8 = float(self.sigma_8)
        if not (0 < self.omega_m < 1 and self.sigma_8 > 0):
            raise ValueError(f"omega_m={self.omega_m:g}, sigma_8={self.sigma_8:g} are not a cosmology")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        self.seed = int(self.seed)
        if self.steps is not None:
            if int(self.steps) != self.steps or self.steps < 1:
                raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
            self.steps = int(self.steps)
        if self.model is not None and not isinstance(self.model, str):
            raise ValueError("model must be a path or null")
        if not isinstance(self.files, list) or not all(isinstance(f, str) for f in self.files):
            raise ValueError("files must be a list of paths")
        if self.selected is not None:
            if len(self.selected) != 2:
                raise ValueError("selected must be [file index, catalog index]")
            self.selected = (int(self.selected[0]), int(self.selected[1]))
        for name, allowed in (("color_by", COLOR_MODES), ("display", DISPLAY_MODES),
                              ("space", SPACES), ("los_axis", LOS_AXES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.camera is not None:
            cam = [[float(c) for c in row] for row in self.camera]
            if len(cam) != 3 or any(len(row) != 3 for row in cam):
                raise ValueError("camera must be three (x, y, z) triples")
            self.camera = cam
        if not isinstance(self.scan_zoom, bool):
            raise ValueError(f"scan_zoom must be true or false, got {self.scan_zoom!r}")
        for name in ("stat_samples", "scan_points", "scan_noise"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            setattr(self, name, int(value))


def save_session(session: Session, path: str | os.PathLike[str]) -> None:
    """Write ``session`` as JSON to ``path`` (atomically: a failed write leaves no partial file)."""
    from lssviewer.io.atomic import atomic_path

    path = Path(path)
    text = json.dumps(session.to_dict(), indent=2) + "\n"
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FormatError(f"cannot write the session ({exc.strerror or exc})", path) from None


def load_session(path: str | os.PathLike[str]) -> Session:
    """Read and validate a session file written by :func:`save_session`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError("no such file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read the session ({getattr(exc, 'strerror', None) or exc})", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from None
    return Session.from_dict(data, path)
