"""Particle-mesh gravity: cloud-in-cell painting and readout, forces from FFTs, FastPM KDK integrator.

Two interchangeable backends implement the same three operations on particle arrays:

* :class:`NumbaPM` (CPU): compiled numba kernels (parallel, no atomics) and ``scipy.fft`` with
  ``workers`` threads; particles are float64 numpy arrays. The painting is deterministic
  whatever the number of threads (see :func:`_paint_cic`), so a box is bit-identical for a seed.
* :class:`TorchPM` (CUDA, or CPU for testing): ``index_add_`` painting, ``torch.fft`` and
  ``index_select`` readout on float32 tensors. CUDA atomics make the sums order-dependent, so the
  GPU result is reproducible only to float32 rounding, not bitwise.

Units and equations: see :mod:`lssviewer.sim.growth`. The density contrast of the particles on the
mesh (CIC, mean cell occupancy ``N_p / M^3``) gives the force ``F = -grad(phi)``,
``laplacian(phi) = delta``, computed in Fourier space as ``F_k = i g(k) delta_k / k^2`` where ``g`` is
the Fourier multiplier of the gradient: by default FastPM's four-point finite difference
``(8 sin(kH) - sin(2kH)) / (6H)`` (H the cell size); ``"fd2"`` (``sin(kH)/H``) and ``"ik"`` (exact
``k``) are available. Four FFTs per force (one forward, three inverse). ``F`` has units of Mpc/h and
equals the linear displacement in linear theory; the kick is ``p += kick_factor * F`` with the
FastPM factors of :class:`~lssviewer.sim.growth.Growth`.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from typing import Any

import numba as nb
import numpy as np

from lssviewer.sim._sort import counting_sort
from lssviewer.sim.config import FORCE_GRADIENTS
from lssviewer.sim.growth import Growth

# ---------------------------------------------------------------------------------------------------
# numba kernels (CPU)


@nb.njit(parallel=True, cache=True)
def _slab_ids(pos, inv_cell, mesh, nslab, out):  # pragma: no cover - compiled
    for i in nb.prange(pos.shape[0]):
        ix = int(math.floor(pos[i, 0] * inv_cell)) % mesh
        out[i] = ix * nslab // mesh


@nb.njit(parallel=True, cache=True)
def _paint_cic(pos, inv_cell, out, order, start, nslab, weight):  # pragma: no cover - compiled
    """Add ``weight`` per particle to ``out`` (M, M, M) with cloud-in-cell weights.

    Atomic-free and deterministic: the mesh is cut into ``nslab`` (even) slabs along x, each at
    least 2 cells wide. A particle in slab s only touches slabs s and s+1, so all even slabs can
    be painted in parallel, then all odd slabs. Each slab is painted by one thread in particle
    order, so the floating-point sums do not depend on the number of threads.
    """
    m = out.shape[0]
    for phase in range(2):
        for t in nb.prange(nslab // 2):
            s = 2 * t + phase
            for idx in range(start[s], start[s + 1]):
                i = order[idx]
                x = pos[i, 0] * inv_cell
                y = pos[i, 1] * inv_cell
                z = pos[i, 2] * inv_cell
                fx = math.floor(x)
                fy = math.floor(y)
                fz = math.floor(z)
                dx = x - fx
                dy = y - fy
                dz = z - fz
                ix = int(fx) % m
                iy = int(fy) % m
                iz = int(fz) % m
                jx = ix + 1 if ix + 1 < m else 0
                jy = iy + 1 if iy + 1 < m else 0
                jz = iz + 1 if iz + 1 < m else 0
                tx = 1.0 - dx
                ty = 1.0 - dy
                tz = 1.0 - dz
                out[ix, iy, iz] += weight * tx * ty * tz
                out[ix, iy, jz] += weight * tx * ty * dz
                out[ix, jy, iz] += weight * tx * dy * tz
                out[ix, jy, jz] += weight * tx * dy * dz
                out[jx, iy, iz] += weight * dx * ty * tz
                out[jx, iy, jz] += weight * dx * ty * dz
                out[jx, jy, iz] += weight * dx * dy * tz
                out[jx, jy, jz] += weight * dx * dy * dz


@nb.njit(parallel=True, cache=True)
def _readout_kick(pos, mom, inv_cell, fx, fy, fz, factor):  # pragma: no cover - compiled
    """mom += factor * F(pos), F interpolated from the three force meshes with CIC weights."""
    m = fx.shape[0]
    for i in nb.prange(pos.shape[0]):
        x = pos[i, 0] * inv_cell
        y = pos[i, 1] * inv_cell
        z = pos[i, 2] * inv_cell
        flx = math.floor(x)
        fly = math.floor(y)
        flz = math.floor(z)
        dx = x - flx
        dy = y - fly
        dz = z - flz
        ix = int(flx) % m
        iy = int(fly) % m
        iz = int(flz) % m
        jx = ix + 1 if ix + 1 < m else 0
        jy = iy + 1 if iy + 1 < m else 0
        jz = iz + 1 if iz + 1 < m else 0
        tx = 1.0 - dx
        ty = 1.0 - dy
        tz = 1.0 - dz
        w000 = tx * ty * tz
        w001 = tx * ty * dz
        w010 = tx * dy * tz
        w011 = tx * dy * dz
        w100 = dx * ty * tz
        w101 = dx * ty * dz
        w110 = dx * dy * tz
        w111 = dx * dy * dz
        ax = (w000 * fx[ix, iy, iz] + w001 * fx[ix, iy, jz] + w010 * fx[ix, jy, iz] + w011 * fx[ix, jy, jz]
              + w100 * fx[jx, iy, iz] + w101 * fx[jx, iy, jz] + w110 * fx[jx, jy, iz] + w111 * fx[jx, jy, jz])
        ay = (w000 * fy[ix, iy, iz] + w001 * fy[ix, iy, jz] + w010 * fy[ix, jy, iz] + w011 * fy[ix, jy, jz]
              + w100 * fy[jx, iy, iz] + w101 * fy[jx, iy, jz] + w110 * fy[jx, jy, iz] + w111 * fy[jx, jy, jz])
        az = (w000 * fz[ix, iy, iz] + w001 * fz[ix, iy, jz] + w010 * fz[ix, jy, iz] + w011 * fz[ix, jy, jz]
              + w100 * fz[jx, iy, iz] + w101 * fz[jx, iy, jz] + w110 * fz[jx, jy, iz] + w111 * fz[jx, jy, jz])
        mom[i, 0] += factor * ax
        mom[i, 1] += factor * ay
        mom[i, 2] += factor * az


@nb.njit(parallel=True, cache=True)
def _drift(pos, mom, factor, box):  # pragma: no cover - compiled
    """pos += factor * mom, wrapped into [0, box)."""
    for i in nb.prange(pos.shape[0]):
        for d in range(3):
            x = pos[i, d] + factor * mom[i, d]
            x = x % box
            if x >= box:
                x = 0.0
            pos[i, d] = x


@nb.njit(parallel=True, cache=True)
def _gradient_kernel(delta_k, k_full, kz_full, k_grad, kz_grad, axis, norm, out):  # pragma: no cover - compiled
    """out = i g(k_axis) / k^2 * norm * delta_k on the rfft half-mesh (complex64); g the gradient multiplier."""
    m0, m1, m2 = delta_k.shape
    for i in nb.prange(m0):
        for j in range(m1):
            for l in range(m2):
                k2 = k_full[i] * k_full[i] + k_full[j] * k_full[j] + kz_full[l] * kz_full[l]
                if k2 == 0.0:
                    out[i, j, l] = 0.0
                    continue
                if axis == 0:
                    g = k_grad[i]
                elif axis == 1:
                    g = k_grad[j]
                else:
                    g = kz_grad[l]
                c = norm * g / k2
                v = delta_k[i, j, l]
                out[i, j, l] = complex(-c * v.imag, c * v.real)  # i * c * v


# ---------------------------------------------------------------------------------------------------
# backends


def _n_slabs(mesh: int) -> int:
    """Even number of x-slabs, each at least 2 cells wide (independent of the thread count)."""
    return max(2, 2 * (mesh // 4))


GRADIENTS = FORCE_GRADIENTS


def _mesh_wavenumbers(mesh: int, box_size: float, gradient: str = "fd2") -> dict[str, np.ndarray]:
    """Wavenumbers (h/Mpc) of the mesh axes and the Fourier multiplier of the chosen gradient.

    ``gradient``: "fd2" two-point central difference ``sin(k H) / H``; "fd4" four-point
    ``(8 sin(k H) - sin(2 k H)) / (6 H)``; "ik" exact spectral ``k`` (Nyquist set to zero). H is the
    cell size. On a mesh finer than the particle lattice the spectral gradient couples the lattice
    images back onto long waves (a plane wave along an axis feels 1.07 times its linear force at the
    fundamental mode with B = 2), the two-point difference suppresses them (1.002); see docs/simulator.md.
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r} (one of {GRADIENTS})")
    kf = 2.0 * np.pi / box_size
    cell = box_size / mesh
    k_full = np.fft.fftfreq(mesh, d=1.0 / mesh) * kf
    kz_full = np.fft.rfftfreq(mesh, d=1.0 / mesh) * kf

    def multiplier(k: np.ndarray) -> np.ndarray:
        if gradient == "fd2":
            return np.sin(k * cell) / cell
        if gradient == "fd4":
            return (8.0 * np.sin(k * cell) - np.sin(2.0 * k * cell)) / (6.0 * cell)
        g = k.copy()
        if mesh % 2 == 0:
            g[np.isclose(np.abs(k), np.pi / cell)] = 0.0
        return g

    return {"k_full": k_full, "kz_full": kz_full, "k_grad": multiplier(k_full), "kz_grad": multiplier(kz_full)}


def cic_window(k: np.ndarray, cell: float) -> np.ndarray:
    """1-D cloud-in-cell assignment window sinc^2(k cell / 2) (numpy sinc convention handled)."""
    return np.sinc(k * cell / (2.0 * np.pi)) ** 2


class Timer:
    """Accumulates wall time per named phase (seconds)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[name] += now - start
        return now


class NumbaPM:
    """CPU particle mesh: numba CIC kernels + scipy.fft (float32 mesh, float64 particles).

    Args:
        mesh: cells per side.
        box_size: Mpc/h.
        n_particles: total number of particles (sets the mean cell occupancy).
        threads: threads for numba and scipy.fft (default: numba's current setting).
        gradient: finite-difference scheme of the force (see :func:`_mesh_wavenumbers`).
    """

    device = "cpu"

    def __init__(self, mesh: int, box_size: float, n_particles: int, threads: int | None = None,
                 gradient: str = "fd2"):
        self.mesh = int(mesh)
        self.box_size = float(box_size)
        self.n_particles = int(n_particles)
        self.threads = min(int(threads or nb.get_num_threads()), nb.config.NUMBA_NUM_THREADS)
        self.cell = self.box_size / self.mesh
        self.inv_cell = 1.0 / self.cell
        self.nslab = _n_slabs(self.mesh)
        k = _mesh_wavenumbers(self.mesh, self.box_size, gradient)
        self._k = {name: v.astype(np.float32) for name, v in k.items()}
        self.timer = Timer()

    # particle arrays ------------------------------------------------------------------------------
    def from_numpy(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.float64)

    def to_numpy(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(array, dtype=np.float64)

    # operations -----------------------------------------------------------------------------------
    def paint(self, pos: np.ndarray, weight: float = 1.0) -> np.ndarray:
        """CIC mass assignment of the particles (each of mass ``weight``) onto a float32 mesh."""
        nb.set_num_threads(self.threads)
        out = np.zeros((self.mesh,) * 3, np.float32)
        ids = np.empty(len(pos), np.int32)
        _slab_ids(pos, self.inv_cell, self.mesh, self.nslab, ids)
        order, start = counting_sort(ids, self.nslab)
        _paint_cic(pos, self.inv_cell, out, order, start, self.nslab, weight)
        return out

    def force_meshes(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three components of F = -grad(phi) on the mesh (float32, Mpc/h)."""
        import scipy.fft

        t = time.perf_counter()
        density = self.paint(pos)
        t = self.timer.add("paint", t)
        delta_k = scipy.fft.rfftn(density, workers=self.threads, overwrite_x=True)
        del density
        t = self.timer.add("fft", t)
        norm = np.float32(self.mesh**3 / self.n_particles)  # counts -> density contrast
        buf = np.empty_like(delta_k)
        forces = []
        k = self._k
        for axis in range(3):
            _gradient_kernel(delta_k, k["k_full"], k["kz_full"], k["k_grad"], k["kz_grad"], axis, norm, buf)
            t = self.timer.add("kernel", t)
            forces.append(scipy.fft.irfftn(buf, s=(self.mesh,) * 3, workers=self.threads, overwrite_x=True))
            t = self.timer.add("fft", t)
        return forces[0], forces[1], forces[2]

    def kick(self, pos: np.ndarray, mom: np.ndarray, factor: float) -> None:
        """mom += factor * F(pos)."""
        fx, fy, fz = self.force_meshes(pos)
        t = time.perf_counter()
        _readout_kick(pos, mom, self.inv_cell, fx, fy, fz, float(factor))
        self.timer.add("readout", t)

    def drift(self, pos: np.ndarray, mom: np.ndarray, factor: float) -> None:
        """pos += factor * mom (wrapped)."""
        t = time.perf_counter()
        _drift(pos, mom, float(factor), self.box_size)
        self.timer.add("drift", t)


class TorchPM:
    """Particle mesh in torch (float32 particles and mesh), for CUDA; also runs on CPU for tests.

    Same interface and equations as :class:`NumbaPM`.
    """

    def __init__(self, mesh: int, box_size: float, n_particles: int, device: str = "cuda",
                 gradient: str = "fd2"):
        import torch

        self.torch = torch
        self.mesh = int(mesh)
        self.box_size = float(box_size)
        self.n_particles = int(n_particles)
        self.device = str(device)
        self.cell = self.box_size / self.mesh
        self.inv_cell = 1.0 / self.cell
        k = _mesh_wavenumbers(self.mesh, self.box_size, gradient)
        dev = torch.device(self.device)
        m = self.mesh
        kx = torch.as_tensor(k["k_full"], dtype=torch.float32, device=dev)
        kz = torch.as_tensor(k["kz_full"], dtype=torch.float32, device=dev)
        k2 = kx.view(m, 1, 1) ** 2 + kx.view(1, m, 1) ** 2 + kz.view(1, 1, -1) ** 2
        k2[0, 0, 0] = 1.0
        green = (m**3 / self.n_particles) / k2  # built on the device: no host-to-device copy of a mesh
        green[0, 0, 0] = 0.0
        self._green = green
        self._kgrad = (
            torch.as_tensor(k["k_grad"], dtype=torch.float32, device=dev).view(m, 1, 1),
            torch.as_tensor(k["k_grad"], dtype=torch.float32, device=dev).view(1, m, 1),
            torch.as_tensor(k["kz_grad"], dtype=torch.float32, device=dev).view(1, 1, m // 2 + 1),
        )
        self.timer = Timer()

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def from_numpy(self, array: np.ndarray):
        return self.torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.device).contiguous()

    def to_numpy(self, array) -> np.ndarray:
        return array.detach().cpu().numpy().astype(np.float64)

    def _cic(self, pos):
        """Per-corner flat mesh indices (8, N) and weights (8, N)."""
        torch = self.torch
        m = self.mesh
        x = pos * self.inv_cell
        fl = torch.floor(x)
        d = x - fl
        i0 = fl.long() % m
        i1 = (i0 + 1) % m
        t = 1.0 - d
        idx = []
        wts = []
        for cx in (0, 1):
            ix = i1[:, 0] if cx else i0[:, 0]
            wx = d[:, 0] if cx else t[:, 0]
            for cy in (0, 1):
                iy = i1[:, 1] if cy else i0[:, 1]
                wy = d[:, 1] if cy else t[:, 1]
                for cz in (0, 1):
                    iz = i1[:, 2] if cz else i0[:, 2]
                    wz = d[:, 2] if cz else t[:, 2]
                    idx.append((ix * m + iy) * m + iz)
                    wts.append(wx * wy * wz)
        return idx, wts

    def paint(self, pos, weight: float = 1.0):
        torch = self.torch
        out = torch.zeros(self.mesh**3, dtype=torch.float32, device=pos.device)
        idx, wts = self._cic(pos)
        for i, w in zip(idx, wts, strict=True):
            out.index_add_(0, i, w * weight)
        return out.view((self.mesh,) * 3)

    def force_meshes(self, pos):
        torch = self.torch
        self._sync()
        t = time.perf_counter()
        density = self.paint(pos)
        self._sync()
        t = self.timer.add("paint", t)
        delta_k = torch.fft.rfftn(density)
        del density
        self._sync()
        t = self.timer.add("fft", t)
        forces = []
        for axis in range(3):
            field = delta_k * (self._green * self._kgrad[axis]) * 1j
            self._sync()
            t = self.timer.add("kernel", t)
            forces.append(torch.fft.irfftn(field, s=(self.mesh,) * 3))
            self._sync()
            t = self.timer.add("fft", t)
        return forces

    def kick(self, pos, mom, factor: float) -> None:
        forces = self.force_meshes(pos)
        t = time.perf_counter()
        idx, wts = self._cic(pos)
        for axis in range(3):
            flat = forces[axis].reshape(-1)
            acc = torch_sum_weighted(self.torch, flat, idx, wts)
            mom[:, axis] += float(factor) * acc
        self._sync()
        self.timer.add("readout", t)

    def drift(self, pos, mom, factor: float) -> None:
        t = time.perf_counter()
        pos += float(factor) * mom
        pos.remainder_(self.box_size)
        pos[pos >= self.box_size] = 0.0
        self._sync()
        self.timer.add("drift", t)


def torch_sum_weighted(torch: Any, flat, idx, wts):
    """sum_c w_c * flat[idx_c] with index_select (faster than advanced indexing)."""
    acc = torch.zeros_like(wts[0])
    for i, w in zip(idx, wts, strict=True):
        acc += w * torch.index_select(flat, 0, i)
    return acc


# ---------------------------------------------------------------------------------------------------
# integrator


def time_steps(a_init: float, a_final: float, steps: int) -> np.ndarray:
    """Scale factors of the KDK steps: uniform in a (FastPM's default), ``steps + 1`` values."""
    return np.linspace(a_init, a_final, steps + 1)


def fastpm_kdk(pm: Any, pos: Any, mom: Any, growth: Growth, a_init: float, a_final: float,
               steps: int, callback: Any = None) -> None:
    """Evolve ``pos``, ``mom`` in place from ``a_init`` to ``a_final`` with FastPM KDK steps.

    Positions and momenta are synchronised at ``a_init`` and at ``a_final``; the two half-kicks
    between consecutive drifts use the same force and are merged, so a run costs ``steps + 1``
    force evaluations. ``callback(step, steps)`` is called after each step.
    """
    a = time_steps(a_init, a_final, steps)
    a_half = 0.5 * (a[:-1] + a[1:])
    pm.kick(pos, mom, growth.kick_factor(a[0], a_half[0], a[0]))
    for i in range(steps):
        pm.drift(pos, mom, growth.drift_factor(a[i], a[i + 1], a_half[i]))
        a_kick_end = a_half[i + 1] if i + 1 < steps else a[-1]
        pm.kick(pos, mom, growth.kick_factor(a_half[i], a_kick_end, a[i + 1]))
        if callback is not None:
            callback(i + 1, steps)


def make_pm(device: str, mesh: int, box_size: float, n_particles: int, threads: int | None = None,
            gradient: str = "fd2") -> NumbaPM | TorchPM:
    """The particle-mesh backend for ``device`` ("cpu" -> numba, "cuda[:i]" or "torch-cpu" -> torch)."""
    if device == "cpu":
        return NumbaPM(mesh, box_size, n_particles, threads=threads, gradient=gradient)
    if device == "torch-cpu":
        return TorchPM(mesh, box_size, n_particles, device="cpu", gradient=gradient)
    return TorchPM(mesh, box_size, n_particles, device=device, gradient=gradient)


def default_threads() -> int:
    """Threads for the CPU kernels: ``LSSVIEWER_THREADS`` if set, else the usable cores."""
    env = os.environ.get("LSSVIEWER_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
