"""Matter power spectrum of simulation particles (for validation of the simulator).

Estimator: cloud-in-cell assignment of the particles on an M^3 mesh, FFT, division by the CIC
window ``prod_i sinc^2(k_i H / 2)`` (H the cell size), ``P(k) = |delta_k|^2 L^3 / M^6`` averaged in
linear shells of width ``dk`` (default the fundamental frequency ``2 pi / L``), from the first shell
up to the Nyquist frequency ``pi M / L``. No shot noise is subtracted: particles that started on a
lattice have a discreteness noise far below the Poisson ``1/n`` at the scales we compare (k below
half the Nyquist frequency of the particle grid); aliasing makes the estimate reliable only below
about half the mesh Nyquist frequency.
"""

from __future__ import annotations

import numpy as np

from lssviewer.sim.pm import NumbaPM, cic_window


def binned_power(delta_k: np.ndarray, box_size: float, mesh: int, dk: float | None = None,
                 kmax: float | None = None) -> dict[str, np.ndarray]:
    """Shell-averaged |delta_k|^2 L^3 / M^6 of an rfft-layout field (no window correction).

    Returns a dict with ``k`` (mean |k| of the modes in each shell, h/Mpc), ``power``
    ((Mpc/h)^3) and ``modes`` (number of independent complex modes, counting the rfft half-space
    with the usual weights so that each +-k pair counts once).
    """
    kf = 2.0 * np.pi / box_size
    dk = kf if dk is None else float(dk)
    kmax = np.pi * mesh / box_size if kmax is None else float(kmax)
    kx = np.fft.fftfreq(mesh, d=1.0 / mesh) * kf
    kz = np.fft.rfftfreq(mesh, d=1.0 / mesh) * kf
    kmag = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
    # weights: the planes kz = 0 and kz = Nyquist hold each +-k pair twice in the rfft layout
    weight = np.full(kz.shape, 2.0)
    weight[0] = 1.0
    if mesh % 2 == 0:
        weight[-1] = 1.0
    weight = np.broadcast_to(weight[None, None, :], kmag.shape)
    power = np.abs(delta_k) ** 2 * (box_size**3 / mesh**6)
    shell = np.floor(kmag / dk + 0.5).astype(np.int64)  # shell i holds |k| in [(i-1/2) dk, (i+1/2) dk)
    nbins = int(np.floor(kmax / dk + 0.5)) + 1
    keep = (shell >= 1) & (shell < nbins)
    sw = np.bincount(shell[keep], weights=weight[keep], minlength=nbins)
    sk = np.bincount(shell[keep], weights=(weight * kmag)[keep], minlength=nbins)
    sp = np.bincount(shell[keep], weights=(weight * power)[keep], minlength=nbins)
    good = sw > 0
    return {"k": sk[good] / sw[good], "power": sp[good] / sw[good], "modes": sw[good] / 2.0}


def particle_power(positions: np.ndarray, box_size: float, mesh: int, threads: int | None = None,
                   dk: float | None = None) -> dict[str, np.ndarray]:
    """Matter power spectrum of equal-mass particles in a periodic box (see module docstring).

    Args:
        positions: (N, 3) comoving Mpc/h in [0, L).
        box_size: Mpc/h.
        mesh: cells per side of the estimator mesh.
        threads: threads for painting and the FFT.
        dk: shell width in h/Mpc (default 2 pi / L).

    Returns:
        dict with ``k`` [h/Mpc], ``power`` [(Mpc/h)^3] and ``modes`` per shell.
    """
    import scipy.fft

    pm = NumbaPM(mesh, box_size, len(positions), threads=threads)
    counts = pm.paint(np.ascontiguousarray(positions, dtype=np.float64))
    delta = counts.astype(np.float64) * (mesh**3 / len(positions)) - 1.0
    delta_k = scipy.fft.rfftn(delta, workers=pm.threads)
    kf = 2.0 * np.pi / box_size
    kx = np.fft.fftfreq(mesh, d=1.0 / mesh) * kf
    kz = np.fft.rfftfreq(mesh, d=1.0 / mesh) * kf
    cell = box_size / mesh
    window = cic_window(kx, cell)[:, None, None] * cic_window(kx, cell)[None, :, None] \
        * cic_window(kz, cell)[None, None, :]
    delta_k /= window
    return binned_power(delta_k, box_size, mesh, dk=dk)


def linear_field_power(delta_k: np.ndarray, box_size: float, dk: float | None = None) -> dict[str, np.ndarray]:
    """Shell-averaged power of the initial linear field ``delta_k`` (from :func:`~lssviewer.sim.ics.linear_field`)."""
    return binned_power(delta_k, box_size, delta_k.shape[0], dk=dk)
