"""Samplers and solvers: DDIM/DDPM, ODE solvers, the probability-flow ODE sampler, the
predictor-corrector steppers and sampler, the likelihood, and controllable generation."""

import collections
from ctypes import byref, c_double, c_uint64

import numpy as np

from . import _lib
from ._base import (Configurable, Handle, enum_value, f64, out_array, state, times, u64_out)
from ._lib import lib, view
from .core import Model, _fill, _new, progress_cb
from .enums import CorrectorKind, OdeMethod, Output, PredictorKind, TimeInput

# --------------------------------------------------------------------------------------------
# DDIM / ancestral DDPM


class Ddim(Handle, Configurable):
    """DDIM(eta) / ancestral DDPM sampler on a VP process's discrete chain. Options by short
    name as keyword arguments: ``Ddim(model, 64, steps=50, eta=0.0, spacing=...)``."""

    _free_name = "sde_ddim_free"
    _opt_prefixes = ("SDE_OPT_DDIM_",)
    _opt_fns = ("sde_ddim_set_int", "sde_ddim_set_real", "sde_ddim_get_int", "sde_ddim_get_real")

    def __init__(self, model, max_batch, **options):
        _lib.require("ddim")
        self._dim = model.dim
        self._shape = model.shape
        self._init_handle(_new(lib.sde_ddim_new, model._h, model.dim, int(max_batch)),
                          keep=[model])
        self._apply_options(options)

    @property
    def num_timesteps(self):
        return lib.sde_ddim_num_timesteps(self._h)

    def timesteps(self):
        """The index subsequence, noisiest first."""
        out = np.empty(self.num_timesteps, dtype=np.int64)
        _lib.call(lib.sde_ddim_timesteps, self._h, out, out.size)
        return out

    def index_time(self, index):
        """(t_i, alphabar_i) the sampler uses at discrete index `index` (-1: clean data)."""
        t, ab = c_double(), c_double()
        _lib.call(lib.sde_ddim_index_time, self._h, int(index), byref(t), byref(ab))
        return t.value, ab.value

    def step(self, x, frm, to, eta=0.0, z=None, return_x0=False):
        """One step from index `frm` to `to`; returns x_new (and the x0 estimate)."""
        x, b, d = state(x, self._dim)
        if z is not None:
            z, _, _ = state(z, d, name="z")
        out = np.empty_like(x)
        x0 = np.empty_like(x) if return_x0 else None
        _lib.call(lib.sde_ddim_step, self._h, int(frm), int(to), float(eta), x, z, out, x0, b, d)
        return (out, x0) if return_x0 else out

    def run(self, noise=None, batch=None, x_init=None, sample_offset=0, progress=None,
            out=None):
        """Sample `batch` states (from a prior draw of `noise`, or from x_init)."""
        if x_init is not None:
            x_init, batch, d = state(x_init, self._dim, name="x_init")
            shape = x_init.shape
        else:
            if batch is None:
                raise TypeError("give batch (or x_init)")
            shape = (batch,) + tuple(self._shape)
        out = out_array(out, shape)
        cb = progress_cb(progress) if progress is not None else _lib.PROGRESS_FN()
        _lib.call(lib.sde_ddim_run, self._h, None if noise is None else noise._h, x_init, out,
                  batch, self._dim, sample_offset, cb, None)
        return out

    @property
    def nfe(self):
        return u64_out(lib.sde_ddim_get_nfe, self._h)


# --------------------------------------------------------------------------------------------
# ODE solvers


def ode_method_name(method):
    _lib.require("ode")
    return _lib.cstr(lib.sde_ode_method_name(int(enum_value(OdeMethod, method))))


def ode_method_order(method):
    _lib.require("ode")
    return lib.sde_ode_method_order(int(enum_value(OdeMethod, method)))


def ode_method_is_adaptive(method):
    _lib.require("ode")
    return bool(lib.sde_ode_method_is_adaptive(int(enum_value(OdeMethod, method))))


def ode_method_num_buffers(method):
    _lib.require("ode")
    return lib.sde_ode_method_num_buffers(int(enum_value(OdeMethod, method)))


SampleStats = collections.namedtuple("SampleStats", "accepted rejected t_reached")


class OdeSolver(Handle, Configurable):
    """Batched ODE solver: ``rhs(t, y) -> dy/dt`` with t (batch,) and y (batch, dim)
    (or ``rhs(t, y, dydt)`` filling dydt). Options: num_steps, rtol, atol, max_steps, ..."""

    _free_name = "sde_ode_solver_free"
    _opt_prefixes = ("SDE_OPT_ODE_",)
    _opt_fns = ("sde_ode_solver_set_int", "sde_ode_solver_set_real", "sde_ode_solver_get_int",
                "sde_ode_solver_get_real")

    def __init__(self, method, max_batch, dim, **options):
        _lib.require("ode")
        m = int(enum_value(OdeMethod, method))
        self._init_handle(_new(lib.sde_ode_solver_new, m, int(max_batch), int(dim)))
        self._apply_options(options)

    @classmethod
    def _view(cls, ptr, owner):
        self = cls.__new__(cls)
        self._init_handle(ptr, owner=owner)
        return self

    def set_option(self, option, value):
        if self._finalizer is None:
            raise _lib.SdeStateError("SDE_E_STATE", "this solver belongs to a sampler (read-only)")
        return super().set_option(option, value)

    @property
    def method(self):
        return OdeMethod(lib.sde_ode_solver_method(self._h))

    @property
    def max_batch(self):
        return lib.sde_ode_solver_max_batch(self._h)

    @property
    def dim(self):
        return lib.sde_ode_solver_dim(self._h)

    def _rhs(self, rhs):
        from .core import _net_cb
        return _net_cb(rhs, None)

    def integrate(self, rhs, t0, t1, y, out=None):
        """y(t1) from y(t0) = y; returns a new array (or fills `out`, which may be `y`)."""
        y, b, d = state(y, name="y")
        if out is None:
            out = y.copy()
        else:
            out = out_array(out, y.shape)
            if out is not y:
                out[...] = y
        cb = self._rhs(rhs)
        _lib.call(lib.sde_ode_solver_integrate, self._h, cb, None, float(t0), float(t1), out,
                  b, d)
        return out

    def integrate_times(self, rhs, t0, t1, y, t_out):
        """(y(t1), y_out) with y_out[k] the states at t_out[k]: shape (n_out, batch, ...)."""
        y, b, d = state(y, name="y")
        y1 = y.copy()
        t_out = f64(np.atleast_1d(t_out))
        y_out = np.empty((t_out.size,) + y.shape)
        cb = self._rhs(rhs)
        _lib.call(lib.sde_ode_solver_integrate_times, self._h, cb, None, float(t0), float(t1),
                  y1, t_out.size, t_out, y_out, b, d)
        return y1, y_out

    @property
    def nfe(self):
        return u64_out(lib.sde_ode_solver_get_nfe, self._h)

    @property
    def accepted_steps(self):
        return u64_out(lib.sde_ode_solver_get_accepted_steps, self._h)

    @property
    def rejected_steps(self):
        return u64_out(lib.sde_ode_solver_get_rejected_steps, self._h)

    @property
    def t_reached(self):
        v = c_double()
        _lib.call(lib.sde_ode_solver_get_t_reached, self._h, byref(v))
        return v.value

    def sample_stats(self, sample):
        a, r, t = c_uint64(), c_uint64(), c_double()
        _lib.call(lib.sde_ode_solver_get_sample_stats, self._h, int(sample), byref(a), byref(r),
                  byref(t))
        return SampleStats(a.value, r.value, t.value)


class OdeSampler(Handle, Configurable):
    """The probability-flow ODE sampler (and encoder/decoder). Options: eps, denoise, rtol,
    atol, reference_mode, ... (every ODE solver option too)."""

    _free_name = "sde_ode_sampler_free"
    _opt_prefixes = ("SDE_OPT_ODE_",)
    _opt_fns = ("sde_ode_sampler_set_int", "sde_ode_sampler_set_real",
                "sde_ode_sampler_get_int", "sde_ode_sampler_get_real")

    def __init__(self, model, max_batch, method="dopri5", **options):
        _lib.require("ode")
        self._dim, self._shape = model.dim, model.shape
        m = int(enum_value(OdeMethod, method))
        self._init_handle(_new(lib.sde_ode_sampler_new, model._h, m, int(max_batch)),
                          keep=[model])
        self._apply_options(options)

    def sample(self, noise, batch, sample_offset=0, out=None):
        out = out_array(out, (batch,) + tuple(self._shape))
        _lib.call(lib.sde_ode_sampler_sample, self._h, noise._h, out, batch, self._dim,
                  sample_offset)
        return out

    def decode(self, z, noise=None, sample_offset=0, out=None):
        z, b, d = state(z, self._dim, name="z")
        out = out_array(out, z.shape)
        _lib.call(lib.sde_ode_sampler_decode, self._h, None if noise is None else noise._h, z,
                  out, b, d, sample_offset)
        return out

    def encode(self, x, out=None):
        x, b, d = state(x, self._dim)
        out = out_array(out, x.shape)
        _lib.call(lib.sde_ode_sampler_encode, self._h, x, out, b, d)
        return out

    @property
    def nfe(self):
        return u64_out(lib.sde_ode_sampler_get_nfe, self._h)

    @property
    def solver(self):
        """The sampler's solver (read-only view) for the last run's statistics."""
        return OdeSolver._view(lib.sde_ode_sampler_solver(self._h), self)

    def set_projection(self, fn, segments=1):
        """Project the state while decoding: ``fn(t, x)`` edits ``x`` (batch, dim) in place at
        the ends of ``segments`` equal pieces of [T, eps] (and at T); None removes it."""
        if fn is None:
            _lib.call(lib.sde_ode_sampler_set_projection, self._h, _lib.ODE_PROJECTION_FN(),
                      None, 0)
            self._projection_keep = None
            return

        def cb(t, x_addr, batch, dim, _user):
            r = fn(t, view(x_addr, (batch, dim)))
            return 0 if r is None else int(r)

        c = _lib.ODE_PROJECTION_FN(_lib.guard(cb))
        _lib.call(lib.sde_ode_sampler_set_projection, self._h, c, None, int(segments))
        self._projection_keep = (c, fn)


# --------------------------------------------------------------------------------------------
# Predictor-corrector sampling (sampler.h)


def predictor_kind_name(kind):
    _lib.require("sampler")
    return _lib.cstr(lib.sde_predictor_kind_name(int(enum_value(PredictorKind, kind))))


def predictor_kind_from_name(name):
    _lib.require("sampler")
    return lib.sde_predictor_kind_from_name(name.encode())


def corrector_kind_name(kind):
    _lib.require("sampler")
    return _lib.cstr(lib.sde_corrector_kind_name(int(enum_value(CorrectorKind, kind))))


def corrector_kind_from_name(name):
    _lib.require("sampler")
    return lib.sde_corrector_kind_from_name(name.encode())


def _pred_kind(k):
    if isinstance(k, str) and lib.sde_predictor_kind_from_name(k.encode()):
        return lib.sde_predictor_kind_from_name(k.encode())
    return int(enum_value(PredictorKind, k))


def _corr_kind(k):
    if isinstance(k, str) and lib.sde_corrector_kind_from_name(k.encode()):
        return lib.sde_corrector_kind_from_name(k.encode())
    return int(enum_value(CorrectorKind, k))


class Predictor(Handle, Configurable):
    """One reverse-time step (Euler-Maruyama, reverse diffusion, ancestral, none)."""

    _free_name = "sde_predictor_free"
    _opt_prefixes = ("SDE_OPT_PC_",)
    _opt_fns = ("sde_predictor_set_int", "sde_predictor_set_real", "sde_predictor_get_int",
                "sde_predictor_get_real")

    def __init__(self, process, kind, dim, max_batch, **options):
        _lib.require("sampler")
        self._dim = int(dim)
        self._init_handle(_new(lib.sde_predictor_new, process._h, _pred_kind(kind), self._dim,
                               int(max_batch)))
        self._apply_options(options)

    @property
    def kind(self):
        return PredictorKind(lib.sde_predictor_kind(self._h))

    @property
    def workspace_bytes(self):
        return lib.sde_predictor_workspace_bytes(self._h)

    def step(self, model, noise, t, x, dt=0.0, sample_offset=0):
        """One step: returns (x_new, x_mean). `x` is not modified."""
        x, b, d = state(x, self._dim)
        xn = x.copy()
        xm = np.empty_like(x)
        _lib.call(lib.sde_predictor_step, self._h, model._h,
                  None if noise is None else noise._h, times(t, b), float(dt), xn, xm, b, d,
                  sample_offset)
        return xn, xm


class Corrector(Handle, Configurable):
    """Langevin MCMC at fixed time (Langevin, ALD, none)."""

    _free_name = "sde_corrector_free"
    _opt_prefixes = ("SDE_OPT_PC_",)
    _opt_fns = ("sde_corrector_set_int", "sde_corrector_set_real", "sde_corrector_get_int",
                "sde_corrector_get_real")

    def __init__(self, process, kind, dim, max_batch, **options):
        _lib.require("sampler")
        self._dim = int(dim)
        self._init_handle(_new(lib.sde_corrector_new, process._h, _corr_kind(kind), self._dim,
                               int(max_batch)))
        self._apply_options(options)

    @property
    def kind(self):
        return CorrectorKind(lib.sde_corrector_kind(self._h))

    @property
    def workspace_bytes(self):
        return lib.sde_corrector_workspace_bytes(self._h)

    def alpha(self, t):
        t = times(t, np.size(t))
        out = np.empty_like(t)
        _lib.call(lib.sde_corrector_alpha, self._h, t, out, t.size)
        return out

    def step(self, model, noise, t, x, sample_offset=0):
        """One corrector call: returns (x_new, x_mean). `x` is not modified."""
        x, b, d = state(x, self._dim)
        xn = x.copy()
        xm = np.empty_like(x)
        _lib.call(lib.sde_corrector_step, self._h, model._h,
                  None if noise is None else noise._h, times(t, b), xn, xm, b, d, sample_offset)
        self._last_batch = b
        return xn, xm

    def last_step_sizes(self, batch=None):
        b = batch if batch is not None else getattr(self, "_last_batch", 1)
        out = np.empty(b)
        _lib.call(lib.sde_corrector_last_step_sizes, self._h, out, b)
        return out


class Sampler(Handle, Configurable):
    """The predictor-corrector sampler. Options: steps, snr, eps, corrector_steps, denoise,
    probability_flow, batch_norms, threads, reference."""

    _free_name = "sde_sampler_free"
    _opt_prefixes = ("SDE_OPT_PC_",)
    _opt_fns = ("sde_sampler_set_int", "sde_sampler_set_real", "sde_sampler_get_int",
                "sde_sampler_get_real")

    def __init__(self, process, predictor="reverse_diffusion", corrector="langevin", dim=None,
                 max_batch=1, shape=None, **options):
        _lib.require("sampler")
        if shape is None:
            if dim is None:
                raise TypeError("give dim or shape")
            shape = (int(dim),)
        self._shape = tuple(shape)
        self._dim = int(np.prod(self._shape))
        self._init_handle(_new(lib.sde_sampler_new, process._h, _pred_kind(predictor),
                               _corr_kind(corrector), self._dim, int(max_batch)))
        self._progress_keep = None
        self._traj_keep = None
        self._apply_options(options)

    @property
    def workspace_bytes(self):
        return lib.sde_sampler_workspace_bytes(self._h)

    def set_time_grid(self, grid):
        """Install a custom decreasing grid of n+1 times (None: back to the default)."""
        if grid is None:
            _lib.call(lib.sde_sampler_set_time_grid, self._h, None, 0)
            return
        grid = f64(grid).reshape(-1)
        _lib.call(lib.sde_sampler_set_time_grid, self._h, grid, grid.size - 1)

    def time_grid(self):
        n = self.get_option("steps") + 1
        out = np.empty(n)
        _lib.call(lib.sde_sampler_get_time_grid, self._h, out, n)
        return out

    def set_progress(self, fn):
        """``fn(step, t)`` before every step; a true return stops the run (SdeAborted)."""
        cb = progress_cb(fn) if fn is not None else _lib.PROGRESS_FN()
        _lib.call(lib.sde_sampler_set_progress, self._h, cb, None)
        self._progress_keep = (cb, fn) if fn is not None else None

    def set_trajectory(self, steps, batch):
        """Record the states after the given step counts in the next runs of `batch` samples;
        returns the buffer (len(steps), batch, *shape) the library will fill."""
        if steps is None:
            _lib.call(lib.sde_sampler_set_trajectory, self._h, None, 0, None, 0)
            self._traj_keep = None
            return None
        steps = np.ascontiguousarray(np.atleast_1d(steps), dtype=np.uintp)
        buf = np.zeros((steps.size, batch) + self._shape)
        _lib.call(lib.sde_sampler_set_trajectory, self._h, steps, steps.size, buf, buf.size)
        self._traj_keep = (steps, buf)  # borrowed by the library until replaced
        return buf

    def run(self, model, noise, batch=None, x_init=None, sample_offset=0, out=None):
        if x_init is not None:
            x_init, batch, _ = state(x_init, self._dim, name="x_init")
            shape = x_init.shape
        else:
            if batch is None:
                raise TypeError("give batch (or x_init)")
            shape = (batch,) + self._shape
        out = out_array(out, shape)
        _lib.call(lib.sde_sampler_run, self._h, model._h, None if noise is None else noise._h,
                  x_init, out, batch, self._dim, sample_offset)
        return out

    @property
    def nfe(self):
        return u64_out(lib.sde_sampler_get_nfe, self._h)

    @property
    def model_calls(self):
        return u64_out(lib.sde_sampler_get_model_calls, self._h)


# --------------------------------------------------------------------------------------------
# Likelihood

LikelihoodResult = collections.namedtuple("LikelihoodResult", "logp bpd bpd_se z delta")


class Likelihood(Handle, Configurable):
    """Log-likelihood / bits-per-dim through the probability-flow ODE. Options: divergence,
    jvp, probes, bits, dequantize, eps, data_scale, data_shift, rtol, atol, ..."""

    _free_name = "sde_likelihood_free"
    _opt_prefixes = ("SDE_OPT_LIK_", "SDE_OPT_ODE_")
    _opt_fns = ("sde_likelihood_set_int", "sde_likelihood_set_real", "sde_likelihood_get_int",
                "sde_likelihood_get_real")

    def __init__(self, model, max_batch, method="dopri5", **options):
        _lib.require("likelihood")
        self._dim = model.dim
        m = int(enum_value(OdeMethod, method))
        self._init_handle(_new(lib.sde_likelihood_new, model._h, m, int(max_batch)),
                          keep=[model])
        self._apply_options(options)

    @property
    def bpd_offset(self):
        v = c_double()
        _lib.call(lib.sde_likelihood_bpd_offset, self._h, byref(v))
        return v.value

    def compute(self, x, noise=None, sample_offset=0):
        """LikelihoodResult(logp, bpd, bpd_se, z, delta) for the samples x."""
        x, b, d = state(x, self._dim)
        logp, bpd, se, delta = np.empty(b), np.empty(b), np.empty(b), np.empty(b)
        z = np.empty_like(x)
        _lib.call(lib.sde_likelihood_compute, self._h, None if noise is None else noise._h, x,
                  b, d, sample_offset, logp, bpd, se, z, delta)
        return LikelihoodResult(logp, bpd, se, z, delta)

    @property
    def nfe(self):
        return u64_out(lib.sde_likelihood_get_nfe, self._h)

    @property
    def calls(self):
        """(score_calls, jvp_calls) of the last compute."""
        s, j = c_uint64(), c_uint64()
        _lib.call(lib.sde_likelihood_get_calls, self._h, byref(s), byref(j))
        return s.value, j.value

    @property
    def solver(self):
        return OdeSolver._view(lib.sde_likelihood_solver(self._h), self)


# --------------------------------------------------------------------------------------------
# Controllable generation


def colorize_matrices():
    """(M, invM): the reference's 3x3 colour transform and its inverse."""
    _lib.require("controllable")
    M, inv = np.empty((3, 3)), np.empty((3, 3))
    _lib.call(lib.sde_colorize_matrices, M, inv)
    return M, inv


def _op_cb(fn):
    def cb(in_addr, out_addr, batch, in_dim, out_dim, _user):
        return _fill(fn, (view(in_addr, (batch, in_dim), writable=False),),
                     (view(out_addr, (batch, out_dim)),))

    return _lib.LINEAR_OP_FN(_lib.guard(cb))


class Inverse(Handle, Configurable):
    """The projection sampler: inpainting, colorization, linear inverse problems."""

    _free_name = "sde_inverse_free"
    _opt_prefixes = ("SDE_OPT_CTRL_",)
    _opt_fns = ("sde_inverse_set_int", "sde_inverse_set_real", "sde_inverse_get_int",
                "sde_inverse_get_real")

    def __init__(self, process, predictor="reverse_diffusion", corrector="langevin", dim=None,
                 max_batch=1, **options):
        _lib.require("controllable")
        self._dim = int(dim)
        self._init_handle(_new(lib.sde_inverse_new, process._h, _pred_kind(predictor),
                               _corr_kind(corrector), self._dim, int(max_batch)))
        self._progress_keep = None
        self._op_keep = None
        self._m = 0
        self._apply_options(options)

    def set_progress(self, fn):
        cb = progress_cb(fn) if fn is not None else _lib.PROGRESS_FN()
        _lib.call(lib.sde_inverse_set_progress, self._h, cb, None)
        self._progress_keep = (cb, fn) if fn is not None else None

    @property
    def workspace_bytes(self):
        return lib.sde_inverse_workspace_bytes(self._h)

    @property
    def model_calls(self):
        return u64_out(lib.sde_inverse_get_model_calls, self._h)

    def inpaint(self, model, noise, data, mask, sample_offset=0):
        data, b, d = state(data, self._dim, name="data")
        mask = f64(mask).reshape(-1, d)
        out = np.empty_like(data)
        _lib.call(lib.sde_inverse_inpaint, self._h, model._h, noise._h, data, mask,
                  mask.shape[0], out, b, d, sample_offset)
        return out

    def colorize(self, model, noise, gray, M=None, invM=None, sample_offset=0):
        gray, b, d = state(gray, self._dim, name="gray")
        M = None if M is None else f64(M).reshape(9)
        invM = None if invM is None else f64(invM).reshape(9)
        out = np.empty_like(gray)
        _lib.call(lib.sde_inverse_colorize, self._h, model._h, noise._h, gray, M, invM, out, b,
                  3, d // 3, sample_offset)
        return out

    def set_operator(self, A, AT, m):
        """Install the measurement operator ``A(x) -> y`` (batch, m) and its transpose."""
        if A is None:
            _lib.call(lib.sde_inverse_set_operator, self._h, _lib.LINEAR_OP_FN(),
                      _lib.LINEAR_OP_FN(), 0, None)
            self._op_keep, self._m = None, 0
            return
        a, at = _op_cb(A), _op_cb(AT)
        _lib.call(lib.sde_inverse_set_operator, self._h, a, at, int(m), None)
        self._op_keep, self._m = (a, at, A, AT), int(m)

    def solve(self, model, noise, y, sample_offset=0):
        y = f64(y).reshape(-1, self._m) if self._m else f64(y)
        b = y.shape[0]
        out = np.empty((b, self._dim))
        _lib.call(lib.sde_inverse_solve, self._h, model._h, noise._h, y, self._m, out, b,
                  self._dim, sample_offset)
        return out


def guided_model(base, classifier_grad, scale=1.0):
    """Classifier guidance: score_base + scale * grad log p(y|x).
    ``classifier_grad(time_input, x, labels) -> grad`` (batch, dim)."""
    _lib.require("controllable")
    shape = base.shape

    def cb(t_addr, x_addr, lab_addr, out_addr, batch, dim, _user):
        xs = (batch,) + tuple(shape)
        return _fill(classifier_grad, (view(t_addr, (batch,), writable=False),
                                       view(x_addr, xs, writable=False),
                                       view(lab_addr, (batch,), np.int64, writable=False)),
                     (view(out_addr, xs),))

    c = _lib.CLASSIFIER_GRAD_FN(_lib.guard(cb))
    ptr = _new(lib.sde_model_new_guided, base._h, c, None, float(scale))
    return Model._wrap(ptr, shape, [c, classifier_grad, base])


def cfg_model(process, net, dim, w, output="score", time_input="continuous"):
    """Classifier-free guidance. ``net(time_input, x, labels) -> out`` over 2*batch rows
    (labels -1 = unconditional)."""
    _lib.require("controllable")

    def cb(t_addr, x_addr, lab_addr, out_addr, rows, d, _user):
        return _fill(net, (view(t_addr, (rows,), writable=False),
                           view(x_addr, (rows, d), writable=False),
                           view(lab_addr, (rows,), np.int64, writable=False)),
                     (view(out_addr, (rows, d)),))

    c = _lib.CFG_NET_FN(_lib.guard(cb))
    ptr = _new(lib.sde_model_new_cfg, process._h, int(dim), c, None,
               int(enum_value(Output, output)), int(enum_value(TimeInput, time_input)), float(w))
    return Model._wrap(ptr, (int(dim),), [c, net])
