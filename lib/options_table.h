/* The table of every option: one row per option, grouped by area (see sde/options.h for the
 * number ranges). Each area adds its rows in its own section; numbers are never reused.
 * Row: X(ENUM_NAME, number, type, lo, hi). The enum constants themselves are declared in the
 * area's public header; lib/options.c checks at compile time that the numbers agree. */
#ifndef SDE_OPTIONS_TABLE_H
#define SDE_OPTIONS_TABLE_H

#define SDE__OPTIONS_PC(X)       /* predictor, corrector, PC sampler: 100-199, 1000-1099 */ \
    X(SDE_OPT_PC_REFERENCE, 100, SDE_OPTION_INT, 0, 1)                                        \
    X(SDE_OPT_PC_PROBABILITY_FLOW, 101, SDE_OPTION_INT, 0, 1)                                 \
    X(SDE_OPT_PC_CORRECTOR_STEPS, 102, SDE_OPTION_INT, 1, 1000000)                            \
    X(SDE_OPT_PC_STEPS, 103, SDE_OPTION_INT, 1, 1099511627776.0)                              \
    X(SDE_OPT_PC_DENOISE, 104, SDE_OPTION_INT, 0, 1)                                          \
    X(SDE_OPT_PC_THREADS, 105, SDE_OPTION_INT, 1, 256)                                        \
    X(SDE_OPT_PC_BATCH_NORMS, 106, SDE_OPTION_INT, 0, 1)                                      \
    X(SDE_OPT_PC_SNR, 1000, SDE_OPTION_REAL, 0, 1.7976931348623157e308)                       \
    X(SDE_OPT_PC_EPS, 1001, SDE_OPTION_REAL, 2.2250738585072014e-308, 1.7976931348623157e308)
#define SDE__OPTIONS_DISCRETE(X) /* DDPM/DDIM: 200-299, 1100-1199 */                          \
    X(SDE_OPT_DDIM_STEPS, 200, SDE_OPTION_INT, 1, 9007199254740992.0)                         \
    X(SDE_OPT_DDIM_SPACING, 201, SDE_OPTION_INT, 1, 3)                                        \
    X(SDE_OPT_DDIM_DENOISE, 202, SDE_OPTION_INT, 0, 1)                                        \
    X(SDE_OPT_DDIM_VARIANCE, 203, SDE_OPTION_INT, 1, 2)                                       \
    X(SDE_OPT_DDIM_ETA, 1100, SDE_OPTION_REAL, 0, 1)                                          \
    X(SDE_OPT_DDIM_CLIP_X0, 1101, SDE_OPTION_REAL, 0, 1.7976931348623157e308)
#define SDE__OPTIONS_ODE(X)      /* ODE solvers and sampler: 300-399, 1200-1299 */          \
    X(SDE_OPT_ODE_MAX_STEPS, 300, SDE_OPTION_INT, 1, 9007199254740992.0)                      \
    X(SDE_OPT_ODE_NUM_STEPS, 301, SDE_OPTION_INT, 1, 9007199254740992.0)                      \
    X(SDE_OPT_ODE_PER_SAMPLE, 302, SDE_OPTION_INT, 0, 1)                                      \
    X(SDE_OPT_ODE_DENSE_OUTPUT, 303, SDE_OPTION_INT, 0, 1)                                    \
    X(SDE_OPT_ODE_DENOISE, 310, SDE_OPTION_INT, 0, 1)                                         \
    X(SDE_OPT_ODE_REFERENCE_MODE, 311, SDE_OPTION_INT, 0, 1)                                  \
    X(SDE_OPT_ODE_RTOL, 1200, SDE_OPTION_REAL, 2.220446049250313e-14, 1)                      \
    X(SDE_OPT_ODE_ATOL, 1201, SDE_OPTION_REAL, 2.2250738585072014e-308,                       \
      1.7976931348623157e308)                                                                 \
    X(SDE_OPT_ODE_FIRST_STEP, 1202, SDE_OPTION_REAL, 0, 1.7976931348623157e308)               \
    X(SDE_OPT_ODE_MIN_STEP, 1203, SDE_OPTION_REAL, 0, 1.7976931348623157e308)                 \
    X(SDE_OPT_ODE_MAX_STEP, 1204, SDE_OPTION_REAL, 0, 1.7976931348623157e308)                 \
    X(SDE_OPT_ODE_EPS, 1210, SDE_OPTION_REAL, 2.2250738585072014e-308, 1.7976931348623157e308)
#define SDE__OPTIONS_LIK(X)      /* likelihood, encoding: 400-499, 1300-1399 */ \
    X(SDE_OPT_LIK_DIVERGENCE, 400, SDE_OPTION_INT, 1, 3)                                      \
    X(SDE_OPT_LIK_JVP, 401, SDE_OPTION_INT, 0, 2)                                             \
    X(SDE_OPT_LIK_PROBES, 402, SDE_OPTION_INT, 1, 65536)                                      \
    X(SDE_OPT_LIK_BITS, 403, SDE_OPTION_INT, 0, 32)                                           \
    X(SDE_OPT_LIK_DEQUANTIZE, 404, SDE_OPTION_INT, 0, 1)                                      \
    X(SDE_OPT_LIK_REFERENCE_MODE, 405, SDE_OPTION_INT, 0, 1)                                  \
    X(SDE_OPT_LIK_EPS, 1300, SDE_OPTION_REAL, 2.2250738585072014e-308, 1.7976931348623157e308) \
    X(SDE_OPT_LIK_DATA_SCALE, 1301, SDE_OPTION_REAL, 2.2250738585072014e-308,                 \
      1.7976931348623157e308)                                                                 \
    X(SDE_OPT_LIK_DATA_SHIFT, 1302, SDE_OPTION_REAL, -1.7976931348623157e308,                 \
      1.7976931348623157e308)                                                                 \
    X(SDE_OPT_LIK_FD_STEP, 1303, SDE_OPTION_REAL, 0, 1)
#define SDE__OPTIONS_LOSS(X)     /* losses: 500-599, 1400-1499 */                        \
    X(SDE_OPT_LOSS_REDUCE_MEAN, 500, SDE_OPTION_INT, 0, 1)                                    \
    X(SDE_OPT_LOSS_LIKELIHOOD_WEIGHTING, 501, SDE_OPTION_INT, 0, 1)                           \
    X(SDE_OPT_LOSS_IMPORTANCE, 502, SDE_OPTION_INT, 0, 1)                                     \
    X(SDE_OPT_LOSS_REFERENCE, 503, SDE_OPTION_INT, 0, 1)                                      \
    X(SDE_OPT_EMA_WARMUP, 520, SDE_OPTION_INT, 0, 1)                                          \
    X(SDE_OPT_EMA_NUM_UPDATES, 521, SDE_OPTION_INT, 0, 9223372036854775807.0)                 \
    X(SDE_OPT_LOSS_EPS, 1400, SDE_OPTION_REAL, 4.9406564584124654e-324, 1.7976931348623157e308)

#define SDE__OPTIONS_CTRL(X)     /* controllable generation (issue 6): 600-699, 1500-1599 */ \
    X(SDE_OPT_CTRL_REFERENCE, 600, SDE_OPTION_INT, 0, 1)                                      \
    X(SDE_OPT_CTRL_PROBABILITY_FLOW, 601, SDE_OPTION_INT, 0, 1)                               \
    X(SDE_OPT_CTRL_CORRECTOR_STEPS, 602, SDE_OPTION_INT, 1, 1000000)                          \
    X(SDE_OPT_CTRL_STEPS, 603, SDE_OPTION_INT, 1, 1099511627776.0)                            \
    X(SDE_OPT_CTRL_DENOISE, 604, SDE_OPTION_INT, 0, 1)                                        \
    X(SDE_OPT_CTRL_THREADS, 605, SDE_OPTION_INT, 1, 256)                                      \
    X(SDE_OPT_CTRL_KNOWN_FROM_NOISE, 606, SDE_OPTION_INT, 0, 1)                               \
    X(SDE_OPT_CTRL_BATCH_NORMS, 607, SDE_OPTION_INT, 0, 1)                                    \
    X(SDE_OPT_CTRL_METHOD, 608, SDE_OPTION_INT, 0, 1)                                         \
    X(SDE_OPT_CTRL_PARTICLES, 609, SDE_OPTION_INT, 0, 1099511627776.0)                        \
    X(SDE_OPT_CTRL_SNR, 1500, SDE_OPTION_REAL, 0, 1.7976931348623157e308)                     \
    X(SDE_OPT_CTRL_EPS, 1501, SDE_OPTION_REAL, 2.2250738585072014e-308,                       \
      1.7976931348623157e308)                                                                 \
    X(SDE_OPT_CTRL_LAMBDA, 1502, SDE_OPTION_REAL, 2.2250738585072014e-308, 1e6)               \
    X(SDE_OPT_CTRL_MEASUREMENT_STD, 1503, SDE_OPTION_REAL, 0, 1.7976931348623157e308)         \
    X(SDE_OPT_CTRL_ESS, 1504, SDE_OPTION_REAL, 0, 1)

/* The named values of enumerated integer options: X(OPTION, CONSTANT), the constant declared
 * with the option in its area's header. Options without rows take plain numbers or flags. */
#define SDE__OPTION_VALUES(X)                                                                 \
    X(SDE_OPT_DDIM_SPACING, SDE_DDIM_SPACING_UNIFORM)                                         \
    X(SDE_OPT_DDIM_SPACING, SDE_DDIM_SPACING_QUADRATIC)                                       \
    X(SDE_OPT_DDIM_SPACING, SDE_DDIM_SPACING_TRAILING)                                        \
    X(SDE_OPT_DDIM_VARIANCE, SDE_DDIM_VARIANCE_POSTERIOR)                                     \
    X(SDE_OPT_DDIM_VARIANCE, SDE_DDIM_VARIANCE_LARGE)                                         \
    X(SDE_OPT_LIK_DIVERGENCE, SDE_LIK_HUTCHINSON_GAUSSIAN)                                    \
    X(SDE_OPT_LIK_DIVERGENCE, SDE_LIK_HUTCHINSON_RADEMACHER)                                  \
    X(SDE_OPT_LIK_DIVERGENCE, SDE_LIK_EXACT_TRACE)                                            \
    X(SDE_OPT_LIK_JVP, SDE_LIK_JVP_AUTO)                                                      \
    X(SDE_OPT_LIK_JVP, SDE_LIK_JVP_HOST)                                                      \
    X(SDE_OPT_LIK_JVP, SDE_LIK_JVP_FINITE_DIFFERENCE)                                         \
    X(SDE_OPT_CTRL_METHOD, SDE_CTRL_REPLACE)                                                  \
    X(SDE_OPT_CTRL_METHOD, SDE_CTRL_SMC)

#define SDE__OPTIONS_ALL(X)                                                                   \
    SDE__OPTIONS_PC(X) SDE__OPTIONS_DISCRETE(X) SDE__OPTIONS_ODE(X) SDE__OPTIONS_LIK(X)       \
    SDE__OPTIONS_LOSS(X) SDE__OPTIONS_CTRL(X)

#endif
