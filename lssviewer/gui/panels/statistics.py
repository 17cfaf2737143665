"""The statistics panel: K model samples at the current (Omega_m, sigma_8) against the loaded simulations.

Each statistic (mass function, 2PCF in real space, redshift-space multipoles, P(k), velocity PDF,
pairwise velocity, kNN-CDF) is computed in the inference worker by :func:`lssviewer.stats.compute`
and drawn by :func:`lssviewer.stats.plots.figure` (mean +- std bands and residuals in sigma), the
same figure the command line exports. The panel only embeds those figures, one tab each.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from PySide6 import QtCore, QtWidgets

#: Statistic name (as lssviewer.stats knows it) -> label in the panel.
STATISTICS = {
    "hmf": "Mass function",
    "xi": "2PCF (real space)",
    "xi-rsd": "2PCF multipoles (redshift space)",
    "pk": "P(k)",
    "vpdf": "Velocity PDF",
    "pairwise": "Pairwise velocity",
    "knn": "kNN-CDF",
}


class StatisticsPanel(QtWidgets.QWidget):
    compute_requested = QtCore.Signal()
    cancel_requested = QtCore.Signal()
    export_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        outer = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("K samples"))
        self.k = QtWidgets.QSpinBox()
        self.k.setRange(1, 256)
        self.k.setValue(4)
        self.k.setToolTip("Number of model samples at the current parameters (mean +- std bands)")
        top.addWidget(self.k)
        self.compute_button = QtWidgets.QPushButton("Compute")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.export_button = QtWidgets.QPushButton("Export figure...")
        self.cancel_button.setEnabled(False)
        top.addWidget(self.compute_button)
        top.addWidget(self.cancel_button)
        top.addStretch(1)
        top.addWidget(self.export_button)
        outer.addLayout(top)

        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        grid = QtWidgets.QGridLayout()
        for i, (name, label) in enumerate(STATISTICS.items()):
            box = QtWidgets.QCheckBox(label)
            box.setChecked(name in ("hmf", "xi", "pk"))
            self.checks[name] = box
            grid.addWidget(box, i // 2, i % 2)
        outer.addLayout(grid)
        self.message = QtWidgets.QLabel("Compare K model samples with the simulations at the selected "
                                        "catalog's cosmology.")
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        self.tabs = QtWidgets.QTabWidget()
        outer.addWidget(self.tabs, 1)
        self.canvases: dict[str, FigureCanvasQTAgg] = {}
        self._holders: dict[str, QtWidgets.QScrollArea] = {}
        self.errors: dict[str, str] = {}

        self.compute_button.clicked.connect(self.compute_requested.emit)
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.export_button.clicked.connect(self.export_requested.emit)

    def selected(self) -> list[str]:
        return [name for name, box in self.checks.items() if box.isChecked()]

    def set_selected(self, names: list[str]) -> None:
        for name, box in self.checks.items():
            box.setChecked(name in names)

    def set_busy(self, busy: bool) -> None:
        self.compute_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def clear(self) -> None:
        while self.tabs.count():
            w = self.tabs.widget(0)
            self.tabs.removeTab(0)
            w.deleteLater()
        self.canvases.clear()
        self._holders.clear()
        self.errors.clear()

    def add_figure(self, name: str, figure: object) -> None:
        """Embed a matplotlib Figure (made in the worker) in a tab; replaces an older one."""
        if name in self.canvases:
            self.canvases.pop(name)
            old = self._holders.pop(name)
            self.tabs.removeTab(self.tabs.indexOf(old))
            old.deleteLater()
        w_in, h_in = figure.get_size_inches()
        canvas = FigureCanvasQTAgg(figure)
        # never squeeze a figure below ~3/4 of its designed size (its labels would overlap): scroll instead
        canvas.setMinimumSize(int(w_in * 72), int(h_in * 72))
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(canvas)
        scroll.setWidgetResizable(True)
        self.canvases[name] = canvas
        self._holders[name] = scroll
        self.tabs.addTab(scroll, STATISTICS.get(name, name))

    def add_error(self, name: str, message: str) -> None:
        self.errors[name] = message
        label = QtWidgets.QLabel(f"{STATISTICS.get(name, name)} could not be computed:\n{message}")
        label.setWordWrap(True)
        label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.tabs.addTab(label, f"{STATISTICS.get(name, name)} (error)")

    def current_figure(self) -> tuple[str, object] | None:
        """(name, Figure) of the tab shown, or None."""
        w = self.tabs.currentWidget()
        for name, holder in self._holders.items():
            if holder is w:
                return name, self.canvases[name].figure
        return None
