"""Entry point of the packaged app (PyInstaller) and its start-up smoke test.

Normally this is exactly the ``lssviewer`` command: no verb opens the desktop app, verbs work as usual.

With ``LSSVIEWER_SMOKE_TEST=1`` it runs the real ``lssviewer gui`` (the same code path as a user's launch,
on the built-in model and demo suite) and watches it from inside the Qt event loop:

1. waits for the main window;
2. if the built-in model is shipped (``resources/models/default/model.json``): waits until it has loaded
   and its first sample is on screen; if not, waits until the window has said "no model";
3. if the demo suite is shipped (``resources/demo/demo_suite.h5``): waits until it is open;
4. grabs the 3D view and checks that it is not blank (enough distinct colours), and counts the VTK
   classes of PyVista's class table that resolve (the build script compares with the build environment);
5. prints one line ``lssviewer smoke test: OK ...`` (or ``... FAILED: reason``), closes the window
   and exits 0 (1 on failure).

Environment:
    LSSVIEWER_SMOKE_TEST=1           turn the smoke test on
    LSSVIEWER_SMOKE_REQUIRE=model,demo   fail when these resources are not shipped (default: none
                                     required, the line then says what was missing)
    LSSVIEWER_SMOKE_TIMEOUT=300      seconds before giving up
    LSSVIEWER_SMOKE_SCREENSHOT=PATH  also save the grabbed 3D view as a PNG

It needs a display (``xvfb-run -a`` on a headless machine), like the app itself.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

#: Fewer distinct colours than this in the 3D view means a blank (or single-colour) render. A
#: rendered view holds a gradient background, the box outline, text and shaded point sprites:
#: thousands of colours; an empty GL widget has one or two.
MIN_DISTINCT_COLOURS = 50


def _distinct_colours(rgb) -> int:  # (H, W, 3) uint8 array
    import numpy as np

    flat = rgb.reshape(-1, 3)
    return int(len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0)))


def vtk_classes_resolved() -> tuple[int, int]:
    """(resolvable, listed) VTK classes of PyVista's class table: a frozen app that left out a VTK module
    PyVista may need resolves fewer than the build environment (packaging/build_app.sh compares)."""
    import pyvista._vtk as pv_vtk

    names = list(pv_vtk._VTK_CLASS_TO_MODULE) + list(pv_vtk._SPECIAL_LOADERS)
    return sum(pv_vtk.has_attr(n) for n in names), len(names)


def smoke_test() -> int:
    """Run ``lssviewer gui`` on the defaults, check it came up, print one line; the exit status."""
    from PySide6 import QtCore, QtWidgets

    from lssviewer import __version__, cli
    from lssviewer.resources import default_model_dir, demo_suite_path, resources_dir

    t0 = time.perf_counter()
    timeout = float(os.environ.get("LSSVIEWER_SMOKE_TIMEOUT", "300"))
    required = {s.strip() for s in os.environ.get("LSSVIEWER_SMOKE_REQUIRE", "").split(",") if s.strip()}
    model_shipped = (default_model_dir() / "model.json").is_file()
    demo_shipped = demo_suite_path().is_file()
    missing = [name for name, ok in (("model", model_shipped), ("demo", demo_shipped)) if not ok]
    prefix = "lssviewer smoke test:"
    if required & set(missing):
        print(f"{prefix} FAILED: not shipped: {', '.join(sorted(required & set(missing)))} "
              f"(resources in {resources_dir()})", flush=True)
        return 1

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # the smoke test decides the exit status, not the window
    outcome: dict[str, object] = {}

    def finish(code: int, line: str) -> None:
        outcome["code"] = code
        print(f"{prefix} {line}", flush=True)
        for w in _windows():
            w.close()
        app.exit(code)

    def _windows() -> list:
        from lssviewer.gui.main_window import MainWindow

        return [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]

    def poll() -> None:
        if "code" in outcome:
            return
        elapsed = time.perf_counter() - t0
        wins = [w for w in _windows() if w.isVisible()]
        if elapsed > timeout:
            state = wins[0].status_label.text() if wins else "no window"
            finish(1, f"FAILED: timed out after {timeout:g} s (status: {state})")
            return
        if not wins:
            QtCore.QTimer.singleShot(200, poll)
            return
        w = wins[0]
        model_failed = w.model_info is None and w.model_label.text() == "no model"
        if model_shipped and model_failed:
            finish(1, f"FAILED: the built-in model did not load ({w.status_label.text()})")
            return
        model_done = (w.sample_catalog is not None) if model_shipped else model_failed
        demo_done = len(w.files) > 0 if demo_shipped else True
        if not (model_done and demo_done):
            QtCore.QTimer.singleShot(200, poll)
            return
        rgb = w.view.grab_array()
        colours = _distinct_colours(rgb)
        shot = os.environ.get("LSSVIEWER_SMOKE_SCREENSHOT")
        if shot:
            w.view.save_screenshot(shot)
        if colours < MIN_DISTINCT_COLOURS:
            finish(1, f"FAILED: the 3D view looks blank ({colours} distinct colours)")
            return
        import lssviewer

        resolved, total = vtk_classes_resolved()
        parts = [f"OK in {elapsed:.1f} s", f"version {__version__}", f"view {rgb.shape[1]}x{rgb.shape[0]} "
                 f"with {colours} colours", f"vtk classes {resolved}/{total}"]
        if model_shipped:
            parts.append(f"model sample of {len(w.sample_catalog)} halos on {w.model_info.device}")
        if demo_shipped:
            parts.append(f"demo suite open ({sum(len(f.catalogs) for f in w.files)} catalogs)")
        if missing:
            parts.append(f"not shipped: {', '.join(missing)}")
        parts.append(f"package {os.path.dirname(lssviewer.__file__)}")
        finish(0, "; ".join(parts))

    QtCore.QTimer.singleShot(200, poll)
    status = cli.main(["gui"])
    if "code" not in outcome:
        print(f"{prefix} FAILED: the app exited ({status}) before the checks finished", flush=True)
        return 1 if status == 0 else int(status)
    return int(outcome["code"]) if status == 0 else int(status)


def main() -> int:
    multiprocessing.freeze_support()  # torch/numba worker processes in the frozen app
    if os.environ.get("LSSVIEWER_SMOKE_TEST", "") not in ("", "0"):
        return smoke_test()
    from lssviewer.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
