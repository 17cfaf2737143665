"""Make the README screenshot of the desktop app (docs/screenshot.png) under a (virtual) display.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/screenshot.py

Opens the window on the built-in model and the demo suite (or --model / files given), draws a
sample, selects the first demo catalog, computes a few statistics and a short likelihood profile,
then saves the whole window. Refuses to run without a model: a screenshot of an empty app would
advertise nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="catalog files (default: the demo suite)")
    ap.add_argument("--model", help="model directory (default: the built-in model)")
    ap.add_argument("--out", default=str(HERE.parent / "docs" / "screenshot.png"))
    ap.add_argument("--stats", default="hmf,xi,pk", help="statistics to show (comma-separated)")
    ap.add_argument("--k", type=int, default=4, help="model samples for the statistics")
    ap.add_argument("--scan-points", type=int, default=7, help="points of the Omega_m profile (0: no scan)")
    ap.add_argument("--show", choices=("statistics", "likelihood"), default="statistics", help="panel in front")
    args = ap.parse_args()

    from PySide6 import QtCore, QtWidgets

    from lssviewer.gui.app import default_demo_files
    from lssviewer.gui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    files = args.files or [str(p) for p in default_demo_files() if p.exists()]
    settings = QtCore.QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(model_path=args.model, settings=settings)
    win.resize(1400, 900)
    win.show()
    state = {"sample": False, "failed": None, "stats": False, "scan": False}
    win.sample_displayed.connect(lambda _c: state.__setitem__("sample", True))
    win.model_failed.connect(lambda m: state.__setitem__("failed", m))
    win.stats_finished.connect(lambda _r: state.__setitem__("stats", True))
    win.scan_finished.connect(lambda _r: state.__setitem__("scan", True))
    win.start(files=files)

    def run_until(key: str, timeout: float = 900.0) -> None:
        t0 = time.perf_counter()
        while not state[key] and state["failed"] is None and time.perf_counter() - t0 < timeout:
            app.processEvents()
            time.sleep(0.01)
        if state["failed"] is not None:
            raise SystemExit(f"screenshot: no model ({state['failed']})")
        if not state[key]:
            raise SystemExit(f"screenshot: timed out waiting for {key}")

    run_until("sample")
    if not files:
        print("screenshot: warning: no demo suite found; the catalog list is empty", file=sys.stderr)
    if win.files and args.scan_points:
        win.likelihood_panel.points.setValue(args.scan_points)
        win.request_scan()
        run_until("scan")
    if args.stats:
        win.stats_panel.set_selected(args.stats.split(","))
        win.stats_panel.k.setValue(args.k)
        win.request_stats()
        run_until("stats")
    (win.stats_dock if args.show == "statistics" else win.likelihood_dock).raise_()
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not win.grab().save(str(out), "PNG"):
        raise SystemExit(f"screenshot: could not write {out}")
    print(f"wrote {out}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
