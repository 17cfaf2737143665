"""GUI performance: launch to first sample, slider release to new sample, rotation frame time, freezes.

Run under a display (here: a virtual one):

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui.py [--model DIR]

Prints a table and writes benchmarks/results/gui.json. Without --model it uses the built-in model
when installed, else a stand-in checkpoint with the built-in model's planned CPU size (untrained
weights, d_model 128, 4 layers, 1000 halos, 50 steps: the same cost per step as a trained one).
Timings on a shared 2-core machine are upper bounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def wait(app, predicate, timeout: float = 300.0) -> float:
    from PySide6 import QtCore

    t0 = time.perf_counter()
    loop = QtCore.QEventLoop()
    timer = QtCore.QTimer(interval=2)
    timer.timeout.connect(lambda: loop.quit() if predicate() or time.perf_counter() - t0 > timeout else None)
    timer.start()
    loop.exec()
    timer.stop()
    if not predicate():
        raise TimeoutError("benchmark step timed out")
    return time.perf_counter() - t0


class CollectionLog:
    """Every cyclic garbage collection: the thread that ran it, its generation and its duration (gc.callbacks)."""

    def __init__(self) -> None:
        self.main = threading.get_ident()
        self.rows: list[tuple[bool, int, float, float]] = []  # (in the GUI thread, generation, seconds, end time)
        self._t0: dict[int, float] = {}
        self.first = self.last = 0  # the rows while the window was open
        self.launch = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        tid = threading.get_ident()
        if phase == "start":
            self._t0[tid] = time.perf_counter()
        elif tid in self._t0:
            t1 = time.perf_counter()
            self.rows.append((tid == self.main, info["generation"], t1 - self._t0.pop(tid), t1))

    def summary(self) -> dict:
        """While a window (and its worker) was open: collections per thread, full ones and the longest in the GUI
        thread (the window's stall); imports before and the rotation test after are left out."""
        rows = self.rows[self.first:self.last]
        gui = [r for r in rows if r[0]]
        longest = max(rows, key=lambda r: r[2], default=None)
        return {"in_gui_thread": len(gui), "in_other_threads": len(rows) - len(gui),
                "full_in_gui_thread": sum(1 for r in gui if r[1] == 2),
                "longest_in_gui_thread_s": max((r[2] for r in gui), default=0.0),
                "longest_in_any_thread": None if longest is None else {
                    "seconds": longest[2], "generation": longest[1], "gui_thread": longest[0],
                    "after_launch_s": longest[3] - self.launch},
                "total_s": sum(r[2] for r in rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model directory (default: built-in, else a stand-in)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "gui.json"))
    ap.add_argument("--no-gc-guard", action="store_true",
                    help="let CPython collect in any thread, as before lssviewer.gui.gc_guard (for comparison)")
    args = ap.parse_args()
    if args.no_gc_guard:
        from lssviewer.gui.gc_guard import MainThreadCollector

        MainThreadCollector.start = MainThreadCollector.stop = lambda self: None  # type: ignore[method-assign]
    collections = CollectionLog()
    from lssviewer.gui import gc_guard

    freezes: list[float] = []
    plain_freeze_now = gc_guard.freeze_now

    def timed_freeze_now() -> None:
        t0 = time.perf_counter()
        plain_freeze_now()
        freezes.append(time.perf_counter() - t0)

    gc_guard.freeze_now = timed_freeze_now  # (the window calls it once the worker has warmed up)

    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    from gui_support import tiny_model_dir, toy_suite

    model_desc = args.model
    if args.model is None:
        from lssviewer.resources import default_model_dir  # (not lssviewer.model: torch is imported by the worker,
                                                         # after the window is made, as in the app)
        builtin = default_model_dir() if (default_model_dir() / "model.json").is_file() else None
        if builtin is not None:
            args.model, model_desc = str(builtin), f"built-in ({builtin})"
        else:
            args.model = str(tiny_model_dir(tmp / "standin", n_halos=1000, d_model=128, n_layers=4,
                                            default_steps=50))
            model_desc = "stand-in: untrained d128 x 4 layers, 1000 halos, 50 steps (built-in not installed)"

    from lssviewer.gui.main_window import MainWindow

    settings = QtCore.QSettings(str(tmp / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    results: dict = {"model": model_desc, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                     "display": os.environ.get("DISPLAY", "")}

    # 1. launch to first rendered sample (window construction + model load + sample + render)
    results["torch_imported_before_the_window"] = "torch" in sys.modules
    collections.first = len(collections.rows)
    collections.launch = time.perf_counter()
    t0 = time.perf_counter()
    win = MainWindow(model_path=args.model, settings=settings)
    win.resize(1400, 900)
    win.show()
    shown: list = []
    win.sample_displayed.connect(shown.append)
    win.start(files=[])
    wait(app, lambda: bool(shown))
    app.processEvents()
    results["launch_to_first_sample_s"] = time.perf_counter() - t0
    n_halos = len(shown[0])
    wait(app, lambda: win.warmed_up)

    # 2. slider release to new sample on screen
    times = []
    for i in range(args.repeats):
        n = len(shown)
        win.controls.omega_m.slider.setValue(0.2 + 0.1 * (i % 3))
        t0 = time.perf_counter()
        win.controls.omega_m.slider.sliderReleased.emit()
        wait(app, lambda n=n: len(shown) > n)
        app.processEvents()
        times.append(time.perf_counter() - t0)
    results["slider_release_to_sample_s"] = {"median": statistics.median(times), "all": times}

    # 3. longest gap between 10 ms timer ticks during a sample and a 2-point scan of a matching catalog
    info = win.model_info
    toy_suite(tmp / "suite.h5", n_cosmologies=1, realisations=1, n_halos=info.n_halos, box_size=info.box_size,
              redshift=info.redshift)
    win.open_files([str(tmp / "suite.h5")])
    ticks: list[float] = []
    timer = QtCore.QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    gaps = {}
    before = len(shown)
    ticks.clear()
    timer.start()
    win.request_sample()
    wait(app, lambda: len(shown) > before)
    timer.stop()
    gaps["sample"] = float(np.max(np.diff(ticks)))
    scans: list = []
    win.scan_finished.connect(scans.append)
    win.likelihood_dock.raise_()
    win.likelihood_panel.points.setValue(3)
    win.likelihood_panel.noise.setValue(4)
    wait(app, lambda: True)
    ticks.clear()
    timer.start()
    win.request_scan()
    wait(app, lambda: bool(scans))
    timer.stop()
    gaps["scan"] = float(np.max(np.diff(ticks)))
    results["max_gui_gap_s"] = gaps
    collections.last = len(collections.rows)
    t0 = time.perf_counter()
    gc.collect()  # what a full collection in the GUI thread would cost now (with the guard: after its freeze)
    full_collection_s = time.perf_counter() - t0
    win.close()

    # 4. frame time when rotating 50k points (800 x 600 view, plain repaint per frame)
    from lssviewer.catalog import HaloCatalog
    from lssviewer.cosmology import Cosmology
    from lssviewer.gui.view3d import HaloView

    rng = np.random.default_rng(0)
    n = 50_000
    big = HaloCatalog(rng.uniform(0, 1000, (n, 3)), rng.normal(0, 300, (n, 3)), 10 ** rng.uniform(12.5, 15, n),
                      1000.0, redshift=0.5, cosmology=Cosmology(0.3, 0.8))
    view = HaloView()
    view.resize(800, 600)
    view.show()
    view.set_catalog("sample", big, "50k halos")
    wait(app, lambda: True)
    frames = []
    for _ in range(30):
        t0 = time.perf_counter()
        view.plotter.camera.azimuth += 2.0
        view.plotter.render()
        app.processEvents()
        frames.append(time.perf_counter() - t0)
    results["rotate_50k_frame_s"] = {"median": statistics.median(frames), "p90": float(np.percentile(frames, 90))}
    view.close_view()
    results["n_halos_sampled"] = n_halos
    results["gc_guard"] = not args.no_gc_guard
    results["collections"] = {**collections.summary(), "full_collection_after_a_scan_s": full_collection_s,
                              "freeze_after_warm_up_s": freezes}

    rows = [("launch -> first sample on screen", f"{results['launch_to_first_sample_s']:.2f} s"),
            ("slider release -> new sample on screen (median)",
             f"{results['slider_release_to_sample_s']['median']:.2f} s"),
            ("longest GUI gap during a sample", f"{gaps['sample'] * 1e3:.0f} ms"),
            ("longest GUI gap during a scan", f"{gaps['scan'] * 1e3:.0f} ms"),
            ("rotate 50k points: frame (median / p90)", "{:.0f} / {:.0f} ms".format(
                results["rotate_50k_frame_s"]["median"] * 1e3, results["rotate_50k_frame_s"]["p90"] * 1e3)),
            ("collections in the GUI thread / in other threads", "{in_gui_thread} / {in_other_threads}".format(
                **results["collections"])),
            ("longest collection in the GUI thread",
             f"{results['collections']['longest_in_gui_thread_s'] * 1e3:.1f} ms"),
            ("a full collection after the sample and scan", f"{full_collection_s * 1e3:.1f} ms")]
    print(f"model: {model_desc}; {n_halos} halos per sample")
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
