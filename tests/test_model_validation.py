"""Model-card validation helpers: statistics against closed forms, and calibration of the intervals."""

from __future__ import annotations

import numpy as np
import pytest

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology
from lssviewer.errors import ParameterError
from lssviewer.model.likelihood import ScanPoint
from lssviewer.model.validation import coverage, sample_vs_simulation


def _cat(pos, vel, box=100.0, om=0.3, s8=0.8):
    n = len(pos)
    return HaloCatalog(pos, vel, np.full(n, 1e13), box_size=box, cosmology=Cosmology(om, s8), wrap=True)


def _poisson_cats(rng, n_cats, om=0.3, s8=0.8, mass_shift=0.0, n=300):
    return [HaloCatalog(rng.uniform(0, 100, (n, 3)), rng.normal(0, 300, (n, 3)),
                        10 ** (13 + rng.exponential(0.3, n) + mass_shift), box_size=100.0, redshift=0.5,
                        cosmology=Cosmology(om, s8)) for _ in range(n_cats)]


class PoissonSampler:
    """Stands in for a DiffusionModel whose samples come from the simulations' own distribution."""

    n_halos = 300

    def __init__(self, mass_shift=0.0):
        self.mass_shift = mass_shift

    def sample(self, om, s8, n=1, seed=0, allow_extrapolation=False):
        return _poisson_cats(np.random.default_rng(1000 + seed), n, om, s8, self.mass_shift)


def test_residuals_accept_the_right_model_and_reject_a_biased_one():
    rng = np.random.default_rng(0)
    fresh = _poisson_cats(rng, 12, 0.3, 0.8) + _poisson_cats(rng, 12, 0.2, 0.9)
    good = sample_vs_simulation(PoissonSampler(), fresh, n_samples=12)
    assert good["n_cosmologies"] == 2
    assert set(good["summary"]) == {"hmf", "xi", "vpdf", "pairwise", "median_log10_mass", "sigma_v_kms"}
    for name in ("hmf", "xi", "vpdf", "pairwise"):
        summ = good["summary"][name]
        # same distribution: residuals are ~ t-distributed with 22 dof; >= 85 % within 2 sigma
        # (expected ~94 %; bins are correlated, so the fraction fluctuates more than binomially)
        assert summ["within_2sigma"] >= 0.85, (name, summ)
        assert summ["within_3sigma"] >= 0.95, (name, summ)
    # per-catalog spreads: the same law in samples and sims; the sd of a 12-box sd is ~21 %, so a ratio
    # in [0.5, 2] and a shift of the mean below 2 sims' sd (mean of 12 has sd 0.29 sim sd) are generous
    for key in ("median_log10_mass", "sigma_v_kms"):
        assert 0.5 < good["summary"][key]["median_sd_ratio_samples_to_sims"] < 2.0, good["summary"][key]
        assert good["summary"][key]["median_abs_shift_in_sim_sd"] < 2.0, good["summary"][key]
    # the sampler and its steps reach model.sample when given (the card's --sampler/--steps)
    calls = []

    class Recording(PoissonSampler):
        def sample(self, om, s8, n=1, seed=0, allow_extrapolation=False, **kw):
            calls.append(kw)
            return super().sample(om, s8, n, seed, allow_extrapolation)

    sample_vs_simulation(Recording(), fresh[:12], n_samples=2, statistics=("hmf",), method="ancestral", steps=7)
    assert calls == [{"method": "ancestral", "steps": 7}]
    biased = sample_vs_simulation(PoissonSampler(mass_shift=0.15), fresh, n_samples=12)
    # masses 0.15 dex too high: the cumulative mass function is off by many sigma
    assert biased["summary"]["hmf"]["max_abs_sigma"] > 5
    # the median log M of 300 halos (exponential with scale 0.3 dex) has sd ~0.3 * 1.0 / sqrt(300) ~ 0.017:
    # a 0.15 dex shift is ~9 of them
    assert biased["summary"]["median_log10_mass"]["median_abs_shift_in_sim_sd"] > 5


class GaussianLikelihoodModel:
    """Stands in for a DiffusionModel whose likelihood is exactly Gaussian around an unbiased estimate."""

    prior = DEFAULT_PRIOR
    n_halos = 5

    def __init__(self, sigma, rng, width=None, temperature=1.0):
        """Estimates scatter by ``sigma`` around the truth; the likelihood has width ``width`` (default
        ``sigma``: calibrated; smaller: over-confident by (sigma / width)^2 in log L)."""
        self.sigma, self.rng, self.temperature = sigma, rng, temperature
        self.width = sigma if width is None else width

    def scan(self, catalog, grid, n_noise=8, seed=0, cancel=None):
        truth = np.array([catalog.omega_m, catalog.sigma_8])
        est = truth + self.sigma * self.rng.normal(size=2)
        for k, th in enumerate(np.asarray(grid)):
            ll = -0.5 * np.sum(((th - est) / self.width) ** 2)
            yield ScanPoint(k, tuple(th), float(ll), 0.0)


def test_coverage_of_a_calibrated_likelihood_is_68_percent():
    rng = np.random.default_rng(1)
    cats = [_cat(rng.uniform(0, 100, (5, 3)), np.zeros((5, 3)), om=rng.uniform(0.2, 0.4), s8=rng.uniform(0.7, 0.9))
            for _ in range(300)]
    res = coverage(GaussianLikelihoodModel(np.array([0.03, 0.02]), rng), cats, points=41)
    assert set(res) >= {"raw"} and "calibrated" not in res  # temperature 1: nothing to calibrate
    res = res["raw"]
    for p, width in (("omega_m", 0.06), ("sigma_8", 0.04)):
        # binomial sd of a 68 % fraction over 300 boxes is 2.7 %: 3.5 sd bounds
        assert abs(res[p]["coverage68"] - 0.6827) < 0.095, res
        assert abs(res[p]["coverage95"] - 0.95) < 0.045, res
        assert abs(res[p]["median_width68"] - width) < 0.1 * width


def _boxes(rng, n):
    return [_cat(rng.uniform(0, 100, (5, 3)), np.zeros((5, 3)), om=rng.uniform(0.2, 0.4), s8=rng.uniform(0.7, 0.9))
            for _ in range(n)]


def test_temperature_calibrates_an_over_confident_likelihood_on_other_boxes():
    """Likelihood half as wide as the scatter of its estimates: log L is 4x too sharp, so the raw 68 %
    interval (|z| < 0.5) covers P(|N(0,1)| < 0.5) = 38 %; T fitted on 150 boxes should be ~4 and restore
    68 % on 300 other boxes."""
    from lssviewer.model.validation import calibration

    rng = np.random.default_rng(7)
    sig = np.array([0.03, 0.02])
    cal = calibration(GaussianLikelihoodModel(sig, rng, width=sig / 2), _boxes(rng, 150), points=61)
    # the 68th percentile of 300 chi2_1 deficits has a relative sd of ~11 %; 0.27 is ~2.4 sd
    assert abs(cal["temperature"] - 4.0) < 4.0 * 0.27, cal
    assert cal["n_profiles"] == 300
    # each parameter alone: 150 deficits, relative sd of the 68th percentile of chi2_1 ~16 %; 3 sd
    for p in ("omega_m", "sigma_8"):
        assert abs(cal["per_parameter"][p]["temperature"] - 4.0) < 4.0 * 0.47, cal
    model = GaussianLikelihoodModel(sig, rng, width=sig / 2, temperature=cal["temperature"])
    res = coverage(model, _boxes(rng, 300), points=61)
    per_box = res["per_box"]
    assert len(per_box["truth"]) == len(per_box["map_sigma_8"]) == len(per_box["deficit_nats_omega_m"]) == 300
    # the raw truth deficits of a 4x too sharp Gaussian likelihood are 4 x chi2_1 / 2: median 4 x 0.2275;
    # the median of 300 has a relative sd of ~13 %: 3 sd
    assert abs(np.median(per_box["deficit_nats_sigma_8"]) / (4 * 0.2275) - 1) < 0.4, per_box
    for p in ("omega_m", "sigma_8"):
        assert abs(res["raw"][p]["coverage68"] - 0.383) < 0.085, res  # 3 binomial sd (2.8 %)
        assert abs(res["calibrated"][p]["coverage68"] - 0.6827) < 0.1, res  # 3 sd incl. the error of T
        assert abs(res["calibrated"][p]["coverage95"] - 0.95) < 0.05, res
        # calibrated width: 2 * sqrt(T) * width ~ 2 * sigma
        assert abs(res["calibrated"][p]["median_width68"] / (2 * sig[("omega_m", "sigma_8").index(p)]) - 1) < 0.2


def test_truth_deficit_and_temperature_formula():
    from lssviewer.model.likelihood import calibrate_temperature, truth_deficit

    grid = np.linspace(0.6, 1.0, 41)
    ll = -0.5 * ((grid - 0.8) / 0.02) ** 2
    assert truth_deficit(grid, ll, 0.8) == pytest.approx(0.0, abs=1e-9)
    assert truth_deficit(grid, ll, 0.84) == pytest.approx(2.0, rel=1e-3)  # (2 sigma)^2 / 2
    with pytest.raises(ParameterError):
        truth_deficit(grid, ll, 1.2)
    d = np.full(20, 2.0)
    assert calibrate_temperature(d) == pytest.approx(4.0, rel=1e-3)  # 2.0 / (chi2_ppf(0.6827, 1) / 2 = 0.49995)
    with pytest.raises(ParameterError):
        calibrate_temperature(d[:5])


def test_theta_information_of_a_network_that_ignores_theta():
    """A score network that predicts eps_hat = 0 (the zero-initialised output layer of an untrained model)
    carries no theta information: the network-only profile must be exactly flat. Catalogs drawn from the
    Gaussian model the conditional standardisation describes (velocities N(0, s_v(theta)), log M
    N(mu(theta), s_M(theta)), degree-1 polynomials) make the Gaussian baseline the exact likelihood, so
    its 68 % intervals must cover ~68 % of 40 boxes (binomial sd 7.4 %: 3.4 sd bound)."""
    import torch

    from lssviewer.model.api import DiffusionModel
    from lssviewer.model.data import theta_to_unit
    from lssviewer.model.features import FeatureTransform
    from lssviewer.model.network import NetworkConfig
    from lssviewer.model.validation import profiles, theta_information
    from lssviewer.model.vdm import VDM

    torch.manual_seed(0)
    vdm = VDM(NetworkConfig(d_model=16, n_layers=1, n_heads=2, mlp_ratio=2, fourier_features=1, cond_dim=16))
    coefs = ((14.0, 0.2, 0.3), (float(np.log(0.2)), 0.0, 0.0), (float(np.log(300.0)), 0.3, 0.5))
    tf = FeatureTransform(100.0, 300.0, 14.0, 0.2, theta_degree=1, theta_coefs=coefs)
    n = 200
    meta = {"prior": DEFAULT_PRIOR.to_dict(), "n_halos": n, "box_size": 100.0, "redshift": 0.5,
            "features": tf.to_dict()}
    model = DiffusionModel(vdm, meta)
    rng = np.random.default_rng(3)
    boxes = []
    for _ in range(40):
        om, s8 = rng.uniform(0.15, 0.45), rng.uniform(0.65, 0.95)
        mean, std = tf.stats(theta_to_unit(np.array([om, s8]), DEFAULT_PRIOR))
        boxes.append(HaloCatalog(rng.uniform(0, 100, (n, 3)), rng.normal(0, std[3], (n, 3)),
                                 10 ** rng.normal(mean[6], std[6], n), box_size=100.0, redshift=0.5,
                                 cosmology=Cosmology(om, s8)))
    profs = profiles(model, boxes, points=41, n_noise=2)
    info = theta_information(model, boxes, profs, n_noise=2)
    assert info["n_boxes"] == 40
    assert info["network_theta_only_range_nats"] == {"omega_m": 0.0, "sigma_8": 0.0}
    assert min(info["range_nats"].values()) > 10  # the standardisation alone makes the profiles informative
    for p in ("omega_m", "sigma_8"):
        assert abs(info["gaussian_baseline"][p]["coverage68"] - 0.6827) < 0.25, info


@pytest.mark.parametrize("scales", [(1.0, 1.0), (0.5, 0.25)])
def test_marginal_offsets_of_the_exact_gaussian_denoiser(scales):
    """With the exact denoiser of N(0, I) standardised features (eps_hat = sigma_t z_t), the ELBO is the
    Gaussian log density up to Monte Carlo noise, so its best velocity scale is the catalog's rms and its
    best log-mass shift is minus the catalog's mean: ratio 1 and offset 0. Catalogs are drawn with rms 1.15
    and a mean log-mass offset of +0.1 standard deviations so that the maxima are away from a = 1, d = 0.
    With the default 64 stratified draws the 3-box medians scattered between 8 noise seeds by 0.55 % in
    scale and 0.0017 dex in mass (with 8 draws by ~6 %: the x-dependent part of the loss needs the time
    quadrature); the bounds, 2 % and 0.006 dex, are ~3.5 of those standard deviations and well below the
    offsets of the shipped model (~5 % and ~0.02 dex, docs/model.md). With feature scales (s_v, s_m) the
    standardised features are N(0, diag(1, s_v^2, s_m^2)) and the exact denoiser is sigma_t z / (alpha_t^2 s^2 +
    sigma_t^2) per dimension; the ratio and offset are still 1 and 0."""
    import torch

    from lssviewer.model.api import DiffusionModel
    from lssviewer.model.data import theta_to_unit
    from lssviewer.model.features import FeatureTransform
    from lssviewer.model.network import NetworkConfig
    from lssviewer.model.validation import marginal_offsets
    from lssviewer.model.vdm import VDM

    spread = torch.tensor([1.0] * 3 + [scales[0]] * 3 + [scales[1]])

    class GaussianDenoiser(torch.nn.Module):
        def forward(self, z, gamma, theta, gamma_range):
            a2, s2 = torch.sigmoid(-gamma)[:, None, None], torch.sigmoid(gamma)[:, None, None]
            return torch.sqrt(s2) * z / (a2 * spread**2 + s2)

    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2))
    vdm.network = GaussianDenoiser()
    coefs = ((14.0, 0.2, 0.3), (float(np.log(0.2)), 0.0, 0.0), (float(np.log(300.0)), 0.3, 0.5))
    raw_tf = FeatureTransform(100.0, 300.0, 14.0, 0.2, theta_degree=1, theta_coefs=coefs)  # raw spreads
    tf = FeatureTransform(100.0, 300.0, 14.0, 0.2, theta_degree=1, theta_coefs=coefs, velocity_scale=scales[0],
                          mass_scale=scales[1])
    n = 300
    model = DiffusionModel(vdm, {"prior": DEFAULT_PRIOR.to_dict(), "n_halos": n, "box_size": 100.0,
                                 "redshift": 0.5, "features": tf.to_dict()})
    rng = np.random.default_rng(5)
    boxes = []
    for _ in range(3):
        om, s8 = rng.uniform(0.15, 0.45), rng.uniform(0.65, 0.95)
        mean, std = raw_tf.stats(theta_to_unit(np.array([om, s8]), DEFAULT_PRIOR))
        boxes.append(HaloCatalog(rng.uniform(0, 100, (n, 3)), rng.normal(0, 1.15 * std[3], (n, 3)),
                                 10 ** rng.normal(mean[6] + 0.1 * std[6], std[6], n), box_size=100.0,
                                 redshift=0.5, cosmology=Cosmology(om, s8)))
    res = marginal_offsets(model, boxes)
    assert res["n_boxes"] == 3 and res["n_noise"] == 64
    assert abs(res["velocity_scale_ratio"] - 1.0) < 0.02, res
    assert abs(res["log_mass_offset_dex"]) < 0.006, res


def test_gaussian_baseline_does_not_depend_on_feature_scales():
    """The Gaussian baseline of theta_information is the density the standardisation describes, in physical
    units: a model whose features are standardised to spreads 0.5 / 0.25 must give exactly the same baseline
    intervals as one standardised to 1 (its standardised features are N(0, s^2), not N(0, 1))."""
    import torch

    from lssviewer.model.api import DiffusionModel
    from lssviewer.model.data import theta_to_unit
    from lssviewer.model.features import FeatureTransform
    from lssviewer.model.network import NetworkConfig
    from lssviewer.model.validation import profiles, theta_information
    from lssviewer.model.vdm import VDM

    torch.manual_seed(0)
    vdm = VDM(NetworkConfig(d_model=16, n_layers=1, n_heads=2, mlp_ratio=2, fourier_features=1, cond_dim=16))
    coefs = ((14.0, 0.2, 0.3), (float(np.log(0.2)), 0.0, 0.0), (float(np.log(300.0)), 0.3, 0.5))
    n, rng, boxes, info = 100, np.random.default_rng(4), [], []
    for scales in ((1.0, 1.0), (0.5, 0.25)):
        tf = FeatureTransform(100.0, 300.0, 14.0, 0.2, theta_degree=1, theta_coefs=coefs, velocity_scale=scales[0],
                              mass_scale=scales[1])
        model = DiffusionModel(vdm, {"prior": DEFAULT_PRIOR.to_dict(), "n_halos": n, "box_size": 100.0,
                                     "redshift": 0.5, "features": tf.to_dict()})
        for _ in range(4 - len(boxes)):
            om, s8 = rng.uniform(0.15, 0.45), rng.uniform(0.65, 0.95)
            mean, std = tf.stats(theta_to_unit(np.array([om, s8]), DEFAULT_PRIOR))
            boxes.append(HaloCatalog(rng.uniform(0, 100, (n, 3)), rng.normal(0, std[3], (n, 3)),
                                     10 ** rng.normal(mean[6], std[6], n), box_size=100.0, redshift=0.5,
                                     cosmology=Cosmology(om, s8)))
        info.append(theta_information(model, boxes, profiles(model, boxes, points=11, n_noise=2), n_noise=2))
    for p in ("omega_m", "sigma_8"):
        a, b = info[0]["gaussian_baseline"][p], info[1]["gaussian_baseline"][p]
        assert a["median_width68"] == pytest.approx(b["median_width68"], rel=1e-4), (a, b)
        assert a["median_abs_map_error"] == pytest.approx(b["median_abs_map_error"], abs=1e-4), (a, b)


def test_heldout_split_keeps_early_stopping_and_calibration_boxes_out_of_the_test():
    from lssviewer.model.validation import heldout_split

    val = [3, 8, 11, 20, 25, 31, 40, 47, 52, 60]
    # the first 2 chose the early-stopping step; 3 test boxes, then 4 calibration boxes
    assert heldout_split(val, skip=2, n_test=3, n_calibrate=4) == ([11, 20, 25], [31, 40, 47, 52])
    # a stored temperature's boxes are never test boxes
    assert heldout_split(val, skip=2, n_test=3, exclude=[20, 31]) == ([11, 25, 40], [])
    assert heldout_split(val) == (val, [])


def test_coverage_uses_each_parameters_profile_temperature():
    """Omega_m's likelihood 4x too sharp, sigma_8's 4x too wide (widths sigma/2 and 2 sigma): with the profile
    temperatures 4 and 1/4 (what ``scan`` then uses for 1-D profiles) the calibrated coverage of both is 68 %
    on 300 boxes (3 binomial sd), while the raw one is 38 % and 95 % (P(|z| < 0.5) and P(|z| < 2))."""
    rng = np.random.default_rng(11)
    sig = np.array([0.03, 0.02])

    class TwoWidths(GaussianLikelihoodModel):
        def __init__(self):
            super().__init__(sig, rng, temperature=1.0)
            self.profile_temperatures = {"omega_m": 4.0, "sigma_8": 0.25}

        def profile_temperature(self, param):
            return self.profile_temperatures.get(param, self.temperature)

        def scan(self, catalog, grid, n_noise=8, seed=0, cancel=None):
            truth = np.array([catalog.omega_m, catalog.sigma_8])
            est = truth + sig * self.rng.normal(size=2)
            width = np.array([sig[0] / 2, 2 * sig[1]])
            for k, th in enumerate(np.asarray(grid)):
                yield ScanPoint(k, tuple(th), float(-0.5 * np.sum(((th - est) / width) ** 2)), 0.0)

    res = coverage(TwoWidths(), _boxes(rng, 300), points=81)
    assert res["calibrated"]["omega_m"]["temperature"] == 4.0 and res["calibrated"]["sigma_8"]["temperature"] == 0.25
    assert abs(res["raw"]["omega_m"]["coverage68"] - 0.383) < 0.085, res
    assert abs(res["raw"]["sigma_8"]["coverage68"] - 0.954) < 0.04, res
    for p in ("omega_m", "sigma_8"):
        assert abs(res["calibrated"][p]["coverage68"] - 0.6827) < 0.081, res


def test_coverage_uses_a_profile_tempering_of_the_network_term():
    """A calibrated box-statistics Gaussian (width 0.03, peak scattered by that) plus a network Gaussian 4x too
    sharp (width 0.005, peak scattered by 0.01), per parameter: with the profile tempering [box + network / 4] / 1
    (the exact likelihood) the calibrated 68 % coverage on 300 boxes is 68 % (3 binomial sd), while the raw
    combination covers P(|z| < 0.505) = 38.7 % (its sd 0.0049 against an error sd of 0.0098)."""
    from lssviewer.model.likelihood import Tempering

    rng = np.random.default_rng(12)
    sd_b, sd_n = 0.03, 0.005

    class TwoTerms(GaussianLikelihoodModel):
        def __init__(self):
            super().__init__(np.array([sd_b, sd_b]), rng, temperature=1.0)

        def profile_tempering(self, param):
            return Tempering(temperature=1.0, network=4.0)

        def scan(self, catalog, grid, n_noise=8, seed=0, cancel=None):
            truth = np.array([catalog.omega_m, catalog.sigma_8])
            mb, mn = truth + sd_b * self.rng.normal(size=2), truth + 2 * sd_n * self.rng.normal(size=2)
            for k, th in enumerate(np.asarray(grid)):
                box = float(-0.5 * np.sum(((th - mb) / sd_b) ** 2))
                yield ScanPoint(k, tuple(th), box - 0.5 * float(np.sum(((th - mn) / sd_n) ** 2)), 0.0, box)

    res = coverage(TwoTerms(), _boxes(rng, 300), points=81)
    for p in ("omega_m", "sigma_8"):
        assert res["calibrated"][p]["network_temperature"] == 4.0 and res["calibrated"][p]["temperature"] == 1.0
        assert abs(res["calibrated"][p]["coverage68"] - 0.6827) < 0.081, res
        assert abs(res["raw"][p]["coverage68"] - 0.387) < 0.085, res
