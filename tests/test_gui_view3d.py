"""The 3D view on its own: where side-by-side puts the simulation, and picking in it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_catalog

pytestmark = pytest.mark.gui


def _display_x(view, point) -> float:
    ren = view.plotter.renderer
    ren.SetWorldPoint(*map(float, point), 1.0)
    ren.WorldToDisplay()
    return ren.GetDisplayPoint()[0]


def test_side_by_side_puts_the_simulation_on_the_right_of_the_screen(qtbot):
    """The label says "simulation (right)": in the default isometric view its box is drawn to the right of the
    sample's on screen, and a click on one of its halos picks that halo of the simulation."""
    from lssviewer.gui.view3d import HaloView

    view = HaloView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    try:
        sample, sim = make_catalog(n=40, box=100.0, seed=1), make_catalog(n=40, box=100.0, seed=2)
        view.set_catalog("sample", sample, "a sample")
        view.set_catalog("simulation", sim, "a simulation")
        view.reset_camera()
        view.plotter.render()
        offset = view._offset(view.layers["simulation"])
        centre = np.full(3, 50.0)
        assert _display_x(view, centre + offset) > _display_x(view, centre) + 100  # pixels
        info = view.pick_nearest(sim.positions[5] + offset)
        assert info["layer"] == "simulation" and info["index"] == 5
    finally:
        view.close_view()
