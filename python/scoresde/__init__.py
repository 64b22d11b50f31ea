"""scoresde: Python binding of libscoresde (score-based generative modelling through SDEs).

Pure Python (ctypes + numpy). The C library is loaded by its SONAME ``libscoresde.so.0``, or
from the path in the environment variable ``SCORESDE_LIBRARY``; its major version must match
``EXPECTED_MAJOR``. See docs/python.md.
"""

from ._lib import (EXPECTED_MAJOR, FEATURES, SdeAborted, SdeCallbackError, SdeClosedError,
                   SdeDimError, SdeError, SdeInvalidError, SdeNoMemError, SdeNotConvergedError,
                   SdeNumericError, SdeStateError, SdeUnsupportedError, library_path)
from .core import (Gmm, Model, ModelEval, Noise, Process, clear_error, has_feature,
                   last_error, option_bounds, option_name, option_type, option_values, options,
                   philox4x32_10,
                   set_error_message, set_log, status_name, status_string, version,
                   version_number)
from .enums import (LABEL_NONE, CorrectorKind, DdimSpacing, DdimVariance, Divergence, JvpMode,
                    LogLevel, LossKind, LossQuantity, NoiseKind, OdeMethod, OptionType, Output,
                    PredictorKind, ProcessKind, Status, Table, TimeInput)
from .samplers import (Corrector, Ddim, Inverse, Likelihood, LikelihoodResult, OdeSampler,
                       OdeSolver, Predictor, SampleStats, Sampler, cfg_model, colorize_matrices,
                       corrector_kind_from_name, corrector_kind_name, guided_model,
                       ode_method_is_adaptive, ode_method_name, ode_method_num_buffers,
                       ode_method_order, predictor_kind_from_name, predictor_kind_name)
from .training import Ema, Loss, LossResult, loss_kind_name

__version__ = "0.1.0"
