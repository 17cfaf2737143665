"""The 3D view on its own: where side-by-side puts the simulation, and picking in it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_catalog

pytestmark = pytest.mark.gui


def _display_xy(view, point) -> tuple[float, float]:
    ren = view.plotter.renderer
    ren.SetWorldPoint(*map(float, point), 1.0)
    ren.WorldToDisplay()
    return ren.GetDisplayPoint()[:2]


def test_side_by_side_puts_the_simulation_on_the_right_of_the_screen(qtbot):
    """The label says "simulation (right)": after a reset and after each camera preset its box is drawn to the right
    of the sample's on screen (more right than up or down), and a click on one of its halos picks that halo."""
    from lssviewer.gui.view3d import CAMERA_PRESETS, HaloView

    view = HaloView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    try:
        sample, sim = make_catalog(n=40, box=100.0, seed=1), make_catalog(n=40, box=100.0, seed=2)
        view.set_catalog("sample", sample, "a sample")
        view.set_catalog("simulation", sim, "a simulation")
        centre = np.full(3, 50.0)
        for preset in ("reset", *CAMERA_PRESETS):
            view.reset_camera() if preset == "reset" else view.camera_preset(preset)
            view.plotter.render()
            offset = view._offset(view.layers["simulation"])
            (xs, ys), (x0, y0) = _display_xy(view, centre + offset), _display_xy(view, centre)
            assert xs - x0 > 100 and xs - x0 > abs(ys - y0), (preset, xs - x0, ys - y0)  # pixels
            np.testing.assert_allclose(view.layers["simulation"].offset, offset)  # drawn where picking looks
            info = view.pick_nearest(sim.positions[5] + offset)
            assert info["layer"] == "simulation" and info["index"] == 5
    finally:
        view.close_view()
