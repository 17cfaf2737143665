"""Initial conditions: a Gaussian linear density field and its 2LPT displacements and momenta.

Conventions (see :mod:`lssviewer.sim.growth` for time and momentum units):

* Particles start on a regular Lagrangian lattice ``q = (i, j, k) L / n`` (cell corners), particle
  index ``(i n + j) n + k``; positions are comoving Mpc/h in ``[0, L)``.
* The linear density field at z = 0 (``D = 1``) is ``delta_k = W_k sqrt(P_lin(k) n^3 / L^3)`` in the
  unnormalised DFT convention ``delta_k = sum_x delta(x) exp(-i k.x)``, where ``W_k`` is the DFT of
  unit-variance real white noise drawn from ``numpy.random.Generator(PCG64(seed))`` on the n^3
  lattice (so ``<|delta_k|^2> L^3 / n^6 = P_lin(k)``). With ``fixed_amplitude`` the moduli
  ``|W_k|`` are set to ``n^{3/2}`` (Angulo & Pontzen 2016) and only the phases are random; with
  ``invert_phases`` the field is ``-delta_k`` (the "paired" companion).
* 2LPT (Scoccimarro 1998; Crocce, Pueblas & Scoccimarro 2006):
  ``x = q + D1 Psi1 + D2 Psi2`` with ``Psi1 = -grad phi1``, ``laplacian phi1 = delta``,
  ``Psi2 = grad phi2``, ``laplacian phi2 = sum_{i<j} [phi1_ii phi1_jj - phi1_ij^2]`` and
  ``D2 = -3/7 D1^2 Omega_m(a)^(-1/143)``; momenta ``p = a^3 E(a) (dD1/da Psi1 + dD2/da Psi2)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from lssviewer.cosmology import Cosmology
from lssviewer.errors import ParameterError
from lssviewer.sim.config import SimConfig
from lssviewer.sim.growth import Growth


def linear_power_function(cosmology: Cosmology, kind: str = "eisenstein98") -> Callable[[np.ndarray], np.ndarray]:
    """P_lin(k) at z = 0 in (Mpc/h)^3 for k in h/Mpc, normalised to the cosmology's sigma_8.

    ``kind``: ``"eisenstein98"`` (colossus Eisenstein & Hu 1998 transfer function with BAO wiggles)
    or ``"camb"`` (CAMB linear matter power, rescaled to sigma_8).
    The result is tabulated on 2000 log-spaced points and interpolated in log-log
    (relative interpolation error < 1e-5).
    """
    if cosmology.sigma_8 is None:
        raise ParameterError("the simulator needs sigma_8")
    k_tab = np.logspace(-5, 2, 2000)
    if kind == "eisenstein98":
        p_tab = cosmology.linear_power(k_tab, z=0.0)
    elif kind == "camb":
        p_tab = _camb_power(cosmology, k_tab)
    else:
        raise ParameterError(f"unknown power spectrum {kind!r}")
    log_k, log_p = np.log(k_tab), np.log(p_tab)

    def power(k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=np.float64)
        out = np.zeros_like(k)
        pos = k > 0
        out[pos] = np.exp(np.interp(np.log(k[pos]), log_k, log_p))
        return out

    return power


def check_power_spectrum_available(kind: str) -> None:
    """Raise ParameterError early if the requested P(k) backend cannot be used."""
    if kind == "camb":
        try:
            import camb  # noqa: F401
        except ImportError:
            raise ParameterError("power_spectrum 'camb' needs the camb package (pip install camb)") from None


def _camb_power(cosmology: Cosmology, k: np.ndarray) -> np.ndarray:  # pragma: no cover - optional dependency
    import camb

    h = cosmology.h
    pars = camb.CAMBparams()
    pars.set_cosmology(H0=100 * h, ombh2=cosmology.omega_b * h**2,
                       omch2=(cosmology.omega_m - cosmology.omega_b) * h**2, mnu=0.0, omk=0.0)
    pars.InitPower.set_params(As=2.1e-9, ns=cosmology.n_s)
    pars.set_matter_power(redshifts=[0.0], kmax=min(float(k.max()) * h * 1.1, 200.0))
    results = camb.get_results(pars)
    interp = results.get_matter_power_interpolator(nonlinear=False, hubble_units=True, k_hunit=True,
                                                   extrap_kmax=float(k.max()) * 1.1)
    sigma8_camb = float(results.get_sigma8_0())
    return interp.P(0.0, k) * (cosmology.sigma_8 / sigma8_camb) ** 2


def check_seed(seed: int) -> int:
    """Return ``seed`` as a Python int, or raise ParameterError if it is not a whole number >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ParameterError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def _wavenumbers(n: int, box_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(k for the full axes, k for the last rfft axis) in h/Mpc."""
    kf = 2.0 * np.pi / box_size
    return np.fft.fftfreq(n, d=1.0 / n) * kf, np.fft.rfftfreq(n, d=1.0 / n) * kf


def linear_field(cosmology: Cosmology, seed: int, config: SimConfig, workers: int | None = None) -> np.ndarray:
    """The z = 0 linear density field ``delta_k`` (complex128, rfft layout (n, n, n//2 + 1)).

    Deterministic in (cosmology, seed, particles, box_size, power_spectrum, fixed_amplitude,
    invert_phases).
    """
    import scipy.fft

    n, box = config.particles, config.box_size
    workers = workers or os.cpu_count() or 1
    rng = np.random.Generator(np.random.PCG64(check_seed(seed)))
    noise = rng.standard_normal((n, n, n))
    wk = scipy.fft.rfftn(noise, workers=workers, overwrite_x=True)
    del noise
    if config.fixed_amplitude:
        modulus = np.abs(wk)
        modulus[modulus == 0] = 1.0
        wk *= n**1.5 / modulus
    kx, kz = _wavenumbers(n, box)
    kmag = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
    power = linear_power_function(cosmology, config.power_spectrum)
    wk *= np.sqrt(power(kmag) * n**3 / box**3)
    if config.invert_phases:
        wk *= -1.0
    wk[0, 0, 0] = 0.0
    return wk


@dataclasses.dataclass
class InitialConditions:
    """2LPT initial state at scale factor ``a``.

    Attributes:
        positions: (N, 3) float64 comoving Mpc/h in [0, L).
        momenta: (N, 3) float64 ``p = a^2 dx/dt / H0`` in Mpc/h (velocity = 100 p / a km/s).
        a: scale factor of the initial conditions.
        delta_k: the z = 0 linear density field (rfft layout), for validation.
    """

    positions: np.ndarray
    momenta: np.ndarray
    a: float
    delta_k: np.ndarray


def lpt_displacements(delta_k: np.ndarray, box_size: float,
                      workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First- and second-order Lagrangian displacements (Psi1, Psi2), each (N, 3) float64 in Mpc/h.

    ``delta_k`` is the linear field at D = 1 in the rfft layout of an n^3 lattice.
    """
    import scipy.fft

    workers = workers or os.cpu_count() or 1
    n = delta_k.shape[0]
    kx, kz = _wavenumbers(n, box_size)
    # first derivatives: drop the (real-ambiguous) Nyquist frequency
    kx_grad = kx.copy()
    kz_grad = kz.copy()
    if n % 2 == 0:
        kx_grad[n // 2] = 0.0
        kz_grad[-1] = 0.0
    kvec = (kx[:, None, None], kx[None, :, None], kz[None, None, :])
    kgrad = (kx_grad[:, None, None], kx_grad[None, :, None], kz_grad[None, None, :])
    k2 = kvec[0] ** 2 + kvec[1] ** 2 + kvec[2] ** 2
    k2[0, 0, 0] = 1.0
    inv_k2 = 1.0 / k2
    inv_k2[0, 0, 0] = 0.0
    del k2

    def irfft(field_k: np.ndarray) -> np.ndarray:
        return scipy.fft.irfftn(field_k, s=(n, n, n), workers=workers)

    psi1 = np.empty((n**3, 3))
    for axis in range(3):  # Psi1_k = i k delta_k / k^2
        psi1[:, axis] = irfft(1j * kgrad[axis] * inv_k2 * delta_k).reshape(-1)
    # phi1_ij = k_i k_j delta_k / k^2 (phi1_k = -delta_k / k^2)
    phi_ii = [irfft(kvec[i] ** 2 * inv_k2 * delta_k) for i in range(3)]
    source = phi_ii[0] * phi_ii[1] + phi_ii[0] * phi_ii[2] + phi_ii[1] * phi_ii[2]
    del phi_ii
    for i, j in ((0, 1), (0, 2), (1, 2)):
        phi_ij = irfft(kgrad[i] * kgrad[j] * inv_k2 * delta_k)
        source -= phi_ij**2
        del phi_ij
    source_k = scipy.fft.rfftn(source, workers=workers)
    del source
    psi2 = np.empty((n**3, 3))
    for axis in range(3):  # Psi2 = grad phi2, phi2_k = -S_k / k^2  ->  Psi2_k = -i k S_k / k^2
        psi2[:, axis] = irfft(-1j * kgrad[axis] * inv_k2 * source_k).reshape(-1)
    return psi1, psi2


def lattice(n: int, box_size: float) -> np.ndarray:
    """(n^3, 3) Lagrangian lattice positions q = (i, j, k) L / n in Mpc/h, index (i n + j) n + k."""
    axis = np.arange(n) * (box_size / n)
    q = np.empty((n, n, n, 3))
    q[..., 0] = axis[:, None, None]
    q[..., 1] = axis[None, :, None]
    q[..., 2] = axis[None, None, :]
    return q.reshape(-1, 3)


def initial_conditions(cosmology: Cosmology, seed: int, config: SimConfig, growth: Growth | None = None,
                       workers: int | None = None) -> InitialConditions:
    """2LPT particle positions and momenta at ``z = config.z_init``."""
    growth = growth or Growth(cosmology.omega_m)
    a = 1.0 / (1.0 + config.z_init)
    delta_k = linear_field(cosmology, seed, config, workers=workers)
    psi1, psi2 = lpt_displacements(delta_k, config.box_size, workers=workers)
    pos = lattice(config.particles, config.box_size)
    pos += growth.d1(a) * psi1 + growth.d2(a) * psi2
    mom = growth.gp(a) * psi1 + growth.gp2(a) * psi2
    np.mod(pos, config.box_size, out=pos)
    pos[pos >= config.box_size] = 0.0
    return InitialConditions(positions=pos, momenta=mom, a=a, delta_k=delta_k)
