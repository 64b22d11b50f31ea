"""Samplers, solvers, likelihood, losses, EMA and controllable generation."""

import math

import numpy as np
import pytest

import scoresde as sde

from conftest import WEIGHTS, component_weights


def weights_ok(gmm, x, nsig=5):
    w = component_weights(gmm, x)
    se = np.sqrt(WEIGHTS * (1 - WEIGHTS) / len(x))
    return np.all(np.abs(w - WEIGHTS) <= nsig * se), w


# ---- DDIM ---------------------------------------------------------------------------------

def test_ddim_recovers_mixture(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    with sde.Ddim(m, 2000, steps=50, spacing="trailing") as d, sde.Noise(11) as n:
        assert d.num_timesteps == 50
        ts = d.timesteps()
        assert ts[0] == 999 and np.all(np.diff(ts) < 0)
        x = d.run(n, 2000)
        assert d.nfe == 50
        ok, w = weights_ok(gmm, x)
        assert ok, w
        t, ab = d.index_time(-1)
        assert (t, ab) == (0.0, 1.0)
        t, ab = d.index_time(500)
        assert ab == pytest.approx(vp.table("alphas_cumprod")[500], rel=1e-12)
        # one manual deterministic step vs the closed form of eq. 12 with eta = 0
        z = n.normal(3, 2)
        x1, x0 = d.step(z, 999, 979, eta=0.0, return_x0=True)
        t9, ab9 = d.index_time(999)
        t7, ab7 = d.index_time(979)
        a9, s9 = math.sqrt(ab9), math.sqrt(1 - ab9)
        eps = (z - a9 * x0) / s9
        np.testing.assert_allclose(x1, math.sqrt(ab7) * x0 + math.sqrt(1 - ab7) * eps,
                                   rtol=1e-10, atol=1e-12)
        x_again = d.run(x_init=z, batch=3)  # eta = 0 needs no noise
        assert x_again.shape == (3, 2)


def test_ddim_refuses_ve(ve, gmm):
    m = sde.Model.from_gmm(ve, gmm)
    with pytest.raises(sde.SdeUnsupportedError):
        sde.Ddim(m, 4)


# ---- ODE solvers --------------------------------------------------------------------------

@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_ode_solver_order(method, order):
    assert sde.ode_method_order(method) == order
    assert not sde.ode_method_is_adaptive(method)
    assert sde.ode_method_name(method) == method.upper()
    assert sde.ode_method_num_buffers(method) >= 2
    errs = []
    for n in (20, 40):
        with sde.OdeSolver(method, 1, 1, num_steps=n) as s:
            y = s.integrate(lambda t, y: -y, 0.0, 1.0, np.ones((1, 1)))
            assert s.nfe == n * {1: 1, 2: 2, 4: 4}[order]
            errs.append(abs(y[0, 0] - math.exp(-1)))
    assert math.log2(errs[0] / errs[1]) == pytest.approx(order, abs=0.15)


def test_ode_solver_adaptive_and_outputs():
    with sde.OdeSolver(sde.OdeMethod.DOPRI5, 3, 2, rtol=1e-9, atol=1e-12) as s:
        assert s.method == sde.OdeMethod.DOPRI5 and s.max_batch == 3 and s.dim == 2
        assert sde.ode_method_is_adaptive("dopri5")
        assert s.get_option("rtol") == 1e-9
        y0 = np.array([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.5]])
        k = np.array([1.0, 2.0, 0.5])

        def rhs(t, y, dydt):  # per-row rate: rows are independent ODEs
            dydt[:] = -k[:, None] * y

        y1, ys = s.integrate_times(rhs, 0.0, 1.0, y0, [0.25, 0.5, 1.0])
        np.testing.assert_allclose(y1, y0 * np.exp(-k)[:, None], rtol=1e-8)
        np.testing.assert_allclose(ys[1], y0 * np.exp(-0.5 * k)[:, None], rtol=1e-7)
        assert ys.shape == (3, 3, 2)
        assert s.accepted_steps > 0 and s.rejected_steps >= 0 and s.t_reached == 1.0
        st = s.sample_stats(1)
        assert st.accepted > 0 and st.t_reached == 1.0
        y_in = y0.copy()
        r = s.integrate(rhs, 0.0, 1.0, y_in, out=y_in)  # in place, zero copy
        assert r is y_in
        s.set_option("max_steps", 2)
        with pytest.raises(sde.SdeNotConvergedError):
            s.integrate(rhs, 0.0, 10.0, y0)


def test_ode_sampler_mixture_and_round_trip(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    with sde.OdeSampler(m, 1000, method="dopri5", rtol=1e-6, atol=1e-6) as s, sde.Noise(2) as n:
        assert s.get_option("eps") == pytest.approx(1e-3)
        x = s.sample(n, 1000)
        ok, w = weights_ok(gmm, x)
        assert ok, w
        assert s.nfe > 0
        st = s.solver
        assert st.accepted_steps > 0 and st.method == sde.OdeMethod.DOPRI5
        with pytest.raises(sde.SdeStateError):
            st.set_option("rtol", 1e-3)
        z = s.encode(x[:20])
        x2 = s.decode(z)
        np.testing.assert_allclose(x2, x[:20], atol=1e-3)


# ---- predictor-corrector ------------------------------------------------------------------

def test_pc_sampler(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    with sde.Sampler(vp, "euler_maruyama", "none", dim=2, max_batch=2000, steps=300) as s, \
            sde.Noise(7) as n:
        assert s.get_option("steps") == 300 and s.workspace_bytes > 0
        x = s.run(m, n, 2000)
        ok, w = weights_ok(gmm, x)
        assert ok, w
        assert s.nfe == 300 and s.model_calls == 300
        grid = s.time_grid()
        assert grid.shape == (301,) and grid[0] == 1.0 and grid[-1] == 0.0
        buf = s.set_trajectory([0, 150, 300], 4)
        x4 = s.run(m, n, 4)
        np.testing.assert_array_equal(buf[2], x4)
        s.set_trajectory(None, 0)
        s.set_time_grid(np.linspace(1.0, 0.0, 11))
        assert s.get_option("steps") == 10
        seen = []
        s.set_progress(lambda k, t: seen.append(t) or False)
        s.run(m, n, 4)
        assert len(seen) == 10
        s.set_progress(lambda k, t: True)
        with pytest.raises(sde.SdeAborted):
            s.run(m, n, 4)
        s.set_progress(None)
        s.set_time_grid(None)
        assert s.get_option("steps") == 300


def test_predictor_and_corrector_steps(vp, gmm):
    assert sde.predictor_kind_name(1) == "euler_maruyama"
    assert sde.predictor_kind_from_name("ancestral_sampling") == 3
    assert sde.corrector_kind_name("ald") == "ald"
    assert sde.corrector_kind_from_name("langevin") == 1
    m = sde.Model.from_gmm(vp, gmm)
    x = np.random.default_rng(4).normal(size=(3, 2))
    t = np.array([0.9, 0.5, 0.2])
    with sde.Predictor(vp, "euler_maruyama", 2, 3, probability_flow=1) as p, sde.Noise(1) as n:
        assert p.kind == sde.PredictorKind.EULER_MARUYAMA and p.workspace_bytes > 0
        assert p.get_option("probability_flow") == 1
        xn, xm = p.step(m, n, t, x, dt=-0.01)
        drift, _ = vp.reverse(t, x, gmm.score(vp, t, x), probability_flow=True)
        np.testing.assert_allclose(xm, x - 0.01 * drift, rtol=1e-12)
        np.testing.assert_allclose(xn, xm)  # no noise under probability flow
    z = np.full((3, 2), 0.5)
    with sde.Corrector(vp, "langevin", 2, 3, snr=0.2) as c, \
            sde.Noise.callback(lambda k, prm, out, off, d: np.full(out.shape, 0.5)) as n:
        assert c.kind == sde.CorrectorKind.LANGEVIN and c.workspace_bytes > 0
        assert c.get_option("snr") == 0.2
        alpha = c.alpha(t)
        idx = vp.discrete_index(t)
        np.testing.assert_allclose(alpha, 1 - vp.table("betas")[idx], rtol=1e-14)
        xn, xm = c.step(m, n, t, x)
        s = gmm.score(vp, t, x)
        e = 2 * alpha * (0.2 * np.linalg.norm(z, axis=1) / np.linalg.norm(s, axis=1)) ** 2
        np.testing.assert_allclose(c.last_step_sizes(3), e, rtol=1e-12)
        np.testing.assert_allclose(xm, x + e[:, None] * s, rtol=1e-12)
        np.testing.assert_allclose(xn, xm + np.sqrt(2 * e)[:, None] * z, rtol=1e-12)


# ---- likelihood ---------------------------------------------------------------------------

def test_likelihood_exact_trace_matches_mixture_density(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    with sde.Likelihood(m, 8, divergence="exact_trace", bits=0, rtol=1e-8, atol=1e-8) as lik:
        assert lik.bpd_offset == 0.0
        x = np.array([[1.4, 0.1], [-1.5, 0.4], [0.0, 0.0]])
        r = lik.compute(x)
        eps = lik.get_option("eps")
        true = gmm.logp(vp, np.full(3, eps), x)
        # The flow ends at the prior N(0, I), not at the exact p_T (a(T) mu ~ 0.01 away).
        np.testing.assert_allclose(r.logp, true, atol=2e-2)
        np.testing.assert_allclose(r.bpd, -r.logp / (2 * math.log(2)), rtol=1e-12)
        np.testing.assert_allclose(r.bpd_se, 0.0)
        np.testing.assert_allclose(r.logp, vp.prior_logp(r.z) + r.delta, rtol=1e-12)
        assert lik.nfe > 0
        score_calls, jvp_calls = lik.calls
        assert score_calls > 0 and jvp_calls > 0
        assert lik.solver.accepted_steps > 0
    with sde.Likelihood(m, 8, probes=4, bits=0) as lik, sde.Noise(3) as n:
        r = lik.compute(x, n)
        assert np.all(r.bpd_se > 0)


# ---- losses and EMA -----------------------------------------------------------------------

def test_loss_gradient_matches_finite_differences(vp):
    assert sde.loss_kind_name("dsm") == "dsm"
    with sde.Loss(vp, "dsm", "epsilon", "continuous", dim=3, max_batch=4,
                  reduce_mean=0) as loss, sde.Noise(9) as n:
        assert loss.kind == sde.LossKind.DSM and loss.dim == 3 and loss.max_batch == 4
        assert loss.get_option("reduce_mean") == 0
        x0 = np.random.default_rng(5).normal(size=(4, 3))
        xt, ti = loss.prepare(n, x0)
        t = loss.prepared("t")
        np.testing.assert_allclose(ti, t)  # continuous time input
        z = loss.prepared("noise")
        a, s = vp.marginal(t)
        np.testing.assert_allclose(xt, a[:, None] * x0 + s[:, None] * z, rtol=1e-12)
        np.testing.assert_allclose(loss.prepared(sde.LossQuantity.X_T), xt)
        np.testing.assert_allclose(loss.prepared("weight"), 1.0)
        out = np.random.default_rng(6).normal(size=(4, 3))
        r = loss.evaluate(out)
        # EPSILON network: s*score + z = -out + z; half-sum reduction
        np.testing.assert_allclose(r.per_sample, 0.5 * ((z - out) ** 2).sum(1), rtol=1e-12)
        assert r.loss == pytest.approx(r.per_sample.mean(), rel=1e-12)
        h = 1e-6
        fd = np.empty_like(out)
        for i in np.ndindex(out.shape):
            e = np.zeros_like(out)
            e[i] = h
            fd[i] = (loss.evaluate(out + e).loss - loss.evaluate(out - e).loss) / (2 * h)
        np.testing.assert_allclose(r.grad, fd, rtol=1e-6, atol=1e-8)
        loss.reset()
        with pytest.raises(sde.SdeStateError):
            loss.evaluate(out)


def test_ema_closed_form():
    p0 = np.array([1.0, 2.0, 3.0])
    with sde.Ema(p0, decay=0.9, warmup=0) as ema:
        assert ema.decay == 0.9 and ema.size == 3 and ema.get_option("warmup") == 0
        p1 = np.array([2.0, 2.0, 0.0])
        ema.update(p1)
        ema.update(p1)
        expect = p1 + (p0 - p1) * 0.9 ** 2
        np.testing.assert_allclose(ema.copy_to(), expect, rtol=1e-14)
        assert ema.num_updates == 2
        ema.store(p1)
        np.testing.assert_array_equal(ema.restore(), p1)
        ema.reset(p0)
        np.testing.assert_array_equal(ema.copy_to(), p0)
        assert ema.num_updates == 0
        ema.set_option("num_updates", 5)
        ema.set_option("warmup", 1)
        ema.update(p1)  # d = min(0.9, 7/16)
        d = min(0.9, 7 / 16)
        np.testing.assert_allclose(ema.copy_to(), p0 - (1 - d) * (p0 - p1), rtol=1e-14)
        with pytest.raises(sde.SdeNumericError):
            ema.update([np.nan, 0, 0])


# ---- controllable generation --------------------------------------------------------------

def test_inpainting_keeps_known_values(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    data = np.tile([1.5, 0.0], (50, 1))
    mask = np.array([1.0, 0.0])
    with sde.Inverse(vp, "reverse_diffusion", "none", dim=2, max_batch=50, steps=200) as inv, \
            sde.Noise(4) as n:
        x = inv.inpaint(m, n, data, mask)
        np.testing.assert_array_equal(x[:, 0], 1.5)
        assert abs(x[:, 1].mean()) < 0.15  # component 0's second coordinate
        assert inv.model_calls == 200 and inv.workspace_bytes > 0
        calls = []
        inv.set_progress(lambda k, t: calls.append(k) or k == 5)
        with pytest.raises(sde.SdeAborted):
            inv.inpaint(m, n, data, mask)
        inv.set_progress(None)
        # a linear problem whose operator picks coordinate 0
        inv.set_operator(lambda x: x[:, :1], lambda y: np.hstack([y, np.zeros_like(y)]), 1)
        y = np.full((50, 1), -1.5)
        x = inv.solve(m, n, y)
        np.testing.assert_allclose(x[:, 0], -1.5, atol=1e-9)
        inv.set_operator(None, None, 0)


def test_inpainting_smc_and_ode_projection(vp, gmm):
    m = sde.Model.from_gmm(vp, gmm)
    data = np.tile([1.5, 0.0], (40, 1))
    mask = np.array([1.0, 0.0])
    with sde.Inverse(vp, "reverse_diffusion", "none", dim=2, max_batch=40, steps=50,
                     method="smc", particles=20) as inv, sde.Noise(4) as n:
        assert inv.get_option("method") == 1 and inv.get_option("particles") == 20
        x = inv.inpaint(m, n, data, mask)
        np.testing.assert_array_equal(x[:, 0], 1.5)
        assert inv.model_calls == 100  # predictor + twisting per step
    times = []

    def keep_known(t, x):
        times.append(t)
        x[:, 0] = 1.5  # known coordinate pinned (a toy projection)

    with sde.OdeSampler(m, 8) as s, sde.Noise(2) as n:
        s.set_projection(keep_known, 4)
        x = s.sample(n, 8)
        assert len(times) == 5 and times[0] > times[-1]
        np.testing.assert_array_equal(x[:, 0], 1.5)
        s.set_projection(None)
        s.sample(n, 8)
        assert len(times) == 5


def test_colorize(vp):
    M, invM = sde.colorize_matrices()
    np.testing.assert_allclose(M @ invM, np.eye(3), atol=1e-12)
    gm = sde.Gmm(np.zeros((1, 12)), [0.1], [1.0])
    m = sde.Model.from_gmm(vp, gm)
    gray = np.tile(np.repeat([0.2, 0.2, 0.2], 4), (2, 1))
    with sde.Inverse(vp, "reverse_diffusion", "none", dim=12, max_batch=2, steps=20) as inv, \
            sde.Noise(1) as n:
        x = inv.colorize(m, n, gray)
        assert x.shape == (2, 12) and np.isfinite(x).all()
        x2 = inv.colorize(m, n, gray, M, invM)
        assert np.isfinite(x2).all()


def test_guidance_wrappers(vp, gmm):
    base = sde.Model.from_gmm(vp, gmm)
    x = np.random.default_rng(8).normal(size=(2, 2))
    t = np.array([0.3, 0.6])

    def grad(ti, x, labels):
        return np.where(labels[:, None] == 1, 1.0, -1.0) * np.ones_like(x)

    g = sde.guided_model(base, grad, scale=2.0)
    g.set_labels([1, 0])
    np.testing.assert_allclose(g.score(t, x), base.score(t, x) + 2.0 * np.array([[1.0], [-1.0]]))
    g.set_guidance_scale(0.0)
    np.testing.assert_allclose(g.score(t, x), base.score(t, x))

    def net(ti, x, labels):
        return np.where(labels[:, None] == sde.LABEL_NONE, 0.0, 1.0) * np.ones_like(x)

    c = sde.cfg_model(vp, net, 2, w=0.5, output="score")
    c.set_labels(3)
    np.testing.assert_allclose(c.score(t, x), 1.5)


def test_every_option_accessor_round_trips(vp, ve, gmm):
    """Read every option of every configurable object and write it back unchanged."""
    m = sde.Model.from_gmm(vp, gmm)
    objs = [sde.Ddim(m, 2), sde.OdeSolver("bs3", 2, 2), sde.OdeSampler(m, 2),
            sde.Predictor(vp, "reverse_diffusion", 2, 2), sde.Corrector(vp, "ald", 2, 2),
            sde.Sampler(vp, dim=2, max_batch=2), sde.Likelihood(m, 2),
            sde.Loss(vp, "dsm", dim=2, max_batch=2), sde.Ema(np.zeros(3)),
            sde.Inverse(vp, dim=2, max_batch=2)]
    for o in objs:
        values = o.options()
        assert values, type(o).__name__
        for name, v in values.items():
            o.set_option(name, v)
            assert o.get_option(name) == v
        # an option of another object is refused by the library, by either setter
        with pytest.raises(sde.SdeInvalidError):
            o.set_int(100 if not isinstance(o, (sde.Predictor, sde.Corrector, sde.Sampler))
                      else 300, 0)
        if o._opt_fns[1] is not None:
            with pytest.raises(sde.SdeInvalidError):
                o.set_real(1000 if not isinstance(o, (sde.Predictor, sde.Corrector,
                                                      sde.Sampler)) else 1200, 0.5)
        o.close()
    with sde.Predictor(vp, "euler_maruyama", 2, 2) as p:
        with pytest.raises(sde.SdeInvalidError):
            p.get_option(1000)  # predictors have no real options
