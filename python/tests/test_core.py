"""Library-wide functions, options, noise, processes, the model adapter and the mixture."""

import math

import numpy as np
import pytest

import scoresde as sde
from scoresde import _lib

from conftest import MEANS, VARS, WEIGHTS


# ---- library, versions, errors ------------------------------------------------------------

def test_version_and_table():
    assert sde.version_number() // 10000 == sde.EXPECTED_MAJOR
    assert sde.version() == "{}.{}.{}".format(sde.version_number() // 10000,
                                              sde.version_number() // 100 % 100,
                                              sde.version_number() % 100)
    assert "core" in sde.FEATURES and sde.has_feature("core")


def test_table_matches_version_script():
    """Every symbol of lib/scoresde.map has a signature in the table, and vice versa."""
    import os
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    mapfile = os.path.join(here, "..", "..", "lib", "scoresde.map")
    if not os.path.exists(mapfile):
        pytest.skip("lib/scoresde.map not found next to the package")
    text = re.sub(r"/\*.*?\*/", "", open(mapfile).read(), flags=re.S)
    exported = set(re.findall(r"\b(sde_[a-z0-9_]+);", text))
    table = {n for g in _lib.SIGNATURES.values() for n in g}
    assert exported - table == set(), "exported but not wrapped"
    assert table - exported == set(), "wrapped but not exported"


def test_status_names_and_strings():
    assert sde.status_name(0) == "SDE_OK"
    assert sde.status_name(-2) == "SDE_E_INVALID"
    assert sde.status_name(12345) == "SDE_UNKNOWN_STATUS"
    for st in sde.Status:
        assert sde.status_name(st).startswith("SDE_")
        assert sde.status_string(st)


def test_constructor_error_maps_to_exception():
    with pytest.raises(sde.SdeInvalidError) as ei:
        sde.Process.vp(beta_min=0.1, beta_max=0.05)
    e = ei.value
    assert isinstance(e, ValueError) and isinstance(e, sde.SdeError)
    assert e.status == -2 and e.status_name == "SDE_E_INVALID"
    assert "beta_max" in e.message and "sde_process_new_vp" in e.message
    assert "beta_max" in sde.last_error()
    sde.clear_error()
    assert sde.last_error() == ""


def test_c_side_dimension_check_is_the_authority(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    x = np.zeros((2, 2))
    out = np.empty((2, 2))
    with pytest.raises(sde.SdeDimError):
        _lib.call(_lib.lib.sde_model_score, m._h, np.full(2, 0.5), x, out, 2, 3)
    with pytest.raises(ValueError, match="expected 2"):  # the Python check, friendlier
        m.score(0.5, np.zeros((2, 3)))
    import ctypes
    with pytest.raises(ctypes.ArgumentError, match="float64"):  # refused before C sees it
        _lib.lib.sde_model_score(m._h, np.full(2, 0.5, np.float32), x, out, 2, 2)


def test_log_hook():
    seen = []
    sde.set_log(lambda level, msg: seen.append((level, msg)))
    try:
        with pytest.raises(sde.SdeInvalidError):
            sde.Process.ve(sigma_min=-1.0)
    finally:
        sde.set_log(None)
    assert seen and seen[-1][0] == sde.LogLevel.ERROR and "sigma_min" in seen[-1][1]
    with pytest.raises(sde.SdeInvalidError):
        sde.Process.ve(sigma_min=-1.0)
    assert len(seen) == 1


# ---- options ------------------------------------------------------------------------------

def test_option_introspection():
    assert sde.option_name(1000) == "SDE_OPT_PC_SNR"
    assert sde.option_name(99) is None
    assert sde.option_type("SDE_OPT_PC_SNR") == sde.OptionType.REAL
    assert sde.option_type(200) == sde.OptionType.INT
    assert sde.option_bounds("SDE_OPT_DDIM_ETA") == (0.0, 1.0)
    assert sde.option_bounds(201) == (1.0, 3.0)
    with pytest.raises(sde.SdeInvalidError):
        sde.option_bounds(99)
    table = sde.options()
    assert table["SDE_OPT_ODE_RTOL"] == 1200 and len(table) > 30
    assert list(table.values()) == sorted(table.values())  # sde_option_next walks in order
    assert sde.option_values("SDE_OPT_CTRL_METHOD") == {"SDE_CTRL_REPLACE": 0, "SDE_CTRL_SMC": 1}
    assert sde.option_values(201) == {"SDE_DDIM_SPACING_UNIFORM": 1,
                                      "SDE_DDIM_SPACING_QUADRATIC": 2,
                                      "SDE_DDIM_SPACING_TRAILING": 3}
    assert sde.option_values("SDE_OPT_PC_STEPS") == {}
    with pytest.raises(ValueError):
        sde.option_type("SDE_OPT_NO_SUCH")


def test_set_option_by_name_and_number(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    d = sde.Ddim(m, 4, steps=10, eta=0.5)
    assert d.get_option("steps") == 10 and d.get_option(1100) == 0.5
    d.set_option("SDE_OPT_DDIM_SPACING", sde.DdimSpacing.TRAILING)
    d.set_option(1101, 3.0)
    assert d.get_option("spacing") == 3 and d.get_option("clip_x0") == 3.0
    d.set_option("spacing", "quadratic")  # enumerated values by their constants' names
    assert d.get_option("spacing") == sde.DdimSpacing.QUADRATIC
    d.set_option("variance", "SDE_DDIM_VARIANCE_LARGE")
    assert d.get_option("variance") == sde.DdimVariance.LARGE
    with pytest.raises(ValueError, match="SDE_DDIM_SPACING_UNIFORM"):
        d.set_option("spacing", "cubic")  # the message lists the choices
    with pytest.raises(TypeError):
        d.set_option("steps", "ten")
    with pytest.raises(sde.SdeInvalidError):
        d.set_int(1100, 1)  # wrong-typed setter: the library refuses
    with pytest.raises(sde.SdeInvalidError):
        d.set_real(200, 2.0)
    with pytest.raises(sde.SdeInvalidError):
        d.set_option("eta", 2.0)  # out of bounds
    with pytest.raises(ValueError, match="unknown option"):
        d.set_option("snr", 0.1)
    assert set(d.options()) == set(d.option_names())


# ---- noise --------------------------------------------------------------------------------

def test_philox_known_answers():
    assert list(sde.philox4x32_10([0, 0, 0, 0], [0, 0])) == \
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    assert list(sde.philox4x32_10([0xffffffff] * 4, [0xffffffff] * 2)) == \
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]


def test_philox_noise_determinism_and_kinds():
    with sde.Noise.philox(42) as n:
        assert n.seed == 42 and n.counter == 0
        z = n.normal(1000, 4)
        assert n.counter == 1
        assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.05
        u = n.uniform(1000, 3)
        assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
        r = n.rademacher(100, 5)
        assert set(np.unique(r)) == {-1.0, 1.0}
        k = n.draw("integer", 500, 1, param=7)
        assert set(np.unique(k)) == set(range(7))
        assert n.counter == 4
        n.counter = 0
        z2 = n.normal(10, 4, sample_offset=990)  # rows 990.. of the first draw
        np.testing.assert_array_equal(z2, z[990:])
        n.counter = 0
        z3 = n.draw(sde.NoiseKind.NORMAL, 1000, 4)
        np.testing.assert_array_equal(z3, z)


def test_callback_noise():
    calls = []

    def fill(kind, param, out, sample_offset, draw):
        calls.append((kind, out.shape, sample_offset, draw))
        out[:] = np.arange(out.size).reshape(out.shape) + sample_offset

    with sde.Noise.callback(fill) as n:
        assert n.seed == 0
        z = n.normal(2, 3, sample_offset=5)
        np.testing.assert_array_equal(z, np.arange(6).reshape(2, 3) + 5)
        assert calls == [(sde.NoiseKind.NORMAL, (2, 3), 5, 0)]
        n2 = sde.Noise.callback(lambda k, p, out, off, d: np.full(out.shape, 0.25))
        np.testing.assert_array_equal(n2.uniform(2, 2), 0.25)


# ---- processes ----------------------------------------------------------------------------

def vp_a(t, b0=0.1, b1=20.0):
    return np.exp(-t ** 2 * (b1 - b0) / 4 - t * b0 / 2)


def test_vp_closed_forms(vp):
    t = np.array([1e-3, 0.25, 0.5, 1.0])
    a, s = vp.marginal(t)
    np.testing.assert_allclose(a, vp_a(t), rtol=1e-13)
    np.testing.assert_allclose(s, np.sqrt(1 - vp_a(t) ** 2), rtol=1e-12)
    np.testing.assert_allclose(vp.marginal_std_from_data(t), s, rtol=1e-13)
    beta = 0.1 + t * 19.9
    np.testing.assert_allclose(vp.diffusion(t), np.sqrt(beta), rtol=1e-14)
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(vp.drift(t, x), -beta[:, None] * x / 2, rtol=1e-14)
    assert vp.kind == sde.ProcessKind.VP and vp.T == 1.0 and vp.N == 1000
    assert vp.t_end == 1.0 and vp.num_steps == 1000 and vp.prior_std == 1.0
    assert vp.param("beta_max") == 20.0 and vp.has_tables
    with pytest.raises(sde.SdeInvalidError):
        vp.param("sigma_max")
    betas = vp.table("betas")
    np.testing.assert_allclose(betas, np.linspace(0.1 / 1000, 20 / 1000, 1000), rtol=1e-14)
    np.testing.assert_allclose(vp.table(sde.Table.ALPHAS_CUMPROD), np.cumprod(1 - betas),
                               rtol=1e-12)
    with pytest.raises(sde.SdeUnsupportedError):
        vp.table("sigmas")
    idx = vp.discrete_index(t)
    np.testing.assert_array_equal(idx, np.floor(t * 999).astype(np.int64))
    f, G = vp.discretize(t, x)
    np.testing.assert_allclose(f, (np.sqrt(1 - betas[idx]) - 1)[:, None] * x, rtol=1e-12)
    np.testing.assert_allclose(G, np.sqrt(betas[idx]), rtol=1e-14)
    # perturb, prior
    n = np.ones_like(x)
    np.testing.assert_allclose(vp.perturb(t, x, n), a[:, None] * x + s[:, None], rtol=1e-14)
    np.testing.assert_allclose(vp.perturb(t, x), a[:, None] * x, rtol=1e-14)
    np.testing.assert_allclose(vp.prior_logp(x),
                               -1.5 * math.log(2 * math.pi) - (x ** 2).sum(1) / 2, rtol=1e-14)
    with sde.Noise(3) as noise:
        z = vp.prior_sample(noise, 5, (2, 2))
        assert z.shape == (5, 2, 2)
    # reverse SDE and probability flow
    score = -x
    for pf, c in ((False, 1.0), (True, 0.5)):
        drift, g = vp.reverse(t, x, score, probability_flow=pf)
        np.testing.assert_allclose(drift, -beta[:, None] * x / 2 - c * beta[:, None] * score,
                                   rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(g, 0 if pf else np.sqrt(beta), rtol=1e-14)
        rf, rG = vp.reverse_discretize(t, x, score, probability_flow=pf)
        np.testing.assert_allclose(rf, f - c * (G ** 2)[:, None] * score, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rG, 0 if pf else G, rtol=1e-14)


def test_ve_and_subvp(ve, subvp):
    t = np.array([0.0, 0.3, 1.0])
    a, s = ve.marginal(t)
    sig = 0.01 * (50 / 0.01) ** t
    np.testing.assert_allclose(a, 1.0)
    np.testing.assert_allclose(s, sig, rtol=1e-13)
    np.testing.assert_allclose(ve.marginal_std_from_data(t), np.sqrt(sig ** 2 - 0.01 ** 2),
                               rtol=1e-12, atol=1e-15)
    assert ve.prior_std == 50.0 and ve.kind == sde.ProcessKind.VE
    np.testing.assert_allclose(ve.table("sigmas"),
                               np.exp(np.linspace(np.log(0.01), np.log(50), 1000)), rtol=1e-13)
    a, s = subvp.marginal(t)
    np.testing.assert_allclose(s, 1 - vp_a(t) ** 2, rtol=1e-12, atol=1e-15)
    assert not subvp.has_tables and subvp.kind == sde.ProcessKind.SUBVP


def test_custom_process_ou():
    # Ornstein-Uhlenbeck: dx = -x dt + sqrt(2) dW, x_t | x0 ~ N(e^-t x0, 1 - e^-2t)
    def marginal(t, a_out, s_out):
        a_out[:] = np.exp(-t)
        s_out[:] = np.sqrt(1 - np.exp(-2 * t))

    p = sde.Process.custom(drift=lambda t, x: -x, diffusion=lambda t: np.full(t.shape, 2 ** .5),
                           marginal=marginal, T=2.0, N=100, prior_std=1.0)
    t = np.array([0.5, 1.0])
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(p.drift(t, x), -x)
    np.testing.assert_allclose(p.diffusion(t), math.sqrt(2))
    a, s = p.marginal(t)
    np.testing.assert_allclose(a, np.exp(-t))
    f, G = p.discretize(t, x)
    np.testing.assert_allclose(f, -x * 2.0 / 100)
    np.testing.assert_allclose(G, math.sqrt(2) * math.sqrt(2.0 / 100))
    assert p.kind == sde.ProcessKind.CUSTOM and p.T == 2.0
    q = sde.Process.custom(lambda t, x: -x, lambda t: np.ones_like(t))
    with pytest.raises(sde.SdeUnsupportedError):
        q.marginal(0.5)


# ---- the model adapter --------------------------------------------------------------------

def test_model_epsilon_conversion_and_labels(vp):
    seen = {}

    def net(t, x):
        seen["t"] = t.copy()
        return np.full(x.shape, 0.5)

    m = sde.Model(vp, net, dim=3, output="epsilon", time_input="reference_continuous")
    t = np.array([0.2, 0.7])
    x = np.random.default_rng(1).normal(size=(2, 3))
    a, s = vp.marginal(t)
    sc = m.score(t, x)
    np.testing.assert_allclose(sc, np.broadcast_to(-0.5 / s[:, None], x.shape), rtol=1e-14)
    np.testing.assert_allclose(seen["t"], 999 * t, rtol=1e-14)
    np.testing.assert_allclose(m.time_labels(t), 999 * t, rtol=1e-14)
    ev = m.eval(t, x)
    np.testing.assert_allclose(ev.raw, 0.5)
    np.testing.assert_allclose(ev.score, sc)
    np.testing.assert_allclose(ev.eps, 0.5)
    np.testing.assert_allclose(ev.x0, (x - s[:, None] * 0.5) / a[:, None], rtol=1e-13)
    only = m.eval(t, x, raw=False, x0=False, eps=False)
    assert only.raw is None and only.score is not None
    assert m.num_calls == 3 and m.dim == 3
    assert m.output_kind == sde.Output.EPSILON
    assert m.time_input_kind == sde.TimeInput.REFERENCE_CONTINUOUS
    m.reserve(64)
    mp = m.process
    assert mp.kind == sde.ProcessKind.VP and mp.param("beta_min") == 0.1


def test_model_out_argument_shape_and_jvp(vp):
    def net(t, x, out):  # fills `out`; x arrives as (batch, 2, 2)
        assert x.shape[1:] == (2, 2) and not x.flags.writeable
        out[...] = 2 * x

    def jvp(t, x, v, out):
        out[...] = 2 * v

    m = sde.Model(vp, net, shape=(2, 2), output="score")
    assert not m.has_jvp
    x = np.arange(8.0).reshape(2, 2, 2)
    np.testing.assert_allclose(m.score(0.5, x), 2 * x)
    with pytest.raises(sde.SdeUnsupportedError):
        m.score_jvp(0.5, x, x)
    m.set_jvp(jvp)
    assert m.has_jvp
    np.testing.assert_allclose(m.score_jvp(0.5, x, np.ones_like(x)), 2.0)
    m.set_jvp(None)
    assert not m.has_jvp


def test_model_zero_copy_output(vp):
    m = sde.Model(vp, lambda t, x: x, dim=2)
    x = np.ones((3, 2))
    out = np.empty((3, 2))
    r = m.score(0.5, x, out=out)
    assert r is out
    with pytest.raises(TypeError):
        m.score(0.5, x, out=np.empty((3, 2), np.float32))


# ---- the Gaussian mixture -----------------------------------------------------------------

def test_gmm_score_matches_finite_differences(vp, gmm):
    assert gmm.K == 2 and gmm.num_components == 2 and gmm.dim == 2
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 2))
    t = np.linspace(0.05, 0.9, 5)
    score, logp = gmm.eval(vp, t, x)
    h = 1e-5
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        fd = (gmm.logp(vp, t, x + e) - gmm.logp(vp, t, x - e)) / (2 * h)
        np.testing.assert_allclose(score[:, k], fd, rtol=1e-6, atol=1e-7)
    # closed form of the log-density
    a, s = vp.marginal(t)
    V = a[:, None] ** 2 * VARS + s[:, None] ** 2
    d2 = ((x[:, None, :] - a[:, None, None] * MEANS) ** 2).sum(-1)
    l = np.log(WEIGHTS) - np.log(2 * np.pi * V) - d2 / (2 * V)
    np.testing.assert_allclose(logp, np.logaddexp.reduce(l, axis=1), rtol=1e-12)
    sc2, lp2 = gmm.eval_coeffs(a, s, x)
    np.testing.assert_allclose(sc2, score, rtol=1e-13)
    np.testing.assert_allclose(gmm.score(vp, t, x), score)
    r = gmm.responsibilities(a, s, x)
    np.testing.assert_allclose(r.sum(1), 1.0)
    np.testing.assert_allclose(r, np.exp(l - np.logaddexp.reduce(l, axis=1)[:, None]),
                               rtol=1e-10)


def test_gmm_jvp_divergence_sample(vp, gmm):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 2))
    t = np.array([0.1, 0.4, 0.8])
    v = rng.normal(size=(3, 2))
    h = 1e-5
    fd = (gmm.score(vp, t, x + h * v) - gmm.score(vp, t, x - h * v)) / (2 * h)
    jv = gmm.score_jvp(vp, t, x, v)
    np.testing.assert_allclose(jv, fd, rtol=1e-5, atol=1e-6)
    tr = sum(gmm.score_jvp(vp, t, x, np.tile(e, (3, 1)))[:, i]
             for i, e in enumerate(np.eye(2)))
    np.testing.assert_allclose(gmm.score_divergence(vp, t, x), tr, rtol=1e-12)
    with sde.Noise(5) as noise:
        s = gmm.sample(noise, 20000)
    np.testing.assert_allclose(s.mean(0), WEIGHTS @ MEANS, atol=0.03)
    m = gmm.model(vp)
    np.testing.assert_allclose(m.score(t, x), gmm.score(vp, t, x))
    assert m.has_jvp
