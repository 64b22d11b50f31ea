"""Loading libscoresde, the table of its C signatures, errors and callback plumbing.

Everything here is private; the public names are re-exported from ``scoresde``.
"""

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (CFUNCTYPE, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint64,
                    c_void_p)

import numpy as np

#: The major version of the C library this package was written for. The SONAME carries the
#: same number (libscoresde.so.0).
EXPECTED_MAJOR = 0
#: The oldest library release (MAJOR*10000 + MINOR*100 + PATCH) this package accepts.
MINIMUM_VERSION = 100
SONAME = "libscoresde.so.0"
ENV_LIBRARY = "SCORESDE_LIBRARY"


# --------------------------------------------------------------------------------------------
# Errors


class SdeError(Exception):
    """A libscoresde call failed. ``status`` is the C status code, ``status_name`` its name
    (``"SDE_E_INVALID"``...), ``message`` the library's detailed, thread-local message."""

    def __init__(self, status_name, message, status=None):
        self.status = status
        self.status_name = status_name
        self.message = message
        super().__init__(f"{status_name}: {message}" if message else status_name)


class SdeNoMemError(SdeError, MemoryError):
    """SDE_E_NOMEM: an allocation failed."""


class SdeInvalidError(SdeError, ValueError):
    """SDE_E_INVALID: an argument is invalid (NULL, out of range, NaN, wrong option...)."""


class SdeDimError(SdeError, ValueError):
    """SDE_E_DIM: array shapes disagree."""


class SdeStateError(SdeError):
    """SDE_E_STATE: wrong call order, or re-entrant use of a busy handle."""


class SdeCallbackError(SdeError):
    """SDE_E_CALLBACK: a host callback returned a failure status."""


class SdeNumericError(SdeError, ArithmeticError):
    """SDE_E_NUMERIC: a NaN or infinity appeared where a finite value is needed."""


class SdeNotConvergedError(SdeError):
    """SDE_E_NOT_CONVERGED: a solver hit its step limit or minimum step size."""


class SdeUnsupportedError(SdeError, NotImplementedError):
    """SDE_E_UNSUPPORTED: the operation is not defined for this process or mode, or the
    loaded library lacks the function."""


class SdeAborted(SdeError):
    """SDE_ABORTED (not an error in C): a progress callback asked to stop. The outputs were
    not written."""


class SdeClosedError(SdeError, ValueError):
    """A handle was used after close()."""

    def __init__(self, what):
        super().__init__("CLOSED", f"{what} is closed")


_STATUS_CLASSES = {
    1: SdeAborted,
    -1: SdeNoMemError,
    -2: SdeInvalidError,
    -3: SdeDimError,
    -4: SdeStateError,
    -5: SdeCallbackError,
    -6: SdeNumericError,
    -7: SdeNotConvergedError,
    -8: SdeUnsupportedError,
}


# --------------------------------------------------------------------------------------------
# Loading


class LibraryNotFoundError(ImportError):
    pass


def _load():
    path = os.environ.get(ENV_LIBRARY)
    if path:
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            raise LibraryNotFoundError(f"{ENV_LIBRARY}={path!r} cannot be loaded: {e}") from e
    errors = []
    for name in (SONAME, ctypes.util.find_library("scoresde")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append(f"{name}: {e}")
    raise LibraryNotFoundError(
        f"libscoresde not found (tried {SONAME} through the dynamic loader and "
        f"ctypes.util.find_library('scoresde')); install it (meson install) or set "
        f"{ENV_LIBRARY} to the path of libscoresde.so.0. " + "; ".join(errors))


lib, library_path = _load()


# --------------------------------------------------------------------------------------------
# Array parameters: argtypes that accept a numpy array of the right dtype (C-contiguous) or None
# for NULL, and refuse anything else instead of passing a bad pointer to C.


class _ArrayParam:
    def __init__(self, dtype, writable):
        self.dtype = np.dtype(dtype)
        self.writable = writable

    def from_param(self, obj):
        if obj is None:
            return None
        if not isinstance(obj, np.ndarray):
            raise TypeError(f"expected a numpy array of {self.dtype}, got {type(obj).__name__}")
        if obj.dtype != self.dtype:
            raise TypeError(f"expected dtype {self.dtype}, got {obj.dtype}")
        if not obj.flags.c_contiguous:
            raise TypeError("expected a C-contiguous array")
        if self.writable and not obj.flags.writeable:
            raise TypeError("output array is read-only")
        return c_void_p(obj.ctypes.data)


f64_in = _ArrayParam(np.float64, False)
f64_out = _ArrayParam(np.float64, True)
i64_in = _ArrayParam(np.int64, False)
i64_out = _ArrayParam(np.int64, True)
u32_in = _ArrayParam(np.uint32, False)
u32_out = _ArrayParam(np.uint32, True)
size_in = _ArrayParam(np.uintp, False)

H = c_void_p  # every opaque handle (sde_process *, sde_model *, ...)
HP = ctypes.POINTER(c_void_p)  # sde_X **out
D = c_double
DP = ctypes.POINTER(c_double)
I = c_int
I64 = c_int64
I64P = ctypes.POINTER(c_int64)
U64 = c_uint64
U64P = ctypes.POINTER(c_uint64)
SZ = c_size_t
S = c_char_p

# Callback types. Pointers arrive as integers (c_void_p) and are wrapped as numpy views.
NET_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_size_t, c_size_t, c_void_p)
JVP_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_size_t, c_void_p)
DRIFT_FN = NET_FN
DIFFUSION_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, c_void_p)
MARGINAL_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p)
NOISE_FN = CFUNCTYPE(c_int, c_int, c_double, c_void_p, c_size_t, c_size_t, c_size_t, c_uint64,
                     c_void_p)
ODE_RHS_FN = NET_FN
PROGRESS_FN = CFUNCTYPE(c_int, c_size_t, c_double, c_void_p)
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
LINEAR_OP_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, c_size_t, c_size_t, c_void_p)
ODE_PROJECTION_FN = CFUNCTYPE(c_int, c_double, c_void_p, c_size_t, c_size_t, c_void_p)
CLASSIFIER_GRAD_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_size_t,
                               c_void_p)
CFG_NET_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_size_t,
                       c_void_p)

# --------------------------------------------------------------------------------------------
# The table: name -> (restype, argtypes). Groups other than "core" are feature-detected.

_GET_INT = (I, [H, I, I64P])
_GET_REAL = (I, [H, I, DP])
_SET_INT = (I, [H, I, I64])
_SET_REAL = (I, [H, I, D])
_FREE = (None, [H])

SIGNATURES = {
    "core": {
        # common.h
        "sde_status_name": (S, [I]),
        "sde_status_string": (S, [I]),
        "sde_last_error": (S, []),
        "sde_clear_error": (None, []),
        "sde_set_error_message": (None, [S]),
        "sde_log_set": (None, [LOG_FN, c_void_p]),
        "sde_version_number": (I, []),
        "sde_version_string": (S, []),
        # rng.h
        "sde_noise_new_philox": (I, [HP, U64]),
        "sde_noise_new_callback": (I, [HP, NOISE_FN, c_void_p]),
        "sde_noise_free": _FREE,
        "sde_noise_draw": (I, [H, I, D, f64_out, SZ, SZ, SZ]),
        "sde_noise_normal": (I, [H, f64_out, SZ, SZ, SZ]),
        "sde_noise_uniform": (I, [H, f64_out, SZ, SZ, SZ]),
        "sde_noise_rademacher": (I, [H, f64_out, SZ, SZ, SZ]),
        "sde_noise_counter": (U64, [H]),
        "sde_noise_set_counter": (I, [H, U64]),
        "sde_noise_seed": (U64, [H]),
        "sde_philox4x32_10": (I, [u32_in, u32_in, u32_out]),
        # process.h
        "sde_process_new_vp": (I, [HP, D, D, D, I64]),
        "sde_process_new_subvp": (I, [HP, D, D, D, I64]),
        "sde_process_new_ve": (I, [HP, D, D, D, I64]),
        "sde_process_new_custom": (I, [HP, D, I64, D, DRIFT_FN, DIFFUSION_FN, MARGINAL_FN,
                                       c_void_p]),
        "sde_process_free": _FREE,
        "sde_process_kind": (I, [H]),
        "sde_process_t_end": (D, [H]),
        "sde_process_num_steps": (I64, [H]),
        "sde_process_param": (I, [H, S, DP]),
        "sde_process_has_tables": (I, [H]),
        "sde_process_drift": (I, [H, f64_in, f64_in, f64_out, SZ, SZ]),
        "sde_process_diffusion": (I, [H, f64_in, f64_out, SZ]),
        "sde_process_marginal": (I, [H, f64_in, f64_out, f64_out, SZ]),
        "sde_process_marginal_std_from_data": (I, [H, f64_in, f64_out, SZ]),
        "sde_process_perturb": (I, [H, f64_in, f64_in, f64_in, f64_out, SZ, SZ]),
        "sde_process_prior_std": (D, [H]),
        "sde_process_prior_sample": (I, [H, H, f64_out, SZ, SZ, SZ]),
        "sde_process_prior_logp": (I, [H, f64_in, f64_out, SZ, SZ]),
        "sde_process_table": (I, [H, I, f64_out, SZ]),
        "sde_process_discrete_index": (I, [H, f64_in, i64_out, SZ]),
        "sde_process_discretize": (I, [H, f64_in, f64_in, f64_out, f64_out, SZ, SZ]),
        "sde_process_reverse": (I, [H, f64_in, f64_in, f64_in, I, f64_out, f64_out, SZ, SZ]),
        "sde_process_reverse_discretize": (I, [H, f64_in, f64_in, f64_in, I, f64_out, f64_out,
                                               SZ, SZ]),
        # model.h
        "sde_model_new": (I, [HP, H, SZ, NET_FN, c_void_p, I, I]),
        "sde_model_free": _FREE,
        "sde_model_set_jvp": (I, [H, JVP_FN]),
        "sde_model_has_jvp": (I, [H]),
        "sde_model_reserve": (I, [H, SZ]),
        "sde_model_process": (H, [H]),
        "sde_model_dim": (SZ, [H]),
        "sde_model_output_kind": (I, [H]),
        "sde_model_time_input_kind": (I, [H]),
        "sde_model_num_calls": (U64, [H]),
        "sde_model_time_labels": (I, [H, f64_in, f64_out, SZ]),
        "sde_model_score": (I, [H, f64_in, f64_in, f64_out, SZ, SZ]),
        "sde_model_eval": (I, [H, f64_in, f64_in, f64_out, f64_out, f64_out, f64_out, SZ, SZ]),
        "sde_model_score_jvp": (I, [H, f64_in, f64_in, f64_in, f64_out, SZ, SZ]),
        # gmm.h
        "sde_gmm_new": (I, [HP, SZ, SZ, f64_in, f64_in, f64_in]),
        "sde_gmm_free": _FREE,
        "sde_gmm_num_components": (SZ, [H]),
        "sde_gmm_dim": (SZ, [H]),
        "sde_gmm_eval_coeffs": (I, [H, f64_in, f64_in, f64_in, f64_out, f64_out, SZ, SZ]),
        "sde_gmm_eval": (I, [H, H, f64_in, f64_in, f64_out, f64_out, SZ, SZ]),
        "sde_gmm_responsibilities": (I, [H, f64_in, f64_in, f64_in, f64_out, SZ, SZ]),
        "sde_gmm_sample": (I, [H, H, f64_out, SZ, SZ, SZ]),
        "sde_model_new_gmm": (I, [HP, H, H]),
        # options.h
        "sde_option_name": (S, [I]),
        "sde_option_type": (I, [I]),
        "sde_option_bounds": (I, [I, DP, DP]),
        "sde_option_next": (I, [I]),
        "sde_option_value_name": (S, [I, c_int64]),
    },
    "ddim": {
        "sde_ddim_new": (I, [HP, H, SZ, SZ]),
        "sde_ddim_free": _FREE,
        "sde_ddim_set_int": _SET_INT,
        "sde_ddim_set_real": _SET_REAL,
        "sde_ddim_get_int": _GET_INT,
        "sde_ddim_get_real": _GET_REAL,
        "sde_ddim_num_timesteps": (SZ, [H]),
        "sde_ddim_timesteps": (I, [H, i64_out, SZ]),
        "sde_ddim_index_time": (I, [H, I64, DP, DP]),
        "sde_ddim_step": (I, [H, I64, I64, D, f64_in, f64_in, f64_out, f64_out, SZ, SZ]),
        "sde_ddim_run": (I, [H, H, f64_in, f64_out, SZ, SZ, SZ, PROGRESS_FN, c_void_p]),
        "sde_ddim_get_nfe": (I, [H, U64P]),
    },
    "ode": {
        "sde_ode_method_name": (S, [I]),
        "sde_ode_method_order": (I, [I]),
        "sde_ode_method_is_adaptive": (I, [I]),
        "sde_ode_method_num_buffers": (I, [I]),
        "sde_ode_solver_new": (I, [HP, I, SZ, SZ]),
        "sde_ode_solver_free": _FREE,
        "sde_ode_solver_method": (I, [H]),
        "sde_ode_solver_max_batch": (SZ, [H]),
        "sde_ode_solver_dim": (SZ, [H]),
        "sde_ode_solver_set_int": _SET_INT,
        "sde_ode_solver_set_real": _SET_REAL,
        "sde_ode_solver_get_int": _GET_INT,
        "sde_ode_solver_get_real": _GET_REAL,
        "sde_ode_solver_integrate": (I, [H, ODE_RHS_FN, c_void_p, D, D, f64_out, SZ, SZ]),
        "sde_ode_solver_integrate_times": (I, [H, ODE_RHS_FN, c_void_p, D, D, f64_out, SZ,
                                               f64_in, f64_out, SZ, SZ]),
        "sde_ode_solver_get_nfe": (I, [H, U64P]),
        "sde_ode_solver_get_accepted_steps": (I, [H, U64P]),
        "sde_ode_solver_get_rejected_steps": (I, [H, U64P]),
        "sde_ode_solver_get_t_reached": (I, [H, DP]),
        "sde_ode_solver_get_sample_stats": (I, [H, SZ, U64P, U64P, DP]),
        "sde_ode_sampler_new": (I, [HP, H, I, SZ]),
        "sde_ode_sampler_free": _FREE,
        "sde_ode_sampler_set_int": _SET_INT,
        "sde_ode_sampler_set_real": _SET_REAL,
        "sde_ode_sampler_get_int": _GET_INT,
        "sde_ode_sampler_get_real": _GET_REAL,
        "sde_ode_sampler_sample": (I, [H, H, f64_out, SZ, SZ, SZ]),
        "sde_ode_sampler_decode": (I, [H, H, f64_in, f64_out, SZ, SZ, SZ]),
        "sde_ode_sampler_encode": (I, [H, f64_in, f64_out, SZ, SZ]),
        "sde_ode_sampler_get_nfe": (I, [H, U64P]),
        "sde_ode_sampler_solver": (H, [H]),
        "sde_ode_sampler_set_projection": (I, [H, ODE_PROJECTION_FN, c_void_p, SZ]),
    },
    "loss": {
        "sde_loss_new": (I, [HP, H, I, I, I, SZ, SZ]),
        "sde_loss_free": _FREE,
        "sde_loss_set_int": _SET_INT,
        "sde_loss_set_real": _SET_REAL,
        "sde_loss_get_int": _GET_INT,
        "sde_loss_get_real": _GET_REAL,
        "sde_loss_kind": (I, [H]),
        "sde_loss_kind_name": (S, [I]),
        "sde_loss_dim": (SZ, [H]),
        "sde_loss_max_batch": (SZ, [H]),
        "sde_loss_prepare": (I, [H, H, f64_in, SZ, SZ, SZ, f64_out, f64_out]),
        "sde_loss_evaluate": (I, [H, f64_in, SZ, SZ, DP, f64_out, f64_out]),
        "sde_loss_get_prepared": (I, [H, I, f64_out, SZ]),
        "sde_loss_reset": (I, [H]),
        "sde_ema_new": (I, [HP, f64_in, SZ, D]),
        "sde_ema_free": _FREE,
        "sde_ema_update": (I, [H, f64_in, SZ]),
        "sde_ema_copy_to": (I, [H, f64_out, SZ]),
        "sde_ema_reset": (I, [H, f64_in, SZ]),
        "sde_ema_store": (I, [H, f64_in, SZ]),
        "sde_ema_restore": (I, [H, f64_out, SZ]),
        "sde_ema_set_int": _SET_INT,
        "sde_ema_get_int": _GET_INT,
        "sde_ema_decay": (D, [H]),
        "sde_ema_size": (SZ, [H]),
    },
    "sampler": {
        "sde_predictor_new": (I, [HP, H, I, SZ, SZ]),
        "sde_predictor_free": _FREE,
        "sde_predictor_kind": (I, [H]),
        "sde_predictor_kind_name": (S, [I]),
        "sde_predictor_kind_from_name": (I, [S]),
        "sde_predictor_set_int": _SET_INT,
        "sde_predictor_set_real": _SET_REAL,
        "sde_predictor_get_int": _GET_INT,
        "sde_predictor_get_real": _GET_REAL,
        "sde_predictor_workspace_bytes": (SZ, [H]),
        "sde_predictor_step": (I, [H, H, H, f64_in, D, f64_out, f64_out, SZ, SZ, SZ]),
        "sde_corrector_new": (I, [HP, H, I, SZ, SZ]),
        "sde_corrector_free": _FREE,
        "sde_corrector_kind": (I, [H]),
        "sde_corrector_kind_name": (S, [I]),
        "sde_corrector_kind_from_name": (I, [S]),
        "sde_corrector_set_int": _SET_INT,
        "sde_corrector_set_real": _SET_REAL,
        "sde_corrector_get_int": _GET_INT,
        "sde_corrector_get_real": _GET_REAL,
        "sde_corrector_workspace_bytes": (SZ, [H]),
        "sde_corrector_alpha": (I, [H, f64_in, f64_out, SZ]),
        "sde_corrector_step": (I, [H, H, H, f64_in, f64_out, f64_out, SZ, SZ, SZ]),
        "sde_corrector_last_step_sizes": (I, [H, f64_out, SZ]),
        "sde_sampler_new": (I, [HP, H, I, I, SZ, SZ]),
        "sde_sampler_free": _FREE,
        "sde_sampler_set_int": _SET_INT,
        "sde_sampler_set_real": _SET_REAL,
        "sde_sampler_get_int": _GET_INT,
        "sde_sampler_get_real": _GET_REAL,
        "sde_sampler_workspace_bytes": (SZ, [H]),
        "sde_sampler_set_time_grid": (I, [H, f64_in, SZ]),
        "sde_sampler_get_time_grid": (I, [H, f64_out, SZ]),
        "sde_sampler_set_progress": (I, [H, PROGRESS_FN, c_void_p]),
        "sde_sampler_set_trajectory": (I, [H, size_in, SZ, f64_out, SZ]),
        "sde_sampler_run": (I, [H, H, H, f64_in, f64_out, SZ, SZ, SZ]),
        "sde_sampler_get_nfe": (I, [H, U64P]),
        "sde_sampler_get_model_calls": (I, [H, U64P]),
    },
    "likelihood": {
        "sde_likelihood_new": (I, [HP, H, I, SZ]),
        "sde_likelihood_free": _FREE,
        "sde_likelihood_set_int": _SET_INT,
        "sde_likelihood_set_real": _SET_REAL,
        "sde_likelihood_get_int": _GET_INT,
        "sde_likelihood_get_real": _GET_REAL,
        "sde_likelihood_bpd_offset": (I, [H, DP]),
        "sde_likelihood_compute": (I, [H, H, f64_in, SZ, SZ, SZ, f64_out, f64_out, f64_out,
                                       f64_out, f64_out]),
        "sde_likelihood_get_nfe": (I, [H, U64P]),
        "sde_likelihood_get_calls": (I, [H, U64P, U64P]),
        "sde_likelihood_solver": (H, [H]),
        "sde_gmm_score_jvp": (I, [H, H, f64_in, f64_in, f64_in, f64_out, SZ, SZ]),
        "sde_gmm_score_divergence": (I, [H, H, f64_in, f64_in, f64_out, SZ, SZ]),
    },
    "controllable": {
        "sde_inverse_new": (I, [HP, H, I, I, SZ, SZ]),
        "sde_inverse_free": _FREE,
        "sde_inverse_set_int": _SET_INT,
        "sde_inverse_set_real": _SET_REAL,
        "sde_inverse_get_int": _GET_INT,
        "sde_inverse_get_real": _GET_REAL,
        "sde_inverse_set_progress": (I, [H, PROGRESS_FN, c_void_p]),
        "sde_inverse_workspace_bytes": (SZ, [H]),
        "sde_inverse_get_model_calls": (I, [H, U64P]),
        "sde_inverse_inpaint": (I, [H, H, H, f64_in, f64_in, SZ, f64_out, SZ, SZ, SZ]),
        "sde_inverse_colorize": (I, [H, H, H, f64_in, f64_in, f64_in, f64_out, SZ, SZ, SZ,
                                     SZ]),
        "sde_inverse_set_operator": (I, [H, LINEAR_OP_FN, LINEAR_OP_FN, SZ, c_void_p]),
        "sde_inverse_solve": (I, [H, H, H, f64_in, SZ, f64_out, SZ, SZ, SZ]),
        "sde_colorize_matrices": (I, [f64_out, f64_out]),
        "sde_model_new_guided": (I, [HP, H, CLASSIFIER_GRAD_FN, c_void_p, D]),
        "sde_model_new_cfg": (I, [HP, H, SZ, CFG_NET_FN, c_void_p, I, I, D]),
        "sde_model_set_labels": (I, [H, i64_in, SZ]),
        "sde_model_set_guidance_scale": (I, [H, D]),
    },
}

#: Feature groups present in the loaded library ("core" always is).
FEATURES = set()


def _register():
    missing_core = []
    for group, table in SIGNATURES.items():
        present = all(hasattr(lib, name) for name in table)
        if group == "core" and not present:
            missing_core = [n for n in table if not hasattr(lib, n)]
            continue
        if not present:
            continue
        FEATURES.add(group)
        for name, (restype, argtypes) in table.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
    if missing_core:
        raise ImportError(f"{library_path} lacks required functions: {', '.join(missing_core)}")


_register()


def require(group):
    if group not in FEATURES:
        raise SdeUnsupportedError(
            "SDE_E_UNSUPPORTED",
            f"the loaded libscoresde ({library_path}) does not provide the '{group}' functions")


def _check_version():
    number = lib.sde_version_number()
    major = number // 10000
    if major != EXPECTED_MAJOR:
        raise ImportError(
            f"{library_path} is libscoresde {lib.sde_version_string().decode()} (major {major}); "
            f"this package needs major {EXPECTED_MAJOR}")
    if number < MINIMUM_VERSION:
        raise ImportError(
            f"{library_path} is libscoresde {lib.sde_version_string().decode()}; this package "
            f"needs at least {MINIMUM_VERSION // 10000}.{MINIMUM_VERSION // 100 % 100}."
            f"{MINIMUM_VERSION % 100}")


_check_version()


# --------------------------------------------------------------------------------------------
# Status checks and exceptions raised inside callbacks

_tls = threading.local()


def _pending():
    p = getattr(_tls, "pending", None)
    if p is None:
        p = _tls.pending = []
    return p


def stash(exc):
    """Keep an exception raised inside a callback for re-raising after the C call returns."""
    _pending().append(exc)


def error_for(rc):
    """The SdeError for status `rc`, with the calling thread's last-error message."""
    name = lib.sde_status_name(rc).decode()
    message = lib.sde_last_error().decode("utf-8", "replace")
    return _STATUS_CLASSES.get(rc, SdeError)(name, message, rc)


def check(rc):
    """Raise for a failing status; re-raise an exception a callback raised during the call.

    The exception from the callback keeps its type and traceback; the library's error (usually
    SdeCallbackError) is its ``__cause__``, and its status is also set as
    ``exc.sde_status_name``.
    """
    err = error_for(rc) if rc != 0 else None
    p = _pending()
    if p:
        exc = p[0]
        del p[:]
        if err is not None:
            try:
                exc.sde_status_name = err.status_name
            except AttributeError:
                pass
            raise exc from err
        raise exc
    if err is not None:
        raise err
    return rc


def call(fn, *args):
    """Call a status-returning C function and check its status."""
    return check(fn(*args))


def guard(fn, fail=-1):
    """Wrap a Python callback so that an exception becomes `fail` (returned to C) and is
    stashed for re-raising after the C call returns. Its text becomes the library's message."""

    def wrapper(*args):
        try:
            r = fn(*args)
            return 0 if r is None else int(r)
        except BaseException as e:  # noqa: BLE001 - re-raised after the C call
            stash(e)
            try:
                lib.sde_set_error_message(f"{type(e).__name__}: {e}".encode("utf-8", "replace"))
            except Exception:  # pragma: no cover
                pass
            return fail

    wrapper.__wrapped__ = fn
    return wrapper


def view(addr, shape, dtype=np.float64, writable=True):
    """A numpy view of C memory at `addr` (no copy; valid only while C says so)."""
    dtype = np.dtype(dtype)
    n = 1
    for s in shape:
        n *= s
    if not addr or n == 0:
        return np.zeros(shape, dtype)
    buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(addr)
    a = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if not writable:
        a.flags.writeable = False
    return a


def cstr(p):
    return None if p is None else p.decode("utf-8", "replace")


def is_finalizing():
    return sys.is_finalizing()
