"""The 3D view: halos as sprites sized by mass in a PyVista QtInteractor.

Two layers can be shown: the model *sample* and a loaded *simulation*, toggled or side by side
(the simulation drawn one box-width and a gap beside the sample, along the box axis nearest to the screen's
right in the last camera preset, in the same scene, so both share one camera and one render). Colour: log10 mass
[Msun/h], speed |v| [km/s] or the line-of-sight velocity v_los [km/s], with a scalar bar. Positions
in real space or in redshift space along the chosen axis (computed by
:meth:`HaloCatalog.redshift_space_positions`).

Rendering habits (see the project's gui-headless notes): render only on the GUI thread; update
an existing actor's arrays in place when the number of halos is unchanged (intermediate
denoising states) and repaint once with ``plotter.update()``; no multisampling.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyvista as pv
from PySide6 import QtCore, QtGui, QtWidgets
from pyvistaqt import QtInteractor

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.gui.session import COLOR_MODES, DISPLAY_MODES, LOS_AXES

CMAPS = ("viridis", "plasma", "inferno", "magma", "cividis", "coolwarm", "RdBu_r", "turbo")
CAMERA_PRESETS = ("isometric", "xy", "xz", "yz")
LAYERS = ("sample", "simulation")
#: Above this many halos a layer is drawn as plain points (one size) instead of mass-sized sprites:
#: sprites cost about twice as much per frame on software OpenGL (50k: ~300 vs ~160 ms).
SPRITE_LIMIT = 20_000
#: Gap between the two boxes in side-by-side mode, in box widths.
SIDE_GAP = 0.25
SCALAR_TITLES = {"log10 mass": "log10 M", "speed": "|v| km/s", "line-of-sight velocity": "v_los km/s"}


@dataclasses.dataclass
class _Layer:
    name: str
    catalog: HaloCatalog | None = None
    positions: np.ndarray | None = None  # as drawn (real or redshift space, before the offset)
    mesh: pv.PolyData | None = None
    actor: object = None
    outline: object = None
    label: str = ""
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


def sprite_radius(log10_mass: np.ndarray, box_size: float, n_halos: int) -> np.ndarray:
    """Sprite radius [Mpc/h] growing with mass: from 0.4 to 1.6 of a base radius.

    The base radius is a fixed fraction of the mean inter-halo spacing, so the box looks equally
    filled for a few hundred or tens of thousands of halos.
    """
    spacing = box_size / max(n_halos, 1) ** (1 / 3)
    lo, hi = (np.percentile(log10_mass, [1, 99]) if len(log10_mass) else (0.0, 1.0))
    t = np.clip((log10_mass - lo) / max(hi - lo, 1e-9), 0, 1)
    return (0.1 * spacing * (0.4 + 1.2 * t)).astype(np.float32)


class HaloView(QtWidgets.QWidget):
    """Halos in 3D. Signals ``halo_picked(dict)`` when a halo is clicked."""

    halo_picked = QtCore.Signal(object)
    rendered = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.plotter = QtInteractor(self, off_screen=False, auto_update=False, multi_samples=0)
        self.plotter.set_background("#14161c", top="#2a2f3a")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plotter)
        self.layers = {name: _Layer(name) for name in LAYERS}
        self.color_by = "log10 mass"
        self.cmap = "viridis"
        self.space = "real"
        self.los_axis = "z"
        self.display = "side by side"
        self._side_axis: tuple[int, float] = (1, 1.0)  # side by side: simulation along +y (see _place_side_by_side)
        self.size_by_mass = True
        self._clim: tuple[float, float] | None = None
        self._scalar_bar = None
        self._pick_actor = None
        self._camera_set = False
        self.plotter.enable_point_picking(callback=self._on_pick, show_message=False, left_clicking=True,
                                          show_point=False, use_picker=False, pickable_window=False)
        self._hint = self.plotter.add_text("", position="upper_left", font_size=10, color="#c8ccd4",
                                           name="hint")
        self.notice = ""  # start-up problems (no model, no demo files), shown in the view's corner

    # ------------------------------------------------------------------ data
    def set_catalog(self, layer: str, catalog: HaloCatalog | None, label: str = "") -> None:
        """Show ``catalog`` in ``layer`` ('sample' or 'simulation'); None clears the layer."""
        lay = self.layers[layer]
        appearing = lay.catalog is None and catalog is not None
        lay.catalog, lay.label = catalog, label
        if layer == "sample" and self.display == "side by side":
            self._draw_layer(self.layers["simulation"])  # its offset follows the sample's box
        self._draw_layer(lay)
        if appearing and not self._camera_set:
            self.reset_camera()
        self._finish()

    def show_state(self, state: np.ndarray, box_size: float, redshift: float, cosmology: Cosmology | None,
                   label: str = "") -> None:
        """Show an intermediate denoising state (n, 7: x y z vx vy vz log10 M) as the sample layer."""
        state = np.asarray(state, dtype=np.float64)
        if state.ndim != 2 or state.shape[1] != 7 or not np.all(np.isfinite(state)):
            return
        try:
            cat = HaloCatalog(state[:, :3], state[:, 3:6], 10.0 ** np.clip(state[:, 6], -30, 30), box_size,
                              redshift=redshift, cosmology=cosmology, wrap=True)
        except Exception:  # noqa: BLE001 - a malformed intermediate state is skipped, never fatal
            return
        self.set_catalog("sample", cat, label)

    def set_notice(self, text: str) -> None:
        """Show ``text`` (ASCII: VTK's font has no Greek) under the layer labels; "" removes it."""
        self.notice = text
        self._finish()

    def catalog(self, layer: str) -> HaloCatalog | None:
        return self.layers[layer].catalog

    # ------------------------------------------------------------------ options
    def set_color_by(self, mode: str) -> None:
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode must be one of {COLOR_MODES}")
        self.color_by = mode
        self.redraw(rebuild=True)

    def set_cmap(self, cmap: str) -> None:
        self.cmap = cmap
        self.redraw(rebuild=True)

    def set_space(self, space: str, los_axis: str | None = None) -> None:
        self.space = space
        if los_axis is not None:
            if los_axis not in LOS_AXES:
                raise ValueError(f"line of sight must be one of {LOS_AXES}")
            self.los_axis = los_axis
        self.redraw()

    def set_display(self, mode: str) -> None:
        if mode not in DISPLAY_MODES:
            raise ValueError(f"display mode must be one of {DISPLAY_MODES}")
        self.display = mode
        self.redraw(rebuild=True)
        self.reset_camera()

    def set_size_by_mass(self, on: bool) -> None:
        self.size_by_mass = bool(on)
        self.redraw()

    def redraw(self, rebuild: bool = False) -> None:
        for lay in self.layers.values():
            if rebuild:
                self._remove_layer_actors(lay)
            self._draw_layer(lay)
        self._finish()

    # ------------------------------------------------------------------ camera
    def camera_preset(self, name: str) -> None:
        if name == "isometric":
            self.plotter.view_isometric(render=False)
        elif name == "xy":
            self.plotter.view_xy(render=False)
        elif name == "xz":
            self.plotter.view_xz(render=False)
        elif name == "yz":
            self.plotter.view_yz(render=False)
        else:
            raise ValueError(f"camera preset must be one of {CAMERA_PRESETS}")
        self._place_side_by_side()
        self.plotter.reset_camera(render=False)
        self.plotter.update()

    def reset_camera(self) -> None:
        """Isometric view of everything shown; a camera restored from a session is forgotten."""
        self._camera_set = False
        self.plotter.view_isometric(render=False)
        self._place_side_by_side()
        self.plotter.reset_camera(render=False)
        self.plotter.update()

    def _place_side_by_side(self) -> None:
        """Put the side-by-side simulation along the box axis (with its sign) nearest to the screen's right in the
        camera just set, so that it is drawn to the right of the sample ("simulation (right)"); redraws it when
        that changes. Only at presets and resets: free rotation moves the camera, not the boxes."""
        cam = self.plotter.camera
        direction = np.subtract(cam.focal_point, cam.position)
        right = np.cross(direction, cam.up)
        scores = np.concatenate([right, -right])
        k = int(np.argmax(scores))  # ties (isometric: -x and +y) go to the first, +y
        side = (k % 3, 1.0 if k < 3 else -1.0)
        if side != self._side_axis:
            self._side_axis = side
            sim = self.layers["simulation"]
            if self.display == "side by side" and sim.catalog is not None:
                self._draw_layer(sim)
                self._finish()

    def camera_position(self) -> list[list[float]]:
        return [list(map(float, v)) for v in self.plotter.camera_position]

    def set_camera_position(self, position: list[list[float]]) -> None:
        self.plotter.camera_position = [tuple(v) for v in position]
        self._camera_set = True
        self.plotter.update()

    # ------------------------------------------------------------------ images
    def grab_image(self) -> QtGui.QImage:
        """The rendered view as a QImage (reads the OpenGL framebuffer)."""
        self.plotter.render()
        return self.plotter.grabFramebuffer()

    def grab_array(self) -> np.ndarray:
        """The rendered view as an (H, W, 3) uint8 array."""
        img = self.grab_image().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        ptr = img.constBits()
        arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes())
        return arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(
            img.height(), img.width(), 3).copy()

    def save_screenshot(self, path: str | Path) -> None:
        if not self.grab_image().save(str(path), "PNG"):
            raise OSError(f"could not write the image {path}")

    def close_view(self) -> None:
        self.plotter.close()

    # ------------------------------------------------------------------ internals
    def _offset(self, lay: _Layer) -> np.ndarray:
        if lay.name == "simulation" and self.display == "side by side":
            sample = self.layers["sample"].catalog
            base = sample.box_size if sample is not None else 0.0
            if base:  # along the box axis nearest to the screen's right in the last camera preset
                axis, sign = self._side_axis
                offset = np.zeros(3)
                offset[axis] = sign * base * (1 + SIDE_GAP)
                return offset
        return np.zeros(3)

    def _visible(self, lay: _Layer) -> bool:
        return lay.catalog is not None and (self.display == "side by side" or self.display == lay.name)

    def _positions(self, cat: HaloCatalog) -> np.ndarray:
        if self.space == "redshift" and cat.cosmology is not None:
            return cat.redshift_space_positions(self.los_axis)
        return cat.positions

    def _scalars(self, cat: HaloCatalog) -> np.ndarray:
        if self.color_by == "speed":
            return cat.speed
        if self.color_by == "line-of-sight velocity":
            return cat.velocities[:, "xyz".index(self.los_axis)]
        return cat.log10_mass

    def _remove_layer_actors(self, lay: _Layer) -> None:
        for attr in ("actor", "outline"):
            actor = getattr(lay, attr)
            if actor is not None:
                self.plotter.remove_actor(actor, reset_camera=False, render=False)
                setattr(lay, attr, None)
        lay.mesh = None

    def _draw_layer(self, lay: _Layer) -> None:
        if not self._visible(lay):
            self._remove_layer_actors(lay)
            lay.positions = None
            return
        cat = lay.catalog
        pos = self._positions(cat)
        lay.positions = pos
        offset = self._offset(lay)
        if lay.mesh is not None and tuple(offset) != lay.offset:
            self._remove_layer_actors(lay)
        lay.offset = tuple(float(o) for o in offset)
        shown = (pos + offset).astype(np.float32)
        scalars = self._scalars(cat).astype(np.float32)
        sizes = (sprite_radius(cat.log10_mass, cat.box_size, len(cat)) if self.size_by_mass
                 else np.full(len(cat), sprite_radius(np.zeros(1), cat.box_size, len(cat))[0], np.float32))
        if lay.mesh is not None and lay.mesh.n_points == len(cat):  # fast path: update in place
            lay.mesh.points[:] = shown
            lay.mesh.point_data["value"][:] = scalars
            lay.mesh.point_data["size"][:] = sizes
            lay.mesh.Modified()
        else:
            self._remove_layer_actors(lay)
            mesh = pv.PolyData(shown)
            mesh.point_data["value"] = scalars
            mesh.point_data["size"] = sizes
            lay.mesh = mesh
            if len(cat) <= SPRITE_LIMIT:
                lay.actor = self.plotter.add_mesh(
                    mesh, scalars="value", style="points_gaussian", emissive=False, render_points_as_spheres=True,
                    cmap=self.cmap, show_scalar_bar=False, reset_camera=False, render=False,
                    name=f"halos-{lay.name}")
                lay.actor.mapper.scale_array = "size"
                lay.actor.mapper.scale_factor = 1.0
            else:
                lay.actor = self.plotter.add_mesh(
                    mesh, scalars="value", style="points", point_size=3, cmap=self.cmap, show_scalar_bar=False,
                    reset_camera=False, render=False, name=f"halos-{lay.name}")
            lo = self._offset(lay)
            L = cat.box_size
            box = pv.Box(bounds=(lo[0], lo[0] + L, lo[1], lo[1] + L, lo[2], lo[2] + L)).outline()
            lay.outline = self.plotter.add_mesh(box, color="#8a93a6", line_width=1, pickable=False,
                                                reset_camera=False, render=False, name=f"box-{lay.name}")

    def _finish(self) -> None:
        """Common colour range and scalar bar for the visible layers, labels, one repaint."""
        visible = [lay for lay in self.layers.values() if lay.actor is not None]
        if visible:
            values = np.concatenate([lay.mesh.point_data["value"] for lay in visible])
            lo, hi = np.percentile(values, [1, 99]) if len(values) else (0.0, 1.0)
            if self.color_by == "line-of-sight velocity":
                lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
            if hi <= lo:
                hi = lo + 1.0
            self._clim = (float(lo), float(hi))
            for lay in visible:
                lay.actor.mapper.scalar_range = self._clim
            title = SCALAR_TITLES[self.color_by]
            if self._scalar_bar is None or self._scalar_bar_title != title or self._scalar_bar_mapper \
                    is not visible[0].actor.mapper:
                self._remove_scalar_bar()
                self._scalar_bar = self.plotter.add_scalar_bar(
                    title=title, mapper=visible[0].actor.mapper, vertical=True, position_x=0.9,
                    position_y=0.1, height=0.8, width=0.05, title_font_size=12, label_font_size=10,
                    n_labels=5, fmt="%.3g", color="#c8ccd4")
                self._scalar_bar_title = title
                self._scalar_bar_mapper = visible[0].actor.mapper
        else:
            self._remove_scalar_bar()
        lines = []
        for lay in self.layers.values():
            if lay.actor is not None and lay.label:
                where = " (right)" if lay.name == "simulation" and self.display == "side by side" and \
                    self.layers["sample"].actor is not None else ""
                lines.append(f"{lay.name}{where}: {lay.label}")
        if self.space == "redshift":
            lines.append(f"redshift space, line of sight {self.los_axis}")
        if self.notice:
            lines.append(self.notice)
        self._hint.SetText(2, "\n".join(lines))  # 2 = upper left corner
        self.plotter.update()
        self.rendered.emit()

    def _remove_scalar_bar(self) -> None:
        if self._scalar_bar is not None:
            for title in list(self.plotter.scalar_bars.keys()):
                self.plotter.remove_scalar_bar(title, render=False)
            self._scalar_bar = None
            self._scalar_bar_title = None
            self._scalar_bar_mapper = None

    def pick_nearest(self, point: np.ndarray) -> dict | None:
        """The halo nearest to a world-space ``point`` among the visible layers, as a dict."""
        best = None
        for lay in self.layers.values():
            if lay.actor is None or lay.positions is None or not len(lay.positions):
                continue
            d2 = np.sum((lay.positions + self._offset(lay) - point) ** 2, axis=1)
            i = int(np.argmin(d2))
            if best is None or d2[i] < best[0]:
                best = (float(d2[i]), lay, i)
        if best is None:
            return None
        _, lay, i = best
        cat = lay.catalog
        info = {"layer": lay.name, "index": i, "x": float(cat.positions[i, 0]), "y": float(cat.positions[i, 1]),
                "z": float(cat.positions[i, 2]), "vx": float(cat.velocities[i, 0]),
                "vy": float(cat.velocities[i, 1]), "vz": float(cat.velocities[i, 2]),
                "log10_mass": float(cat.log10_mass[i]), "speed": float(cat.speed[i])}
        self._highlight(lay.positions[i] + self._offset(lay), cat.box_size)
        return info

    def _highlight(self, where: np.ndarray, box_size: float) -> None:
        marker = pv.Sphere(radius=box_size / 60, center=where)
        self._pick_actor = self.plotter.add_mesh(marker, color="#ff4fa3", style="wireframe", pickable=False,
                                                 reset_camera=False, render=False, name="picked")
        self.plotter.update()

    def _on_pick(self, point: np.ndarray) -> None:
        if point is None:
            return
        info = self.pick_nearest(np.asarray(point, dtype=float))
        if info is not None:
            self.halo_picked.emit(info)
