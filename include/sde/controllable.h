/**
 * @file controllable.h
 * @brief Controllable generation with one unconditional score model (Song et al. 2021,
 *        section 5 and appendix I): inpainting, colorization and general linear inverse
 *        problems by projection (::sde_inverse), classifier guidance and classifier-free
 *        guidance as model wrappers (sde_model_new_guided(), sde_model_new_cfg()).
 *
 * **Projection sampler** (::sde_inverse). A predictor–corrector driver written against the
 * public steppers of sampler.h (one ::sde_predictor, one ::sde_corrector): on the grid
 * `t_0 = T > t_1 > ... > t_{N-1} = eps` (`linspace(T, eps, N)`, then `t_N = 0`), every step
 * runs the corrector at `t_k`, *projects*, runs the predictor at `t_k`, *projects*. A
 * projection replaces the known part of the state by the observation perturbed to the
 * current noise level, `a(t_k) y + s(t_k) z` (a, s from sde_process_marginal(), `z` one
 * whole-batch ::SDE_NOISE_NORMAL draw of the state's shape):
 * - **inpainting** (sde_inverse_inpaint()): `x <- x (1 - m) + (a d + s z) m` with a binary
 *   mask `m` (1 = known) and the data `d`, both `[batch][dim]` (a mask may also be one row
 *   shared by the batch);
 * - **colorization** (sde_inverse_colorize()): the same in the decoupled colour space of the
 *   reference's orthogonal 3x3 channel transform `M` (sde_colorize_matrices()):
 *   `decouple(v)_j = sum_i v_i M[i][j]` per pixel, `couple` the same with `invM`; the known
 *   part is decoupled channel 0 (luminance), taken from a gray image;
 * - **linear inverse problems** (sde_inverse_solve()): measurements `y = A x0 (+ noise)`
 *   through host operator callbacks `A` and `A^T` (sde_inverse_set_operator()):
 *   `x <- x + lambda_t A^T (a y + s A z - A x)`, the exact projection onto `{A x = y_t}`
 *   when A has orthonormal rows (masks, subsampled orthogonal transforms) and `lambda = 1`,
 *   a consistency (Landweber) step otherwise (choose `lambda <= 1/|A|^2`). With a
 *   measurement noise std `sigma_y > 0`, `lambda_t = lambda s^2 / (s^2 + a^2 sigma_y^2)`.
 *
 * The draw order is the reference's (R30): prior (one draw), then per grid step the
 * corrector's `n_steps` draws, one projection draw, the predictor's one draw, one projection
 * draw. It holds in both modes (it is a convention, not a defect).
 *
 * **Reference-compatible mode** (::SDE_OPT_CTRL_REFERENCE = 1) reproduces
 * score_sde_pytorch's `get_pc_inpainter` / `get_pc_colorizer` exactly (and puts the steppers
 * in their reference mode, sampler.h). The defaults fix:
 * - R28: the reference's denoised output takes the unknown part from the *noisy* projected
 *   state; the default takes it from the last predictor's mean, and the known part is the
 *   observation itself (`d`, resp. the gray image's luminance; for linear problems the
 *   mean is projected with `a = 1, s = 0`);
 * - R31: the colorizer's initial state masks the prior in pixel space before decoupling
 *   (leaking chrominance noise into the luminance channel); the default masks in the
 *   decoupled space.
 * The known part starts noise-free (the observation) as in the reference; with
 * ::SDE_OPT_CTRL_KNOWN_FROM_NOISE the whole initial state is the prior sample.
 *
 * **Methods** (::SDE_OPT_CTRL_METHOD).
 * - ::SDE_CTRL_REPLACE (default; the only one in reference mode): the projections above. It
 *   does NOT sample the exact conditional `p(x_u | y)`: the known part is re-noised
 *   independently at every level, so at the levels where a sample commits to a mode of the
 *   unknown part the known part carries little information about `y`. Measured on a
 *   two-component 3-D mixture with one known coordinate (tests/test_controllable.c): weight
 *   0.51 on the component whose exact conditional weight is 0.80 (prior 0.40), unchanged by
 *   more corrector steps. Within a mode the filled-in values are right.
 * - ::SDE_CTRL_SMC: twisted sequential Monte Carlo (after Wu et al. 2023, "Practical and
 *   asymptotically exact conditional sampling in diffusion models", without the gradient
 *   term). The chain is the unconditional predictor–corrector chain (no projections); each
 *   row is a particle with a log-weight; after every predictor step to `t_{k+1} >= eps` the
 *   twisting `log p~(y | x) = -|K(x0hat(x)) - y|^2 / (2 (s^2/a^2 + sigma_y^2))` is evaluated
 *   (`x0hat` the model's Tweedie denoiser, sde_model_eval(); `K` the known part: the masked
 *   entries, the luminance, or `A`), the weight multiplied by its ratio to the previous
 *   one, and a group whose effective sample size is below ::SDE_OPT_CTRL_ESS x G is
 *   resampled (systematic, one uniform per group and step). Before the last step (eps -> 0)
 *   every group is resampled, so the output rows are equally weighted; the known part of
 *   the output is then the observation (inpainting, colorization; linear problems as in the
 *   replacement method). **Exactness**: the rows of a group target the unconditional chain
 *   conditioned on `K(x0hat(x_eps)) = y` within `s(eps)/a(eps)`, which tends to `p(x_u | y)`
 *   as the particles per group G -> infinity (bias O(1/G)), the chain's steps -> infinity
 *   (the same discretization error as unconditional sampling) and eps -> 0; the corrector,
 *   if any, is treated as a move that keeps each level's target (exact only as its step ->
 *   0; corrector NONE is the clean case). Measured (same mixture, 100 x 200 rows): weight
 *   0.80 within 0.01. **Cost**: one more model call per grid step (the twisting; 2 per step
 *   with corrector NONE, plus one at T), one uniform draw per row and step, and rows of a
 *   group are *dependent* (resampled copies): average statistics over groups. The weights
 *   degenerate when K has many entries that are individually informative (the effective
 *   sample size falls to ~1 at every step; then the output approaches the replacement
 *   method's quality at best): use large G.
 *
 * **Shapes, units, ownership.** States are row-major `[batch][dim]` doubles; colour images
 * are channel-major `[batch][3*pixels]` (channel c of pixel p at `c*pixels + p`). The caller
 * owns every array. `sample_offset` is the global index of row 0 for the noise source.
 *
 * **Scratch** (allocated by sde_inverse_new()): 5 state-sized buffers (`max_batch*dim`
 * doubles: state, mean, projection noise, work, denoiser output) plus `4*max_batch` doubles
 * (times, SMC log-weights, twistings, uniforms) and `max_batch` indices, plus the
 * predictor's and the corrector's own scratch (sampler.h: 2 state-sized buffers each, a
 * third for a custom process or corrector steps > 1); sde_inverse_set_operator() adds
 * 3 measurement-sized buffers (`max_batch*m`). Nothing is allocated inside a run.
 *
 * **Threads.** An ::sde_inverse belongs to one thread at a time; ::SDE_OPT_CTRL_THREADS is
 * passed to its steppers (the projections run on the calling thread). Callbacks run only on
 * the calling thread and must not call back into the handle (::SDE_E_STATE).
 *
 * **Errors.** Every function validates its arguments and returns a status; on any error or
 * abort `x_out` is untouched and the noise counter is restored. A failing operator callback
 * gives ::SDE_E_CALLBACK.
 *
 * **Guidance wrappers.** sde_model_new_guided() and sde_model_new_cfg() return ordinary
 * ::sde_model handles (output ::SDE_OUTPUT_SCORE resp. the host's output kind), so they work
 * with every sampler: PC, ODE, DDIM, likelihood, and the projection sampler above. Class
 * labels are set on the wrapper with sde_model_set_labels(). A wrapper holds scratch for its
 * largest batch (sde_model_reserve() pre-sizes it, and the base model's) and belongs to one
 * thread at a time, like every model.
 */
#ifndef SDE_CONTROLLABLE_H
#define SDE_CONTROLLABLE_H

#include <sde/common.h>
#include <sde/model.h>
#include <sde/process.h>
#include <sde/rng.h>

SDE_BEGIN_DECLS

/* ---- the projection sampler ----------------------------------------------------------- */

/** Opaque projection sampler (inpainting, colorization, linear inverse problems). */
typedef struct sde_inverse sde_inverse;

/**
 * Options of ::sde_inverse (options.h ranges: integers 600–699, reals 1500–1599).
 */
enum sde_ctrl_option {
    /** int 0/1, default 0 — reproduce score_sde_pytorch exactly (R28, R31, and the steppers'
     *  reference mode; see the file comment). */
    SDE_OPT_CTRL_REFERENCE = 600,
    /** int 0/1, default 0 — the predictor steps the probability-flow ODE (deterministic
     *  predictor; a draw is still made). */
    SDE_OPT_CTRL_PROBABILITY_FLOW = 601,
    /** int in [1, 10^6], default 1 — corrector iterations per grid step. */
    SDE_OPT_CTRL_CORRECTOR_STEPS = 602,
    /** int in [1, 2^40], default the process's N — grid steps. */
    SDE_OPT_CTRL_STEPS = 603,
    /** int 0/1, default 1 — return the last (projected) mean instead of the noisy state. */
    SDE_OPT_CTRL_DENOISE = 604,
    /** int in [1, 256], default 1 — threads of the steppers' element-wise work. */
    SDE_OPT_CTRL_THREADS = 605,
    /** int 0/1, default 0 — start the known part from the prior sample too (the reference
     *  starts it at the noise-free observation). */
    SDE_OPT_CTRL_KNOWN_FROM_NOISE = 606,
    /** int 0/1, default 0 — Langevin step sizes from batch-mean norms (sampler.h,
     *  ::SDE_OPT_PC_BATCH_NORMS); implied by the reference mode. Use it (or ALD) for data of
     *  a few dimensions. */
    SDE_OPT_CTRL_BATCH_NORMS = 607,
    /** int, an ::sde_ctrl_method, default ::SDE_CTRL_REPLACE — how the observation steers
     *  the sampler (see the file comment, "Methods"). */
    SDE_OPT_CTRL_METHOD = 608,
    /** int in [0, 2^40], default 0 — ::SDE_CTRL_SMC: particles per group `G`; consecutive
     *  rows `g*G .. g*G+G-1` form group g and must carry the same observation; `batch` must
     *  be a multiple of G. 0 = the whole batch is one group. */
    SDE_OPT_CTRL_PARTICLES = 609,
    /** real >= 0, default 0.16 — the corrector's signal-to-noise ratio. */
    SDE_OPT_CTRL_SNR = 1500,
    /** real in (0, T), default 1e-5 (the reference's inpainting default, R8) — last grid
     *  time. */
    SDE_OPT_CTRL_EPS = 1501,
    /** real in (0, 1e6], default 1 — linear problems: the projection step `lambda`. */
    SDE_OPT_CTRL_LAMBDA = 1502,
    /** real >= 0, default 0 — linear problems: the measurement noise std `sigma_y`. */
    SDE_OPT_CTRL_MEASUREMENT_STD = 1503,
    /** real in [0, 1], default 0.5 — ::SDE_CTRL_SMC: a group is resampled when its effective
     *  sample size falls below this fraction of G (1 = every step, 0 = only at the end). */
    SDE_OPT_CTRL_ESS = 1504
};

/** Values of ::SDE_OPT_CTRL_METHOD. */
enum sde_ctrl_method {
    /** Replacement (the reference's projection): fast, biased (see "Methods"). */
    SDE_CTRL_REPLACE = 0,
    /** Twisted sequential Monte Carlo over the unconditional chain: asymptotically exact
     *  (see "Methods"). */
    SDE_CTRL_SMC = 1
};

/**
 * Create a projection sampler for `process` (copied) with a predictor and a corrector kind
 * (sampler.h; either may be NONE), `dim` values per sample and batches of at most
 * `max_batch`. Refuses what sde_predictor_new() and sde_corrector_new() refuse.
 */
SDE_API int sde_inverse_new(sde_inverse **out, const sde_process *process, int predictor,
                            int corrector, size_t dim, size_t max_batch);

/** Free a projection sampler. Accepts NULL. */
SDE_API void sde_inverse_free(sde_inverse *inverse);

/** Set an integer option (::sde_ctrl_option). */
SDE_API int sde_inverse_set_int(sde_inverse *inverse, int option, int64_t value);

/** Set a real option (::sde_ctrl_option). */
SDE_API int sde_inverse_set_real(sde_inverse *inverse, int option, double value);

/** Read an integer option into `*value`. */
SDE_API int sde_inverse_get_int(const sde_inverse *inverse, int option, int64_t *value);

/** Read a real option into `*value`. */
SDE_API int sde_inverse_get_real(const sde_inverse *inverse, int option, double *value);

/** Call `fn(step, t_k, user_data)` before every grid step; nonzero stops the run
 *  (::SDE_ABORTED). NULL removes it. `user_data` is borrowed. */
SDE_API int sde_inverse_set_progress(sde_inverse *inverse, sde_progress_fn fn, void *user_data);

/** Bytes of scratch memory held, including the steppers' (0 for NULL). */
SDE_API size_t sde_inverse_workspace_bytes(const sde_inverse *inverse);

/** Model evaluations made by the last run (also after an error or abort). */
SDE_API int sde_inverse_get_model_calls(const sde_inverse *inverse, uint64_t *calls);

/**
 * Inpaint `batch` samples: `data[batch*dim]` holds the observation (only its known entries
 * are read), `mask[mask_rows*dim]` is 1 for known and 0 for unknown values (exactly 0 or
 * 1; `mask_rows` is 1 (shared) or `batch`). Writes `x_out[batch*dim]` (may alias `data`).
 * `model` must be built for the same process and dim.
 */
SDE_API int sde_inverse_inpaint(sde_inverse *inverse, sde_model *model, sde_noise *noise,
                                const double *data, const double *mask, size_t mask_rows,
                                double *x_out, size_t batch, size_t dim, size_t sample_offset);

/**
 * Colorize `batch` gray images `gray[batch][channels*pixels]` (channel-major; the
 * luminance of decouple(gray) is the known part, so a gray image has three equal channels)
 * into `x_out` (same shape). `channels` must be 3 and `channels*pixels` the sampler's dim.
 * `M` and `invM` are row-major 3x3 (`M[i*3+j]`); NULL for both uses the reference's
 * (sde_colorize_matrices()). With a user M, `invM` must be its inverse (checked to 1e-6).
 */
SDE_API int sde_inverse_colorize(sde_inverse *inverse, sde_model *model, sde_noise *noise,
                                 const double *gray, const double *M, const double *invM,
                                 double *x_out, size_t batch, size_t channels, size_t pixels,
                                 size_t sample_offset);

/**
 * A batched linear operator `out[b] = Op in[b]` from `in[batch*in_dim]` to
 * `out[batch*out_dim]` (A: dim -> m, A^T: m -> dim). The library owns both arrays (valid
 * during the call). 0 = success, anything else is a failure (::SDE_E_CALLBACK).
 */
typedef int (*sde_linear_op_fn)(const double *in, double *out, size_t batch, size_t in_dim,
                                size_t out_dim, void *user_data);

/**
 * Install the measurement operator `A` (dim -> m) and its transpose `AT` (m -> dim) for
 * sde_inverse_solve(). Allocates 3 buffers of `max_batch*m` doubles. `user_data` is
 * borrowed. `A = AT = NULL` with `m = 0` removes them.
 */
SDE_API int sde_inverse_set_operator(sde_inverse *inverse, sde_linear_op_fn A,
                                     sde_linear_op_fn AT, size_t m, void *user_data);

/**
 * Solve a linear inverse problem: sample `x_out[batch*dim]` given measurements
 * `y[batch*m]` (`m` as installed). Per projection two operator calls (A, then A^T); the
 * final mean of the default mode two more.
 */
SDE_API int sde_inverse_solve(sde_inverse *inverse, sde_model *model, sde_noise *noise,
                              const double *y, size_t m, double *x_out, size_t batch,
                              size_t dim, size_t sample_offset);

/**
 * The reference's colour transform: `M_out[9]` (row-major, its 8-significant-digit constants,
 * orthonormal to about 3e-7, R29) and `invM_out[9]`, the exact matrix inverse of M (not M^T).
 * Either may be NULL (not both).
 */
SDE_API int sde_colorize_matrices(double *M_out, double *invM_out);

/* ---- guidance wrappers ---------------------------------------------------------------- */

/** The label of an unconditional row in a classifier-free guidance call. */
#define SDE_LABEL_NONE (-1)

/**
 * Classifier gradient: `grad_out[b,:] = grad_x log p_t(labels[b] | x_b)` for
 * `x[batch*dim]`, with `time_input[batch]` in the base model's ::sde_time_input convention.
 * The library owns `grad_out`. 0 = success, nonzero = failure (::SDE_E_CALLBACK).
 */
typedef int (*sde_classifier_grad_fn)(const double *time_input, const double *x,
                                      const int64_t *labels, double *grad_out, size_t batch,
                                      size_t dim, void *user_data);

/**
 * Classifier guidance: a model whose score is
 * `score_base(x, t) + scale * grad_x log p_t(y | x)` (scale = 1: the exact conditional score
 * for an exact classifier). `base` is borrowed (must outlive the wrapper; the wrapper calls
 * it, so it must not be used concurrently); its process is copied. The wrapper outputs
 * ::SDE_OUTPUT_SCORE with ::SDE_TIME_CONTINUOUS (its sde_model_time_labels() are t; the
 * classifier receives the base model's labels). `scale` finite. Labels: sde_model_set_labels().
 */
SDE_API int sde_model_new_guided(sde_model **out, sde_model *base, sde_classifier_grad_fn fn,
                                 void *user_data, double scale);

/**
 * A conditional network for classifier-free guidance, called ONCE per evaluation with
 * `rows = 2*batch`: rows `0..batch-1` are the conditional inputs (`labels[b]` = the class
 * of sample b), rows `batch..2*batch-1` the same `x` and `time_input` again with
 * `labels[batch+b] = SDE_LABEL_NONE` (unconditional). Writes `out[rows*dim]` in the
 * wrapper's ::sde_model_output. 0 = success (see ::sde_net_fn for the rest).
 */
typedef int (*sde_cfg_net_fn)(const double *time_input, const double *x, const int64_t *labels,
                              double *out, size_t rows, size_t dim, void *user_data);

/**
 * Classifier-free guidance: a model whose network output is
 * `(1 + w) out_cond - w out_uncond` (Ho & Salimans: `w = 0` is the plain conditional model,
 * `w > 0` sharpens towards the class; `w = -1` the unconditional model), converted like
 * sde_model_new() with `output` and `time_input` (the combination is affine, so it equals the
 * same combination of scores). `w` finite. Scratch: `2*batch*(dim+1)` doubles plus labels.
 */
SDE_API int sde_model_new_cfg(sde_model **out, const sde_process *process, size_t dim,
                              sde_cfg_net_fn net, void *user_data, int output, int time_input,
                              double w);

/**
 * Set the class labels of a guidance wrapper (copied): row b of every later evaluation uses
 * `labels[b]`, or `labels[0]` for every row when `n = 1`. An evaluation without labels, or
 * with a batch above `n > 1`, fails (::SDE_E_CALLBACK from the evaluating call, with a message
 * saying so). Labels must be >= 0. ::SDE_E_INVALID on models that are not wrappers.
 */
SDE_API int sde_model_set_labels(sde_model *model, const int64_t *labels, size_t n);

/** Change a guidance wrapper's scale (classifier guidance) or weight `w` (CFG); finite. */
SDE_API int sde_model_set_guidance_scale(sde_model *model, double scale);

SDE_END_DECLS

#endif /* SDE_CONTROLLABLE_H */
