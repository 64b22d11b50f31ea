"""Errors, versions, options, noise sources, processes, the model adapter and the mixture."""

import collections
import inspect
from ctypes import byref, c_double, c_void_p

import numpy as np

from . import _lib
from ._base import (Configurable, Handle, enum_value, f64, option_number, option_values,
                    out_array, state, times, _option_table)
from ._lib import lib, view
from .enums import NoiseKind, Output, ProcessKind, Table, TimeInput

# --------------------------------------------------------------------------------------------
# Library-wide functions


def version():
    """The loaded library's version string, e.g. "0.1.0"."""
    return lib.sde_version_string().decode()


def version_number():
    """MAJOR*10000 + MINOR*100 + PATCH of the loaded library."""
    return lib.sde_version_number()


def status_name(status):
    """Static name of a status code ("SDE_E_INVALID")."""
    return lib.sde_status_name(int(status)).decode()


def status_string(status):
    """One-line English description of a status code."""
    return lib.sde_status_string(int(status)).decode()


def last_error():
    """The calling thread's last libscoresde error message (the wrappers already put it in
    the exceptions they raise)."""
    return lib.sde_last_error().decode("utf-8", "replace")


def clear_error():
    lib.sde_clear_error()


def set_error_message(message):
    """From inside a callback: the message the library reports for the callback's failure.
    (Wrapped callbacks that raise set it to the exception's text automatically.)"""
    lib.sde_set_error_message(None if message is None else str(message).encode("utf-8"))


_log_keep = None


def set_log(fn):
    """Install a process-wide log sink ``fn(level, message)`` (None removes it). It is called
    on the thread of the failing call; exceptions raised by it are printed, not propagated."""
    global _log_keep
    if fn is None:
        lib.sde_log_set(_lib.LOG_FN(), None)
        _log_keep = None
        return

    def sink(level, message, _user):
        try:
            fn(level, message.decode("utf-8", "replace"))
        except Exception:  # a void callback cannot report failure
            import traceback
            traceback.print_exc()

    cb = _lib.LOG_FN(sink)
    lib.sde_log_set(cb, None)
    _log_keep = cb  # pinned: the library may call it until replaced


def option_name(option):
    """Static name of an option number ("SDE_OPT_PC_SNR"), or None."""
    return _lib.cstr(lib.sde_option_name(int(option)))


def option_type(option):
    """1 (int) or 2 (real) for an option (number or full name), 0 if unknown."""
    return lib.sde_option_type(option_number(option))


def option_bounds(option):
    """Inclusive (lo, hi) bounds of an option (number or full name)."""
    lo, hi = c_double(), c_double()
    _lib.call(lib.sde_option_bounds, option_number(option), byref(lo), byref(hi))
    return lo.value, hi.value


def options():
    """Every option the library knows: {name: number}."""
    return dict(_option_table())


def has_feature(group):
    """Whether the loaded library has a group of functions: "ddim", "ode", "loss", "sampler",
    "likelihood", "controllable" ("core" always)."""
    return group == "core" or group in _lib.FEATURES


# --------------------------------------------------------------------------------------------
# Callback helpers


def _nparams(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return 99
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def _fill(fn, inputs, outs):
    """Call a host function written either as ``fn(*inputs) -> result(s)`` or as
    ``fn(*inputs, *outs)`` filling the outputs. Returns the status for C."""
    n = _nparams(fn)
    if n is not None and n >= len(inputs) + len(outs):
        r = fn(*inputs, *outs)
    else:
        r = fn(*inputs)
    if r is None:
        return 0
    if isinstance(r, (bool, int, np.integer)):
        return int(r)
    if len(outs) == 1:
        r = (r,)
    if len(r) != len(outs):
        raise ValueError(f"callback returned {len(r)} values; expected {len(outs)}")
    for o, v in zip(outs, r):
        v = np.asarray(v, dtype=np.float64)
        if v.size != o.size:
            raise ValueError(f"callback returned shape {v.shape}; expected {o.shape}")
        o[...] = v.reshape(o.shape)
    return 0


def _net_cb(fn, shape):
    """A C net/drift/rhs callback (t, x, out, batch, dim) around a Python function."""

    def cb(t_addr, x_addr, out_addr, batch, dim, _user):
        xs = (batch,) + tuple(shape) if shape else (batch, dim)
        t = view(t_addr, (batch,), writable=False)
        x = view(x_addr, xs, writable=False)
        out = view(out_addr, xs)
        return _fill(fn, (t, x), (out,))

    return _lib.NET_FN(_lib.guard(cb))


def _jvp_cb(fn, shape):
    def cb(t_addr, x_addr, v_addr, out_addr, batch, dim, _user):
        xs = (batch,) + tuple(shape) if shape else (batch, dim)
        t = view(t_addr, (batch,), writable=False)
        x = view(x_addr, xs, writable=False)
        v = view(v_addr, xs, writable=False)
        out = view(out_addr, xs)
        return _fill(fn, (t, x, v), (out,))

    return _lib.JVP_FN(_lib.guard(cb))


def progress_cb(fn):
    """A C progress callback: ``fn(step, t)`` returning a true value stops the run."""

    def cb(step, t, _user):
        r = fn(step, t)
        return 1 if r else 0

    return _lib.PROGRESS_FN(_lib.guard(cb, fail=1))


def _new(ctor, *args):
    out = c_void_p()
    _lib.call(ctor, byref(out), *args)
    return out.value


# --------------------------------------------------------------------------------------------
# Noise


class Noise(Handle):
    """A noise source: the built-in Philox4x32-10 generator (``Noise.philox(seed)``) or a host
    callback (``Noise.callback(fn)``)."""

    _free_name = "sde_noise_free"

    def __init__(self, seed=0):
        self._init_handle(_new(lib.sde_noise_new_philox, int(seed)))

    @classmethod
    def philox(cls, seed=0):
        return cls(seed)

    @classmethod
    def callback(cls, fn):
        """A source that forwards every draw to ``fn(kind, param, out, sample_offset, draw)``,
        which fills ``out`` (shape (batch, dim)) or returns an array of that shape. ``kind``
        is a NoiseKind; ``param`` the bound of INTEGER draws."""

        def cb(kind, param, out_addr, batch, dim, offset, draw, _user):
            return _noise_call(fn, kind, param, view(out_addr, (batch, dim)), offset, draw)

        c = _lib.NOISE_FN(_lib.guard(cb))
        self = cls.__new__(cls)
        self._init_handle(_new(lib.sde_noise_new_callback, c, None), keep=[c, fn])
        return self

    def draw(self, kind, batch, dim, sample_offset=0, param=0.0, out=None):
        """One draw of `kind` (NoiseKind or name) for samples sample_offset.. ; (batch, dim)."""
        kind = enum_value(NoiseKind, kind)
        out = out_array(out, (batch, dim))
        _lib.call(lib.sde_noise_draw, self._h, int(kind), float(param), out, batch, dim,
                  sample_offset)
        return out

    def normal(self, batch, dim, sample_offset=0, out=None):
        out = out_array(out, (batch, dim))
        _lib.call(lib.sde_noise_normal, self._h, out, batch, dim, sample_offset)
        return out

    def uniform(self, batch, dim, sample_offset=0, out=None):
        out = out_array(out, (batch, dim))
        _lib.call(lib.sde_noise_uniform, self._h, out, batch, dim, sample_offset)
        return out

    def rademacher(self, batch, dim, sample_offset=0, out=None):
        out = out_array(out, (batch, dim))
        _lib.call(lib.sde_noise_rademacher, self._h, out, batch, dim, sample_offset)
        return out

    @property
    def counter(self):
        """The draw counter (number of draws so far); assignable."""
        return lib.sde_noise_counter(self._h)

    @counter.setter
    def counter(self, value):
        _lib.call(lib.sde_noise_set_counter, self._h, int(value))

    @property
    def seed(self):
        return lib.sde_noise_seed(self._h)


def _noise_call(fn, kind, param, out, offset, draw):
    r = fn(NoiseKind(kind), param, out, offset, draw)
    if r is None:
        return 0
    if isinstance(r, (bool, int, np.integer)):
        return int(r)
    r = np.asarray(r, dtype=np.float64)
    if r.size != out.size:
        raise ValueError(f"noise callback returned shape {r.shape}; expected {out.shape}")
    out[...] = r.reshape(out.shape)
    return 0


def philox4x32_10(ctr, key):
    """The raw Philox4x32-10 bijection: 4 uint32 counter words, 2 key words -> 4 words."""
    ctr = np.ascontiguousarray(ctr, dtype=np.uint32).reshape(4)
    key = np.ascontiguousarray(key, dtype=np.uint32).reshape(2)
    out = np.empty(4, dtype=np.uint32)
    _lib.call(lib.sde_philox4x32_10, ctr, key, out)
    return out


# --------------------------------------------------------------------------------------------
# Processes


class Process(Handle):
    """A forward process (immutable; may be shared between threads). Build with
    ``Process.vp()``, ``Process.subvp()``, ``Process.ve()`` or ``Process.custom()``."""

    _free_name = "sde_process_free"

    def __init__(self, *a, **k):
        raise TypeError("use Process.vp(), Process.subvp(), Process.ve() or Process.custom()")

    @classmethod
    def _make(cls, ptr, keep=(), owner=None):
        self = cls.__new__(cls)
        self._init_handle(ptr, keep=keep, owner=owner)
        return self

    @classmethod
    def vp(cls, beta_min=0.1, beta_max=20.0, T=1.0, N=1000):
        return cls._make(_new(lib.sde_process_new_vp, beta_min, beta_max, T, N))

    @classmethod
    def subvp(cls, beta_min=0.1, beta_max=20.0, T=1.0, N=1000):
        return cls._make(_new(lib.sde_process_new_subvp, beta_min, beta_max, T, N))

    @classmethod
    def ve(cls, sigma_min=0.01, sigma_max=50.0, T=1.0, N=1000):
        return cls._make(_new(lib.sde_process_new_ve, sigma_min, sigma_max, T, N))

    @classmethod
    def custom(cls, drift, diffusion, marginal=None, T=1.0, N=1000, prior_std=1.0):
        """A user-defined process: ``drift(t, x) -> f`` (x: (batch, dim)),
        ``diffusion(t) -> g`` ((batch,)), optional ``marginal(t) -> (a, s)``. Each may instead
        take its output arrays as extra arguments and fill them."""

        def diff_cb(t_addr, g_addr, batch, _user):
            return _fill(diffusion, (view(t_addr, (batch,), writable=False),),
                         (view(g_addr, (batch,)),))

        def marg_cb(t_addr, a_addr, s_addr, batch, _user):
            return _fill(marginal, (view(t_addr, (batch,), writable=False),),
                         (view(a_addr, (batch,)), view(s_addr, (batch,))))

        d = _net_cb(drift, None)
        g = _lib.DIFFUSION_FN(_lib.guard(diff_cb))
        m = _lib.MARGINAL_FN(_lib.guard(marg_cb)) if marginal is not None else _lib.MARGINAL_FN()
        ptr = _new(lib.sde_process_new_custom, T, N, prior_std, d, g, m, None)
        return cls._make(ptr, keep=[d, g, m, drift, diffusion, marginal])

    @property
    def kind(self):
        return ProcessKind(lib.sde_process_kind(self._h))

    @property
    def T(self):
        return lib.sde_process_t_end(self._h)

    t_end = T

    @property
    def N(self):
        return lib.sde_process_num_steps(self._h)

    num_steps = N

    def param(self, name):
        """A real parameter by name: "beta_min", "beta_max", "sigma_min", "sigma_max", "T",
        "prior_std"."""
        v = c_double()
        _lib.call(lib.sde_process_param, self._h, name.encode(), byref(v))
        return v.value

    @property
    def has_tables(self):
        return bool(lib.sde_process_has_tables(self._h))

    @property
    def prior_std(self):
        return lib.sde_process_prior_std(self._h)

    def drift(self, t, x, out=None):
        x, b, d = state(x)
        out = out_array(out, x.shape)
        _lib.call(lib.sde_process_drift, self._h, times(t, b), x, out, b, d)
        return out

    def diffusion(self, t):
        t = times(t, np.size(t))
        out = np.empty_like(t)
        _lib.call(lib.sde_process_diffusion, self._h, t, out, t.size)
        return out

    def marginal(self, t):
        """(a(t), s(t)): x_t | x_0 ~ N(a x_0, s^2 I)."""
        t = times(t, np.size(t))
        a, s = np.empty_like(t), np.empty_like(t)
        _lib.call(lib.sde_process_marginal, self._h, t, a, s, t.size)
        return a, s

    def marginal_std_from_data(self, t):
        t = times(t, np.size(t))
        s = np.empty_like(t)
        _lib.call(lib.sde_process_marginal_std_from_data, self._h, t, s, t.size)
        return s

    def perturb(self, t, x0, noise=None, out=None):
        """a(t) x0 + s(t) noise (noise None: the mean)."""
        x0, b, d = state(x0, name="x0")
        if noise is not None:
            noise, _, _ = state(noise, d, name="noise")
        out = out_array(out, x0.shape)
        _lib.call(lib.sde_process_perturb, self._h, times(t, b), x0, noise, out, b, d)
        return out

    def prior_sample(self, noise, batch, dim, sample_offset=0, out=None):
        """(batch, dim) prior samples, or (batch, *dim) when dim is a shape tuple."""
        shape = (batch,) + (tuple(dim) if isinstance(dim, (tuple, list)) else (dim,))
        d = int(np.prod(shape[1:]))
        out = out_array(out, shape)
        _lib.call(lib.sde_process_prior_sample, self._h, noise._h, out, batch, d, sample_offset)
        return out

    def prior_logp(self, z):
        z, b, d = state(z, name="z")
        out = np.empty(b)
        _lib.call(lib.sde_process_prior_logp, self._h, z, out, b, d)
        return out

    def table(self, which):
        """A discrete table (Table or name: "betas", "alphas_cumprod", "sigmas"...), (N,)."""
        which = enum_value(Table, which)
        out = np.empty(self.N)
        _lib.call(lib.sde_process_table, self._h, int(which), out, out.size)
        return out

    def discrete_index(self, t):
        t = times(t, np.size(t))
        out = np.empty(t.size, dtype=np.int64)
        _lib.call(lib.sde_process_discrete_index, self._h, t, out, t.size)
        return out

    def discretize(self, t, x):
        """(f, G) of the one-step forward discretisation x + f + G z."""
        x, b, d = state(x)
        f, G = np.empty_like(x), np.empty(b)
        _lib.call(lib.sde_process_discretize, self._h, times(t, b), x, f, G, b, d)
        return f, G

    def reverse(self, t, x, score, probability_flow=False):
        """(drift, diffusion) of the reverse SDE (or the probability-flow ODE)."""
        x, b, d = state(x)
        score, _, _ = state(score, d, name="score")
        drift, g = np.empty_like(x), np.empty(b)
        _lib.call(lib.sde_process_reverse, self._h, times(t, b), x, score,
                  int(bool(probability_flow)), drift, g, b, d)
        return drift, g

    def reverse_discretize(self, t, x, score, probability_flow=False):
        """(rev_f, rev_G) of the reverse discretisation."""
        x, b, d = state(x)
        score, _, _ = state(score, d, name="score")
        f, G = np.empty_like(x), np.empty(b)
        _lib.call(lib.sde_process_reverse_discretize, self._h, times(t, b), x, score,
                  int(bool(probability_flow)), f, G, b, d)
        return f, G


# --------------------------------------------------------------------------------------------
# The model adapter

ModelEval = collections.namedtuple("ModelEval", "raw score x0 eps")


class Model(Handle):
    """The score-model adapter around a host network.

    ``net(time_input, x)`` receives ``time_input`` (batch,) and ``x`` (batch, *shape) as
    read-only numpy views of library memory, valid only during the call, and returns the
    network output (any array-like of x's size: numpy, a CPU torch tensor...). It may instead
    take a third argument ``out`` and fill it. Raising an exception makes the library call
    fail; the exception is re-raised from that call. Returning an int returns that status
    (> 0: recoverable, adaptive solvers retry with a smaller step).
    """

    _free_name = "sde_model_free"

    def __init__(self, process, net, dim=None, shape=None, output="score",
                 time_input="continuous", jvp=None):
        if shape is None:
            if dim is None:
                raise TypeError("give dim (values per sample) or shape (per-sample shape)")
            shape = (int(dim),)
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        dim = int(np.prod(shape))
        self._shape = shape
        cb = _net_cb(net, shape)
        ptr = _new(lib.sde_model_new, process._h, dim, cb, None,
                   int(enum_value(Output, output)), int(enum_value(TimeInput, time_input)))
        self._init_handle(ptr, keep=[cb, net])
        if jvp is not None:
            self.set_jvp(jvp)

    @classmethod
    def _wrap(cls, ptr, shape, keep):
        self = cls.__new__(cls)
        self._shape = tuple(shape)
        self._init_handle(ptr, keep=keep)
        return self

    @classmethod
    def from_gmm(cls, process, gmm):
        """A model whose network is the mixture's exact score (with its exact JVP)."""
        return cls._wrap(_new(lib.sde_model_new_gmm, process._h, gmm._h), (gmm.dim,), [gmm])

    def set_jvp(self, jvp):
        """Attach ``jvp(time_input, x, v) -> J v`` (or fill a 4th argument), or None."""
        if jvp is None:
            _lib.call(lib.sde_model_set_jvp, self._h, _lib.JVP_FN())
            self._jvp_keep = None
            return
        cb = _jvp_cb(jvp, self._shape)
        _lib.call(lib.sde_model_set_jvp, self._h, cb)
        self._jvp_keep = (cb, jvp)  # pinned while attached

    @property
    def has_jvp(self):
        return bool(lib.sde_model_has_jvp(self._h))

    def reserve(self, max_batch):
        _lib.call(lib.sde_model_reserve, self._h, int(max_batch))

    @property
    def process(self):
        """The model's own copy of its process (a view that keeps the model alive)."""
        return Process._make(lib.sde_model_process(self._h), owner=self)

    @property
    def dim(self):
        return lib.sde_model_dim(self._h)

    @property
    def shape(self):
        return self._shape

    @property
    def output_kind(self):
        return Output(lib.sde_model_output_kind(self._h))

    @property
    def time_input_kind(self):
        return TimeInput(lib.sde_model_time_input_kind(self._h))

    @property
    def num_calls(self):
        return lib.sde_model_num_calls(self._h)

    def time_labels(self, t):
        t = times(t, np.size(t))
        out = np.empty_like(t)
        _lib.call(lib.sde_model_time_labels, self._h, t, out, t.size)
        return out

    def score(self, t, x, out=None):
        x, b, d = state(x, self.dim)
        out = out_array(out, x.shape)
        _lib.call(lib.sde_model_score, self._h, times(t, b), x, out, b, d)
        return out

    def eval(self, t, x, raw=True, score=True, x0=True, eps=True):
        """One network call: ModelEval(raw, score, x0, eps); unrequested fields are None."""
        x, b, d = state(x, self.dim)
        outs = [np.empty_like(x) if want else None for want in (raw, score, x0, eps)]
        _lib.call(lib.sde_model_eval, self._h, times(t, b), x, *outs, b, d)
        return ModelEval(*outs)

    def score_jvp(self, t, x, v):
        x, b, d = state(x, self.dim)
        v, _, _ = state(v, d, name="v")
        out = np.empty_like(x)
        _lib.call(lib.sde_model_score_jvp, self._h, times(t, b), x, v, out, b, d)
        return out

    # classifier guidance / CFG wrappers (controllable.h)
    def set_labels(self, labels):
        """Class labels of a guidance wrapper (one per row, or one for all)."""
        _lib.require("controllable")
        labels = np.ascontiguousarray(np.atleast_1d(labels), dtype=np.int64)
        _lib.call(lib.sde_model_set_labels, self._h, labels, labels.size)
        self._labels_keep = labels

    def set_guidance_scale(self, scale):
        _lib.require("controllable")
        _lib.call(lib.sde_model_set_guidance_scale, self._h, float(scale))


# --------------------------------------------------------------------------------------------
# The Gaussian mixture


class Gmm(Handle):
    """p_0(x) = sum_k w_k N(x; mu_k, v_k I): exact perturbed score and log-density."""

    _free_name = "sde_gmm_free"

    def __init__(self, means, variances, weights):
        means = f64(means)
        if means.ndim != 2:
            raise ValueError(f"means must be (K, dim); got {means.shape}")
        K, dim = means.shape
        variances = f64(np.broadcast_to(np.asarray(variances, np.float64), (K,)))
        weights = f64(weights).reshape(-1)
        if weights.size != K:
            raise ValueError(f"weights has {weights.size} values; expected K = {K}")
        self._init_handle(_new(lib.sde_gmm_new, K, dim, means, variances, weights))

    @property
    def K(self):
        return lib.sde_gmm_num_components(self._h)

    num_components = K

    @property
    def dim(self):
        return lib.sde_gmm_dim(self._h)

    def eval_coeffs(self, a, s, x, score=True, logp=True):
        """(score, logp) of the mixture carried to mean coefficient a and std s (per sample)."""
        x, b, d = state(x, self.dim)
        sc = np.empty_like(x) if score else None
        lp = np.empty(b) if logp else None
        _lib.call(lib.sde_gmm_eval_coeffs, self._h, times(a, b, "a"), times(s, b, "s"), x, sc,
                  lp, b, d)
        return sc, lp

    def eval(self, process, t, x, score=True, logp=True):
        """(score, logp) at times t under a process."""
        x, b, d = state(x, self.dim)
        sc = np.empty_like(x) if score else None
        lp = np.empty(b) if logp else None
        _lib.call(lib.sde_gmm_eval, self._h, process._h, times(t, b), x, sc, lp, b, d)
        return sc, lp

    def score(self, process, t, x):
        return self.eval(process, t, x, logp=False)[0]

    def logp(self, process, t, x):
        return self.eval(process, t, x, score=False)[1]

    def responsibilities(self, a, s, x):
        x, b, d = state(x, self.dim)
        out = np.empty((b, self.K))
        _lib.call(lib.sde_gmm_responsibilities, self._h, times(a, b, "a"), times(s, b, "s"), x,
                  out, b, d)
        return out

    def sample(self, noise, batch, sample_offset=0):
        out = np.empty((batch, self.dim))
        _lib.call(lib.sde_gmm_sample, self._h, noise._h, out, batch, self.dim, sample_offset)
        return out

    def score_jvp(self, process, t, x, v):
        _lib.require("likelihood")
        x, b, d = state(x, self.dim)
        v, _, _ = state(v, d, name="v")
        out = np.empty_like(x)
        _lib.call(lib.sde_gmm_score_jvp, self._h, process._h, times(t, b), x, v, out, b, d)
        return out

    def score_divergence(self, process, t, x):
        _lib.require("likelihood")
        x, b, d = state(x, self.dim)
        out = np.empty(b)
        _lib.call(lib.sde_gmm_score_divergence, self._h, process._h, times(t, b), x, out, b, d)
        return out

    def model(self, process):
        """Model.from_gmm(process, self)."""
        return Model.from_gmm(process, self)
