"""The controls dock: cosmology sliders with numeric entry, seed, sampler steps, device, view options.

The Omega_m and sigma_8 sliders (superqt labelled sliders: drag, or type into the number box)
are limited to the model's prior box. A sample is requested when a slider is released, after a
short pause in keyboard/typed changes (debounced), when the seed or steps change, or with the
Sample button; with "Live" checked samples are also requested while dragging (the worker's
superseding keeps only the newest).
"""

from __future__ import annotations

import random

from PySide6 import QtCore, QtWidgets
from superqt import QLabeledDoubleSlider

from lssviewer.gui.session import COLOR_MODES, DISPLAY_MODES, LOS_AXES, SPACES
from lssviewer.gui.view3d import CMAPS

#: Pause after the last keyboard / typed change before a sample is requested [ms].
DEBOUNCE_MS = 250
SEED_MAX = 2**31 - 1


class ParamSlider(QtWidgets.QWidget):
    """A labelled float slider with an editable number box, over [lo, hi]."""

    committed = QtCore.Signal(float)  # a value the user settled on
    moved = QtCore.Signal(float)  # every change while dragging

    def __init__(self, label: str, lo: float, hi: float, value: float, decimals: int = 3,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.name = QtWidgets.QLabel(label)
        self.name.setMinimumWidth(28)
        self.slider = QLabeledDoubleSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setDecimals(decimals)
        self.slider.setSingleStep(10 ** -(decimals - 1))
        self.slider.setRange(lo, hi)
        self.slider.setValue(value)
        self.slider.setToolTip(f"{label}: drag, use the arrow keys, or type a value and press Enter")
        lay.addWidget(self.name)
        lay.addWidget(self.slider, 1)
        self._debounce = QtCore.QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self._commit)
        self.slider.valueChanged.connect(self._on_changed)
        self.slider.sliderReleased.connect(self._commit)

    def value(self) -> float:
        return float(self.slider.value())

    def set_range(self, lo: float, hi: float) -> None:
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(lo, hi)

    def set_value(self, value: float) -> None:
        """Set without requesting a sample."""
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setValue(value)

    def _on_changed(self, value: float) -> None:
        if self.slider._slider.isSliderDown():
            self.moved.emit(float(value))
        else:
            self._debounce.start()

    def _commit(self) -> None:
        self._debounce.stop()
        self.committed.emit(self.value())


class ControlsPanel(QtWidgets.QWidget):
    """Cosmology, sampler and view controls. The main window connects the signals."""

    sample_requested = QtCore.Signal()
    view_changed = QtCore.Signal()  # any of the view options below changed
    set_from_catalog = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        form = QtWidgets.QVBoxLayout(self)

        cosmo = QtWidgets.QGroupBox("Cosmology")
        cl = QtWidgets.QVBoxLayout(cosmo)
        self.omega_m = ParamSlider("Ωm", 0.1, 0.5, 0.3)
        self.sigma_8 = ParamSlider("σ8", 0.6, 1.0, 0.8)
        self.omega_m.setToolTip("Omega_m, the matter density (limited to the model's prior box)")
        self.sigma_8.setToolTip("sigma_8, the amplitude of linear fluctuations (limited to the prior box)")
        self.prior_label = QtWidgets.QLabel("prior: no model loaded")
        self.prior_label.setStyleSheet("color: gray")
        self.from_catalog = QtWidgets.QPushButton("Use selected catalog's cosmology")
        self.from_catalog.setToolTip("Set the sliders to the cosmology of the catalog selected in the list")
        for w in (self.omega_m, self.sigma_8, self.prior_label, self.from_catalog):
            cl.addWidget(w)
        form.addWidget(cosmo)

        sampler = QtWidgets.QGroupBox("Sampler")
        sl = QtWidgets.QFormLayout(sampler)
        seed_row = QtWidgets.QHBoxLayout()
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, SEED_MAX)
        self.seed.setKeyboardTracking(False)
        self.new_seed = QtWidgets.QPushButton("New seed")
        self.new_seed.setToolTip("Draw a new random seed and sample (Ctrl+N)")
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.new_seed)
        sl.addRow("Seed", seed_row)
        self.steps = QtWidgets.QSpinBox()
        self.steps.setRange(0, 5000)
        self.steps.setSpecialValueText("model default")
        self.steps.setKeyboardTracking(False)
        self.steps.setToolTip("Sampler steps (more = slower, closer to the model's distribution)")
        sl.addRow("Steps", self.steps)
        self.device = QtWidgets.QLabel("-")
        sl.addRow("Device", self.device)
        self.n_halos = QtWidgets.QLabel("-")
        sl.addRow("Halos", self.n_halos)
        buttons = QtWidgets.QHBoxLayout()
        self.sample_button = QtWidgets.QPushButton("Sample")
        self.sample_button.setToolTip("Draw a catalog at these parameters (Ctrl+R)")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the running request (Esc)")
        self.live = QtWidgets.QCheckBox("Live")
        self.live.setToolTip("Also sample while dragging a slider (newest value wins)")
        buttons.addWidget(self.sample_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.live)
        sl.addRow(buttons)
        form.addWidget(sampler)

        view = QtWidgets.QGroupBox("View")
        vl = QtWidgets.QFormLayout(view)
        self.display = QtWidgets.QComboBox()
        self.display.addItems(DISPLAY_MODES)
        self.display.setCurrentText("side by side")
        vl.addRow("Show", self.display)
        self.color_by = QtWidgets.QComboBox()
        self.color_by.addItems(COLOR_MODES)
        vl.addRow("Colour by", self.color_by)
        self.cmap = QtWidgets.QComboBox()
        self.cmap.addItems(CMAPS)
        vl.addRow("Colormap", self.cmap)
        self.space = QtWidgets.QComboBox()
        self.space.addItems(SPACES)
        self.space.setToolTip("Real space, or redshift space s = x + v_los / (aH) along the line of sight (Z)")
        vl.addRow("Space", self.space)
        self.los_axis = QtWidgets.QComboBox()
        self.los_axis.addItems(LOS_AXES)
        self.los_axis.setCurrentText("z")
        vl.addRow("Line of sight", self.los_axis)
        self.size_by_mass = QtWidgets.QCheckBox("Size by mass")
        self.size_by_mass.setChecked(True)
        vl.addRow(self.size_by_mass)
        form.addWidget(view)

        self.picked = QtWidgets.QLabel("Click a halo to see its values.")
        self.picked.setWordWrap(True)
        self.picked.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addWidget(self.picked)
        form.addStretch(1)

        self.omega_m.committed.connect(lambda _: self.sample_requested.emit())
        self.sigma_8.committed.connect(lambda _: self.sample_requested.emit())
        self.omega_m.moved.connect(self._moved)
        self.sigma_8.moved.connect(self._moved)
        self.seed.valueChanged.connect(lambda _: self.sample_requested.emit())
        self.steps.valueChanged.connect(lambda _: self.sample_requested.emit())
        self.new_seed.clicked.connect(self.draw_new_seed)
        self.sample_button.clicked.connect(self.sample_requested.emit)
        self.from_catalog.clicked.connect(self.set_from_catalog.emit)
        for combo in (self.display, self.color_by, self.cmap, self.space, self.los_axis):
            combo.currentTextChanged.connect(lambda _: self.view_changed.emit())
        self.size_by_mass.toggled.connect(lambda _: self.view_changed.emit())

    # ------------------------------------------------------------------ values
    def theta(self) -> tuple[float, float]:
        return self.omega_m.value(), self.sigma_8.value()

    def set_theta(self, omega_m: float, sigma_8: float) -> None:
        """Move the sliders without requesting a sample."""
        self.omega_m.set_value(omega_m)
        self.sigma_8.set_value(sigma_8)

    def steps_value(self) -> int | None:
        return self.steps.value() or None

    def set_steps(self, steps: int | None) -> None:
        with QtCore.QSignalBlocker(self.steps):
            self.steps.setValue(steps or 0)

    def set_seed(self, seed: int) -> None:
        with QtCore.QSignalBlocker(self.seed):
            self.seed.setValue(int(seed))

    def draw_new_seed(self) -> None:
        """A new random seed (the GUI's only unseeded randomness: it picks a seed), then sample."""
        self.seed.setValue(random.SystemRandom().randrange(SEED_MAX))

    def set_prior(self, prior: object) -> None:
        (om_lo, om_hi), (s8_lo, s8_hi) = prior.omega_m, prior.sigma_8
        om, s8 = self.theta()
        self.omega_m.set_range(om_lo, om_hi)
        self.sigma_8.set_range(s8_lo, s8_hi)
        self.set_theta(min(max(om, om_lo), om_hi), min(max(s8, s8_lo), s8_hi))
        self.prior_label.setText(f"prior: Ωm ∈ [{om_lo:g}, {om_hi:g}], σ8 ∈ [{s8_lo:g}, {s8_hi:g}]")

    def set_model_enabled(self, on: bool) -> None:
        for w in (self.omega_m, self.sigma_8, self.seed, self.new_seed, self.steps, self.sample_button,
                  self.live, self.from_catalog):
            w.setEnabled(on)

    def _moved(self, _value: float) -> None:
        if self.live.isChecked():
            self.sample_requested.emit()
