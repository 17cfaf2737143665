"""Linear growth functions and FastPM time-step factors for a flat LambdaCDM background.

Units: time is the scale factor ``a``; lengths are comoving Mpc/h; the Hubble rate is in units of
H0 (so ``E(a) = H(a)/H0``) and the particle "momentum" is ``p = a^2 dx/dt / H0`` in Mpc/h, which
makes the peculiar velocity ``v = a dx/dt = 100 p / a`` km/s (H0 x 1 Mpc/h = 100 km/s).

Equations of motion with ``F = -grad(phi)``, ``laplacian(phi) = delta`` (F is in Mpc/h and equals the
Zel'dovich displacement in linear theory)::

    dx/da = p / (a^3 E(a)),        dp/da = 1.5 Omega_m F / (a^2 E(a)).

In linear theory ``x = q + D(a) s``, ``F = D(a) s`` and ``p = G_p(a) s`` with
``G_p(a) = a^3 E(a) dD/da``; the growth equation reads ``dG_p/da = 1.5 Omega_m D / (a^2 E)``.
FastPM (Feng et al. 2016, arXiv:1603.00476) uses these functions in its kick and drift factors so
that the linear growth of every mode is reproduced exactly whatever the step size:

    kick  a_i -> a_f with the force at a_c:  p += F(a_c) [G_p(a_f) - G_p(a_i)] / D(a_c)
    drift a_i -> a_f with the momentum at a_c:  x += p(a_c) [D(a_f) - D(a_i)] / G_p(a_c)

The growing mode of a flat matter + Lambda universe (no radiation) is the integral
``D(a) ∝ E(a) ∫_0^a da' / (a' E(a'))^3`` (Heath 1977), normalised here to ``D(a=1) = 1``.
Second order (2LPT): ``D2 = -3/7 D^2 Omega_m(a)^(-1/143)`` and ``f2 = dlnD2/dlna = 2 Omega_m(a)^(6/11)``
(Bouchet et al. 1995).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import integrate


class Growth:
    """Linear growth D(a), its derivative and the FastPM factors for one Omega_m (flat LambdaCDM)."""

    def __init__(self, omega_m: float):
        self.omega_m = float(omega_m)
        self._norm = self._unnormalised(1.0)

    def efunc(self, a: float) -> float:
        """E(a) = H(a)/H0 = sqrt(Omega_m a^-3 + 1 - Omega_m)."""
        return float(np.sqrt(self.omega_m / a**3 + 1.0 - self.omega_m))

    def _integral(self, a: float) -> float:
        # ∫_0^a da' / (a' E(a'))^3; the integrand ~ a'^{3/2} / Omega_m^{3/2} near 0 is smooth
        def integrand(x: float) -> float:
            return 1.0 / (x * self.efunc(x)) ** 3 if x > 0 else 0.0

        value, _ = integrate.quad(integrand, 0.0, a, epsabs=0.0, epsrel=1e-12, limit=200)
        return value

    def _unnormalised(self, a: float) -> float:
        return 2.5 * self.omega_m * self.efunc(a) * self._integral(a)

    @functools.lru_cache(maxsize=512)  # noqa: B019 - a few objects, a few dozen scale factors each
    def _d_and_deriv(self, a: float) -> tuple[float, float]:
        e = self.efunc(a)
        integral = self._integral(a)
        de_da = -1.5 * self.omega_m / (a**4 * e)
        d = 2.5 * self.omega_m * e * integral
        dd_da = 2.5 * self.omega_m * (de_da * integral + e / (a * e) ** 3)
        return d / self._norm, dd_da / self._norm

    def d1(self, a: float) -> float:
        """Linear growth factor D(a), D(1) = 1."""
        return self._d_and_deriv(float(a))[0]

    def f1(self, a: float) -> float:
        """Linear growth rate f = dlnD/dlna."""
        d, dd = self._d_and_deriv(float(a))
        return a * dd / d

    def omega_m_a(self, a: float) -> float:
        """Omega_m(a) = Omega_m a^-3 / E(a)^2."""
        return self.omega_m / a**3 / self.efunc(a) ** 2

    def d2(self, a: float) -> float:
        """Second-order growth factor D2 = -3/7 D^2 Omega_m(a)^(-1/143)."""
        return -3.0 / 7.0 * self.d1(a) ** 2 * self.omega_m_a(a) ** (-1.0 / 143.0)

    def f2(self, a: float) -> float:
        """Second-order growth rate dlnD2/dlna = 2 Omega_m(a)^(6/11)."""
        return 2.0 * self.omega_m_a(a) ** (6.0 / 11.0)

    def gp(self, a: float) -> float:
        """G_p(a) = a^3 E(a) dD/da: the momentum of a unit linear displacement."""
        return a**3 * self.efunc(a) * self._d_and_deriv(float(a))[1]

    def gp2(self, a: float) -> float:
        """a^3 E(a) dD2/da: the momentum of a unit second-order displacement."""
        return a**2 * self.efunc(a) * self.f2(a) * self.d2(a)

    # ------------------------------------------------------------------ FastPM factors
    def kick_factor(self, a_i: float, a_f: float, a_c: float) -> float:
        """Momentum change per unit force evaluated at ``a_c`` for a kick from ``a_i`` to ``a_f``."""
        return (self.gp(a_f) - self.gp(a_i)) / self.d1(a_c)

    def drift_factor(self, a_i: float, a_f: float, a_c: float) -> float:
        """Position change per unit momentum evaluated at ``a_c`` for a drift from ``a_i`` to ``a_f``."""
        return (self.d1(a_f) - self.d1(a_i)) / self.gp(a_c)


def velocity_factor(a: float) -> float:
    """Peculiar velocity in km/s per unit momentum p (in Mpc/h, H0 = 1 units) at scale factor a."""
    return 100.0 / a
