"""Locate the files shipped in ``resources/`` (built-in model, demo suite, icon).

In a checkout they are the top-level ``resources/`` folder; in an installed wheel the same files are the
package ``lssviewer._resources``. :func:`resource_path` works in both cases.
"""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent / "resources"


def resources_dir() -> Path:
    """The folder holding the shipped resources."""
    try:
        from importlib.resources import files

        path = Path(str(files("lssviewer._resources")))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return _CHECKOUT


def resource_path(*parts: str) -> Path:
    """Path of a shipped resource, e.g. ``resource_path("models", "default")`` (may not exist)."""
    return resources_dir().joinpath(*parts)


def default_model_dir() -> Path:
    """The built-in model's checkpoint directory."""
    return resource_path("models", "default")


def demo_suite_path() -> Path:
    """The demo suite of simulations (native HDF5)."""
    return resource_path("demo", "demo_suite.h5")
