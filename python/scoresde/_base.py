"""Handle lifetime, array helpers and option access shared by every wrapper class."""

import weakref
from ctypes import byref, c_double, c_int64, c_void_p

import numpy as np

from . import _lib
from ._lib import lib


def _free_ptr(free_fn, ptr):
    # Called by weakref.finalize: on close(), on garbage collection, or at interpreter exit
    # (finalize's atexit hook runs before modules are torn down).
    free_fn(c_void_p(ptr))


class Handle:
    """Base of every object that owns (or borrows) a C handle.

    * ``close()`` frees the C object (idempotent); any later use raises SdeClosedError.
    * ``with obj:`` closes on exit; garbage collection frees too (weakref.finalize).
    * Handles that another live handle borrows (a model used by a sampler, a mixture used by
      its model) are kept alive: closing them only forbids further use from Python, and the C
      object is freed once the borrowers are closed or collected.
    """

    _free_name = None  # name of the C free function; None for non-owning views

    def _init_handle(self, ptr, keep=(), owner=None):
        if not ptr:
            raise _lib.SdeError("SDE_E_NOMEM", "constructor returned NULL")
        self._ptr = ptr
        self._keep = list(keep)  # Python objects the C side borrows (callbacks, handles)
        self._users = weakref.WeakSet()  # live handles that borrow this one
        self._closed = False
        for k in self._keep:
            if isinstance(k, Handle):
                k._users.add(self)
        if owner is not None:  # a non-owning view (e.g. a sampler's solver): pin the owner
            self._keep.append(owner)
            if isinstance(owner, Handle):
                owner._users.add(self)
            self._finalizer = None
        else:
            free_fn = getattr(lib, self._free_name)
            self._finalizer = weakref.finalize(self, _free_ptr, free_fn, ptr)

    @property
    def _h(self):
        """The C pointer, for passing to the library; raises after close()."""
        if getattr(self, "_closed", True):
            raise _lib.SdeClosedError(type(self).__name__)
        return self._ptr

    @property
    def closed(self):
        return self._closed

    def close(self):
        """Free the C object now (or, if a live handle still borrows it, as soon as that one
        is closed or collected). Safe to call more than once."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._maybe_free()

    def _maybe_free(self):
        # Free once closed and no live handle borrows this one; then release what this one
        # borrowed (which may in turn be closed and waiting for us).
        if self._closed and not self._users:
            if self._finalizer is not None:
                self._finalizer()
            keep, self._keep = self._keep, []
            for k in keep:
                if isinstance(k, Handle):
                    k._users.discard(self)
                    k._maybe_free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self._closed else f"0x{self._ptr:x}"
        return f"<scoresde.{type(self).__name__} {state}>"


# --------------------------------------------------------------------------------------------
# Arrays


def f64(a):
    """A C-contiguous float64 array: `a` itself when it already is one (zero copy)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def state(x, dim=None, name="x"):
    """`x` as a C-contiguous float64 array of shape (batch, ...); returns (array, batch, dim).
    A 1-D array is one sample when `dim` is given and equals its length."""
    x = f64(x)
    if x.ndim == 1 and dim is not None and x.shape[0] == dim:
        x = x.reshape(1, dim)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (batch, dim) or (batch, ...); got {x.shape}")
    batch = x.shape[0]
    d = int(np.prod(x.shape[1:]))
    if dim is not None and d != dim:
        raise ValueError(f"{name} has {d} values per sample ({x.shape}); expected {dim}")
    return x, batch, d


def times(t, batch, name="t"):
    """Per-sample times: a scalar is broadcast to (batch,)."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 0:
        return np.full(batch, float(t))
    t = np.ascontiguousarray(t.reshape(-1))
    if t.shape[0] != batch:
        raise ValueError(f"{name} has {t.shape[0]} values; expected one per sample ({batch})")
    return t


def out_array(out, shape, name="out"):
    """Validate a caller-provided output array, or allocate one."""
    if out is None:
        return np.empty(shape, dtype=np.float64)
    if (not isinstance(out, np.ndarray) or out.dtype != np.float64
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise TypeError(f"{name} must be a writable C-contiguous float64 array")
    if out.size != int(np.prod(shape)):
        raise ValueError(f"{name} has shape {out.shape}; expected {tuple(shape)}")
    return out


def enum_value(enum_cls, v):
    """An IntEnum member from a member, an int or a case-insensitive name."""
    if isinstance(v, str):
        try:
            return enum_cls[v.upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(m.name.lower() for m in enum_cls)
            raise ValueError(f"unknown {enum_cls.__name__} {v!r}; one of {names}") from None
    return enum_cls(int(v))


def u64_out(fn, h):
    from ctypes import c_uint64
    v = c_uint64()
    _lib.call(fn, h, byref(v))
    return v.value


def f64_scalar_out(fn, *args):
    v = c_double()
    _lib.call(fn, *args, byref(v))
    return v.value


# --------------------------------------------------------------------------------------------
# Options


_OPTION_NUMBERS = None


def _option_table():
    """name -> number of every option the library knows (scanned once from sde_option_name)."""
    global _OPTION_NUMBERS
    if _OPTION_NUMBERS is None:
        table = {}
        n = lib.sde_option_next(0)
        while n != 0:
            table[lib.sde_option_name(n).decode()] = n
            n = lib.sde_option_next(n)
        _OPTION_NUMBERS = table
    return _OPTION_NUMBERS


def option_values(option):
    """{constant name: value} of an enumerated integer option (by name or number), e.g.
    {"SDE_CTRL_REPLACE": 0, "SDE_CTRL_SMC": 1} for "SDE_OPT_CTRL_METHOD"; {} for options that
    take plain numbers or flags."""
    n = option_number(option)
    lo, hi = c_double(), c_double()
    if lib.sde_option_bounds(n, byref(lo), byref(hi)) != 0:
        return {}
    values = {}
    if lib.sde_option_value_name(n, int(lo.value)) is not None:
        for v in range(int(lo.value), int(hi.value) + 1):
            name = lib.sde_option_value_name(n, v)
            if name is not None:
                values[name.decode()] = v
    return values


def _named_value(n, option, value):
    """The number of an enumerated option's value given as its constant's name, full
    ("SDE_DDIM_SPACING_QUADRATIC") or by its last words ("quadratic", "smc")."""
    values = option_values(n)
    if not values:
        raise TypeError(f"option {option!r} takes a number, got {value!r}")
    key = value.upper().replace("-", "_")
    hits = [v for name, v in values.items() if name == key or name.endswith("_" + key)]
    if len(hits) != 1:
        raise ValueError(f"unknown value {value!r} for option {option!r}; one of "
                         f"{', '.join(values)}")
    return hits[0]


def option_number(name):
    """The number of an option from its full name ("SDE_OPT_PC_SNR") or an int."""
    if not isinstance(name, str):
        return int(name)
    table = _option_table()
    key = name.upper()
    if key in table:
        return table[key]
    raise ValueError(f"unknown option {name!r}")


class Configurable:
    """Options by name or number: ``obj.set_option("snr", 0.2)``, ``obj.get_option(...)``,
    ``obj.options()``. A short name is looked up with each of the class's prefixes
    (``"snr"`` -> ``SDE_OPT_PC_SNR``); the option's type picks the int or real setter."""

    _opt_prefixes = ()
    _opt_fns = None  # (set_int, set_real, get_int, get_real) C function names; None if absent

    def _resolve_option(self, option):
        if not isinstance(option, str):
            return int(option)
        table = _option_table()
        key = option.upper()
        if key in table:
            return table[key]
        for prefix in self._opt_prefixes:
            if prefix + key in table:
                return table[prefix + key]
        raise ValueError(f"unknown option {option!r} for {type(self).__name__} (known: "
                         f"{', '.join(self.option_names())})")

    def option_names(self):
        return sorted(n for n in _option_table() if n.startswith(tuple(self._opt_prefixes)))

    def set_option(self, option, value):
        n = self._resolve_option(option)
        if isinstance(value, str):  # enumerated options by their constants' names
            value = _named_value(n, option, value)
        set_int, set_real = self._opt_fns[0], self._opt_fns[1]
        kind = lib.sde_option_type(n)
        if kind == 2 and set_real is not None:
            _lib.call(getattr(lib, set_real), self._h, n, float(value))
        else:  # integer options, and unknown numbers (the library reports the error)
            if isinstance(value, float) and not float(value).is_integer():
                raise TypeError(f"option {option!r} takes an integer, got {value!r}")
            _lib.call(getattr(lib, set_int), self._h, n, int(value))
        return self

    def get_option(self, option):
        n = self._resolve_option(option)
        get_int, get_real = self._opt_fns[2], self._opt_fns[3]
        if lib.sde_option_type(n) == 2 and get_real is not None:
            v = c_double()
            _lib.call(getattr(lib, get_real), self._h, n, byref(v))
            return v.value
        v = c_int64()
        _lib.call(getattr(lib, get_int), self._h, n, byref(v))
        return v.value

    def set_int(self, option, value):
        _lib.call(getattr(lib, self._opt_fns[0]), self._h, self._resolve_option(option),
                  int(value))

    def set_real(self, option, value):
        if self._opt_fns[1] is None:
            raise _lib.SdeInvalidError("SDE_E_INVALID", f"{type(self).__name__} has no real options")
        _lib.call(getattr(lib, self._opt_fns[1]), self._h, self._resolve_option(option),
                  float(value))

    def options(self):
        """A dict of every option of this object that the library reports a value for."""
        result = {}
        for name in self.option_names():
            try:
                result[name] = self.get_option(name)
            except _lib.SdeError:
                pass
        return result

    def _apply_options(self, options):
        for k, v in options.items():
            self.set_option(k, v)
