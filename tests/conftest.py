"""Shared fixtures: paths to the real data and small synthetic catalogs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _no_flush_denormal_leak():
    """``train`` and the CLI verbs turn on flush-to-zero (denormals are 10x slower on CPU): process-wide state that
    must not leak from a test that trains in-process into later ones (hypothesis refuses to run under it)."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)


@pytest.fixture(autouse=True)
def _collect_qt_garbage_in_the_main_thread(request):
    """After a test that used Qt, delete the widgets it closed and collect their reference cycles here, in the GUI
    thread: left to the automatic collector, a later test's worker thread could collect them (Qt objects destroyed
    outside the GUI thread can crash the process)."""
    yield
    if "qtbot" not in request.fixturenames or "PySide6.QtWidgets" not in sys.modules:
        return  # (a full collection is ~0.2 s once torch is loaded: only after the tests that used Qt)
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        return
    import gc

    guard = sys.modules.get("lssviewer.gui.gc_guard")
    leaked = guard.reset() if guard is not None else 0  # (first: frozen garbage is collectable only after this)
    for _ in range(2):
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
        gc.collect()
    if leaked:
        pytest.fail(f"{leaked} GUI-thread garbage collector guard(s) left on: a window, worker or plot thread was "
                    "not shut down")


REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [os.environ.get("LSSVIEWER_SHARED_DATA"), REPO.parent / "shared" / "data", "/work/shared/data"]
SHARED_DATA = next((Path(p) for p in _CANDIDATES if p and (Path(p) / "rockstar_out_163.list").exists()),
                   REPO.parent / "shared" / "data")
ROCKSTAR = SHARED_DATA / "rockstar_out_163.list"


@pytest.fixture
def rockstar_path() -> Path:
    """The real Rockstar catalog, read in place from ../shared/data (never copied into the repo)."""
    if not ROCKSTAR.exists():
        pytest.skip(f"real test data not found (looked in {[str(p) for p in _CANDIDATES if p]}; "
                    "set LSSVIEWER_SHARED_DATA)")
    return ROCKSTAR


def make_catalog(n: int = 50, box: float = 100.0, seed: int = 0, z: float = 0.5, om: float = 0.3,
                 s8: float | None = 0.8, name: str = "synthetic"):
    from lssviewer import Cosmology, HaloCatalog

    rng = np.random.default_rng(seed)
    return HaloCatalog(
        positions=rng.uniform(0, box, (n, 3)),
        velocities=rng.normal(0, 300, (n, 3)),
        masses=10 ** rng.uniform(12, 15, n),
        box_size=box, redshift=z, cosmology=Cosmology(om, s8), name=name,
        provenance={"seed": seed, "note": "unit test"},
    )


@pytest.fixture
def catalog():
    return make_catalog()
