/**
 * @file ode_sampler.h
 * @brief The probability-flow ODE sampler, and encoding / decoding through the same ODE.
 *
 * The probability-flow ODE of a process with drift `f` and diffusion `g`,
 * ```
 * dx/dt = f(x, t) - g(t)^2 score(x, t) / 2,
 * ```
 * has the same marginals as the forward SDE, so integrating it from the prior at `T` down to
 * `eps` turns noise into data deterministically (Song et al. 2021, section 4.3). The drift is
 * sde_process_reverse() with `probability_flow = 1`, the score is sde_model_score() of the
 * sampler's model, and the integration is an ::sde_ode_solver (sde/ode.h).
 *
 * - sde_ode_sampler_sample(): draw `x(T)` from the prior, then decode it.
 * - sde_ode_sampler_decode(): latent `z = x(T)` to data `x(eps)`; with ::SDE_OPT_ODE_DENOISE,
 *   followed by one reverse-diffusion predictor step at `eps` whose mean is returned
 *   (`x - rev_f`, with `rev_f` from sde_process_reverse_discretize(), probability flow off).
 * - sde_ode_sampler_encode(): data `x(eps)` to latent `z = x(T)` (never denoised), the inverse
 *   of decode without denoising up to the solver tolerance.
 *
 * The sampler returns the state itself; a host de-normalises it (the reference's inverse
 * scaler) as it likes.
 *
 * **Reference mode** (::SDE_OPT_ODE_REFERENCE_MODE = 1) reproduces score_sde_pytorch's
 * `get_ode_sampler`: the whole batch is one ODE (::SDE_OPT_ODE_PER_SAMPLE is ignored), and the
 * denoising step draws one normal array from the noise source that it does not use (R22 of the
 * conformance notes) so that a replayed noise tape stays aligned. Use a model with
 * ::SDE_TIME_REFERENCE_CONTINUOUS time input for the reference's labels (R21), ::SDE_ODE_DOPRI5,
 * and the reference's `rtol`, `atol` (1e-5) and `eps` (1e-3). The reference also rounds the
 * state to float32 at every evaluation; the sampler computes in float64 throughout.
 *
 * **Memory.** A sampler owns a solver (sde_ode_method_num_buffers() state-sized buffers) and
 * 3 more state-sized buffers of `max_batch * dim` doubles (the state, the score, and the
 * denoising step's work array), all allocated at creation; it also reserves the model's
 * scratch for `max_batch` (sde_model_reserve()), so the model does not allocate while
 * sampling.
 *
 * **Thread rules.** A sampler belongs to one thread at a time, and so does its model while the
 * sampler runs. The model is borrowed: it must outlive the sampler, and the network must not
 * call back into the sampler (::SDE_E_STATE).
 */
#ifndef SDE_ODE_SAMPLER_H
#define SDE_ODE_SAMPLER_H

#include <sde/common.h>
#include <sde/model.h>
#include <sde/ode.h>
#include <sde/rng.h>

SDE_BEGIN_DECLS

/** Opaque probability-flow ODE sampler. */
typedef struct sde_ode_sampler sde_ode_sampler;

/**
 * Options of the ODE sampler only (in addition to every ::sde_ode_option, which the sampler
 * forwards to its solver). Use sde_ode_sampler_set_int() / sde_ode_sampler_set_real().
 */
enum sde_ode_sampler_option {
    /** int, 0 or 1, default 0: after decoding, take one reverse-diffusion step at `eps` and
     *  return its mean (one more model call). */
    SDE_OPT_ODE_DENOISE = 310,
    /** int, 0 or 1, default 0: reference-compatible mode (see the file comment). */
    SDE_OPT_ODE_REFERENCE_MODE = 311,
    /** real, in (0, T), default 1e-3 (T/1000 if T <= 1e-3): the time the data live at; decode
     *  integrates from T down to eps, encode from eps up to T. */
    SDE_OPT_ODE_EPS = 1210
};

/**
 * Create a sampler for `model` (borrowed; must outlive the sampler) with the ODE method
 * `method` (::sde_ode_method; DOPRI5 is the reference's) and batches of up to `max_batch`
 * samples of the model's dimension. `*out` is NULL on failure.
 */
SDE_API int sde_ode_sampler_new(sde_ode_sampler **out, sde_model *model, int method,
                                size_t max_batch);

/** Free a sampler (not its model). Accepts NULL. */
SDE_API void sde_ode_sampler_free(sde_ode_sampler *sampler);

/**
 * Set / read an option: the ::sde_ode_sampler_option values, or any ::sde_ode_option (passed to
 * the sampler's solver). ::SDE_E_INVALID for unknown or wrongly typed options and values out of
 * bounds, naming the option and the value.
 */
SDE_API int sde_ode_sampler_set_int(sde_ode_sampler *sampler, int option, int64_t value);
SDE_API int sde_ode_sampler_set_real(sde_ode_sampler *sampler, int option, double value);
SDE_API int sde_ode_sampler_get_int(const sde_ode_sampler *sampler, int option, int64_t *value);
SDE_API int sde_ode_sampler_get_real(const sde_ode_sampler *sampler, int option, double *value);

/**
 * Sample: `x(T)` = one prior draw from `noise` (sde_process_prior_sample(), global samples
 * `sample_offset ..`), decoded to `x_out[batch*dim]` as by sde_ode_sampler_decode().
 * `batch <= max_batch`, `dim` equal to the model's. On error `x_out` is unchanged.
 */
SDE_API int sde_ode_sampler_sample(sde_ode_sampler *sampler, sde_noise *noise, double *x_out,
                                   size_t batch, size_t dim, size_t sample_offset);

/**
 * Decode the latents `z[batch*dim]` (the state at T, e.g. prior noise scaled by the prior std)
 * into `x_out[batch*dim]` at `eps`, denoising if ::SDE_OPT_ODE_DENOISE is set. `noise` is only
 * used in reference mode with denoising (the unused draw, for samples `sample_offset ..`) and
 * may otherwise be NULL. `x_out` may alias `z`; on error it is unchanged.
 */
SDE_API int sde_ode_sampler_decode(sde_ode_sampler *sampler, sde_noise *noise, const double *z,
                                   double *x_out, size_t batch, size_t dim,
                                   size_t sample_offset);

/**
 * Encode data `x[batch*dim]` (at time eps) into latents `z_out[batch*dim]` at T through the
 * same ODE (no denoising). `z_out` may alias `x`; on error it is unchanged.
 */
SDE_API int sde_ode_sampler_encode(sde_ode_sampler *sampler, const double *x, double *z_out,
                                   size_t batch, size_t dim);

/**
 * A projection applied to the state `x[batch*dim]` (in place) at time `t` while decoding, e.g.
 * inpainting's `x_known <- a(t) y + s(t) z` with `z` fixed per sample (sde_process_marginal()
 * gives a, s). 0 = success, anything else a failure (::SDE_E_CALLBACK; set a message with
 * sde_set_error_message()). Runs on the calling thread; must not call back into the sampler.
 */
typedef int (*sde_ode_projection_fn)(double t, double *x, size_t batch, size_t dim,
                                     void *user_data);

/**
 * Install a projection for sample / decode (not encode): the span `T -> eps` is cut into
 * `segments` equal pieces `t_j = T + j (eps - T) / segments`; `fn(t_j, x)` runs at `t_0 = T`
 * before integrating and after each piece (so last at `eps`, before any denoising step). Each
 * piece is a separate solver run (a fresh initial step size, so more evaluations than one
 * run); the projection is NOT applied at the adaptive solver's internal steps. Controlled
 * generation through the probability-flow ODE this way is a heuristic like replacement
 * inpainting (docs/controllable.md): it keeps the known part on the given trajectory but
 * does not sample the exact conditional. `fn = NULL` (with `segments` ignored) removes it;
 * otherwise `segments` in [1, 10^6]. `user_data` is borrowed.
 */
SDE_API int sde_ode_sampler_set_projection(sde_ode_sampler *sampler, sde_ode_projection_fn fn,
                                           void *user_data, size_t segments);

/** Model evaluations of the last sample / decode / encode (the solver's NFE, plus one for
 *  the denoising step). */
SDE_API int sde_ode_sampler_get_nfe(const sde_ode_sampler *sampler, uint64_t *nfe);

/**
 * The sampler's solver, read-only, for its statistics (sde_ode_solver_get_accepted_steps(),
 * sde_ode_solver_get_t_reached(), ...) of the last run. Owned by the sampler; NULL for NULL.
 */
SDE_API const sde_ode_solver *sde_ode_sampler_solver(const sde_ode_sampler *sampler);

SDE_END_DECLS

#endif /* SDE_ODE_SAMPLER_H */
