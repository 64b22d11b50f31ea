/* Correctors: Langevin MCMC with a signal-to-noise-ratio step size, annealed Langevin
 * dynamics, none. Each inner iteration is score -> draw -> x_mean = x + e score,
 * x = x_mean + sqrt(2 e) z; the step size e is per sample (Langevin's default and ALD), or
 * from batch means in reference-compatible mode (R15). */
#include <math.h>
#include <string.h>

#include "pc_private.h"

struct sde_corrector {
    sde__corr_cfg cfg;
    sde_process *process; /* own copy */
    sde__pc_work work;
    int busy;
    size_t last_batch; /* batch of the last successful step (0: none yet) */
};

static const char *const kind_names[] = {NULL, "langevin", "ald", "none"};

const char *sde_corrector_kind_name(int kind)
{
    return kind >= SDE_CORRECTOR_LANGEVIN && kind <= SDE_CORRECTOR_NONE ? kind_names[kind]
                                                                         : NULL;
}

int sde_corrector_kind_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    for (int k = SDE_CORRECTOR_LANGEVIN; k <= SDE_CORRECTOR_NONE; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return 0;
}

const char *sde__corr_what(int kind)
{
    switch (kind) {
    case SDE_CORRECTOR_LANGEVIN: return "Langevin corrector";
    case SDE_CORRECTOR_ALD: return "annealed-Langevin (ALD) corrector";
    default: return "no-op corrector";
    }
}

/* ---- configuration -------------------------------------------------------------------- */

/* sub-VP has no tables; its alpha is 1 - beta_i on VP's beta schedule (the same betas). */
static double subvp_beta(const sde_process *p, int64_t i)
{
    double bmin = 0.0, bmax = 0.0;
    sde_process_param(p, "beta_min", &bmin);
    sde_process_param(p, "beta_max", &bmax);
    int64_t N = sde_process_num_steps(p);
    return sde__linspace_at(bmin / (double)N, bmax / (double)N, N, i);
}

int sde__corr_check_new(const sde_process *p, int kind, const char *func)
{
    if (kind < SDE_CORRECTOR_LANGEVIN || kind > SDE_CORRECTOR_NONE)
        return sde__fail(SDE_E_INVALID, func, "corrector kind (%d) is not an sde_corrector_kind",
                         kind);
    if (kind == SDE_CORRECTOR_NONE)
        return SDE_OK;
    int pk = sde_process_kind(p);
    if (pk == SDE_PROCESS_VP && !sde_process_has_tables(p)) {
        sde__process_require_tables(p, func); /* records the detailed reason */
        char why[640];
        strncpy(why, sde_last_error(), sizeof why - 1);
        why[sizeof why - 1] = '\0';
        return sde__fail(SDE_E_INVALID, func, "the %s takes alpha from the DDPM tables, which "
                         "are invalid (the reference would return NaN): %s", sde__corr_what(kind),
                         why);
    }
    if (pk == SDE_PROCESS_SUBVP) {
        int64_t N = sde_process_num_steps(p);
        double top = subvp_beta(p, N - 1);
        if (!(top < 1.0))
            return sde__fail(SDE_E_INVALID, func,
                             "the %s takes alpha = 1 - beta_i on the sub-VP process's beta "
                             "schedule, and beta[%lld] = %.17g >= 1 (N = %lld is too small); use "
                             "N > beta_max", sde__corr_what(kind), (long long)(N - 1), top,
                             (long long)N);
    }
    return SDE_OK;
}

int sde__corr_check_config(const sde__corr_cfg *cfg, const char *func)
{
    int pk = sde_process_kind(cfg->process);
    if (cfg->reference && cfg->kind != SDE_CORRECTOR_NONE && pk != SDE_PROCESS_VP &&
        pk != SDE_PROCESS_VE)
        return sde__fail(SDE_E_UNSUPPORTED, func,
                         "reference-compatible mode refuses the %s on a %s process, as "
                         "score_sde_pytorch does (it takes alpha from a table only VP has; R17); "
                         "turn SDE_OPT_PC_REFERENCE off to use alpha = 1 - beta_i (sub-VP) or 1",
                         sde__corr_what(cfg->kind),
                         pk == SDE_PROCESS_SUBVP ? "sub-VP" : "custom");
    return SDE_OK;
}

double sde__corr_alpha1(const sde__corr_cfg *cfg, double t)
{
    const sde_process *p = cfg->process;
    switch (sde_process_kind(p)) {
    case SDE_PROCESS_VP:
        return sde__process_table_ptr(p, SDE_TABLE_ALPHAS)[sde__process_index1(p, t)];
    case SDE_PROCESS_SUBVP:
        return 1.0 - subvp_beta(p, sde__process_index1(p, t));
    default:
        return 1.0;
    }
}

/* ---- one call ------------------------------------------------------------------------- */

/* ALD's step sizes e_b = (snr s_b)^2 2 alpha_b, as affine coefficients. */
static int ald_coefficients(const sde__corr_cfg *cfg, sde__pc_work *w, sde__step_ctx *ctx,
                            const char *what)
{
    const sde_process *p = cfg->process;
    double *C = sde__row(w, SDE__ROW_C), *S = sde__row(w, SDE__ROW_S);
    double *A = sde__row(w, SDE__ROW_A), *E = sde__row(w, SDE__ROW_E);
    const double *alpha = sde__row(w, SDE__ROW_ALPHA);
    double *s = sde__row(w, SDE__ROW_ZN);
    if (sde__process_is_custom(p)) {
        int rc = sde_process_marginal(p, ctx->t, NULL, s, ctx->batch);
        if (rc != SDE_OK)
            return sde__pc_step_failed(ctx, what, rc);
    } else {
        for (size_t b = 0; b < ctx->batch; b++) {
            double a;
            sde__process_marginal1(p, ctx->t[b], &a, &s[b]);
        }
    }
    for (size_t b = 0; b < ctx->batch; b++) {
        double q = cfg->snr * s[b];
        double e = q * q * 2.0 * alpha[b];
        A[b] = 1.0;
        C[b] = e;
        S[b] = sqrt(e * 2.0);
        E[b] = e;
    }
    return SDE_OK;
}

/* Reference mode: one step size from the batch means of the norms (R15). */
static int batch_mean_coefficients(const sde__corr_cfg *cfg, sde__pc_work *w,
                                   sde__step_ctx *ctx, const char *what)
{
    const double *gn = sde__row(w, SDE__ROW_GN), *zn = sde__row(w, SDE__ROW_ZN);
    const double *alpha = sde__row(w, SDE__ROW_ALPHA);
    double *A = sde__row(w, SDE__ROW_A), *C = sde__row(w, SDE__ROW_C);
    double *S = sde__row(w, SDE__ROW_S), *E = sde__row(w, SDE__ROW_E);
    double gsum = 0.0, zsum = 0.0;
    for (size_t b = 0; b < ctx->batch; b++) { /* in row order: independent of threads */
        gsum += gn[b];
        zsum += zn[b];
    }
    double gmean = gsum / (double)ctx->batch, zmean = zsum / (double)ctx->batch;
    if (!(gmean > 0.0) || !isfinite(gmean)) {
        sde__fail(SDE_E_NUMERIC, ctx->func, "the batch-mean score norm is %.17g", gmean);
        return sde__pc_step_failed(ctx, what, SDE_E_NUMERIC);
    }
    double q = cfg->snr * zmean / gmean;
    for (size_t b = 0; b < ctx->batch; b++) {
        double e = q * q * 2.0 * alpha[b];
        A[b] = 1.0;
        C[b] = e;
        S[b] = sqrt(e * 2.0);
        E[b] = e;
    }
    return SDE_OK;
}

int sde__correct(const sde__corr_cfg *cfg, sde__pc_work *w, sde__step_ctx *ctx, double *x,
                 double *x_mean, int in_place)
{
    size_t batch = ctx->batch, dim = w->dim;
    if (cfg->kind == SDE_CORRECTOR_NONE) {
        if (x_mean != NULL)
            memcpy(x_mean, x, batch * dim * sizeof *x);
        memset(sde__row(w, SDE__ROW_E), 0, batch * sizeof(double));
        return SDE_OK;
    }
    const char *what = sde__corr_what(cfg->kind);
    double *alpha = sde__row(w, SDE__ROW_ALPHA);
    for (size_t b = 0; b < batch; b++)
        alpha[b] = sde__corr_alpha1(cfg, ctx->t[b]);
    if (cfg->kind == SDE_CORRECTOR_ALD)
        SDE__CHECK(ald_coefficients(cfg, w, ctx, what));

    const double *src = x;
    for (int64_t it = 0; it < cfg->n_steps; it++) {
        int last = it == cfg->n_steps - 1;
        double *dst = (in_place || last) ? x : w->copy;
        double *xm = last ? x_mean : NULL;
        int batch_means = cfg->kind == SDE_CORRECTOR_LANGEVIN &&
                          (cfg->reference || cfg->batch_norms);
        /* Where the norms run as a phase of their own before any write (long rows, batch
         * means), or inside the sampler, whose state is its own (discarded on error), the
         * score's conversion is fused into the phase that first reads the score: one pass
         * less over it. Only for the built-in generator, so that a noise callback is never
         * called for a step whose network output is about to be refused. */
        int fused = cfg->kind == SDE_CORRECTOR_LANGEVIN && sde__noise_is_philox(ctx->noise) &&
                    (batch_means || dim > SDE__PC_TILE || ctx->in_sampler);
        SDE__CHECK(fused ? sde__pc_score_call(w, ctx, src, what)
                         : sde__pc_score(w, ctx, src, what));
        sde__noise_plan plan;
        int rc = sde__pc_draw(w, ctx->noise, batch, ctx->offset, 1, batch_means, &plan);
        if (rc != SDE_OK) {
            if (fused) /* the score's own failure comes first, as without the fusion */
                SDE__CHECK(sde__pc_score_finish(w, ctx, src, what));
            return sde__pc_step_failed(ctx, what, rc);
        }
        const sde_model *convert = fused ? ctx->model : NULL;
        if (cfg->kind == SDE_CORRECTOR_LANGEVIN && !batch_means) {
            sde__langevin_job job = {.dim = dim, .batch = batch, .alpha = alpha,
                                     .snr = cfg->snr, .g = w->score, .xin = src, .xout = dst,
                                     .xm = xm, .e_out = sde__row(w, SDE__ROW_E), .nz = plan,
                                     .model = convert};
            uint64_t flags = sde__run_langevin(w, &job);
            if (fused)
                SDE__CHECK(sde__pc_score_converted(w, ctx, flags, what));
        } else {
            if (batch_means) {
                sde__norms_job nj = {.dim = dim, .batch = batch, .g = w->score,
                                     .gn = sde__row(w, SDE__ROW_GN),
                                     .zn = sde__row(w, SDE__ROW_ZN), .nz = plan,
                                     .model = convert, .x = src};
                uint64_t flags = sde__run_norms(w, &nj);
                if (fused)
                    SDE__CHECK(sde__pc_score_converted(w, ctx, flags, what));
                sde__noise_plan_to_buffer(&plan);
                SDE__CHECK(batch_mean_coefficients(cfg, w, ctx, what));
            }
            sde__affine_job job = {.dim = dim, .batch = batch, .A = sde__row(w, SDE__ROW_A),
                                   .C = sde__row(w, SDE__ROW_C), .S = sde__row(w, SDE__ROW_S),
                                   .g = w->score, .xin = src, .xout = dst, .xm = xm,
                                   .add_noise = 1, .nz = plan};
            sde__run_affine(w, &job);
        }
        src = dst;
    }
    return SDE_OK;
}

/* ---- the public stepper --------------------------------------------------------------- */

int sde_corrector_new(sde_corrector **out, const sde_process *process, int kind, size_t dim,
                      size_t max_batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(out, func, "out"));
    *out = NULL;
    SDE__CHECK(sde__check_ptr(process, func, "process"));
    SDE__CHECK(sde__check_size(dim, func, "dim"));
    SDE__CHECK(sde__check_size(max_batch, func, "max_batch"));
    if (max_batch > SIZE_MAX / sizeof(double) / dim)
        return sde__fail(SDE_E_DIM, func, "max_batch (%zu) x dim (%zu) is too large", max_batch,
                         dim);
    SDE__CHECK(sde__corr_check_new(process, kind, func));
    sde_corrector *c = sde__calloc(1, sizeof *c);
    if (c == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the corrector");
    int rc = sde__process_clone(process, &c->process);
    if (rc == SDE_OK)
        rc = sde__pc_work_init(&c->work, dim, max_batch, kind != SDE_CORRECTOR_NONE, 0, func);
    if (rc != SDE_OK) {
        sde_process_free(c->process);
        sde__free(c);
        return rc;
    }
    c->cfg.kind = kind;
    c->cfg.process = c->process;
    c->cfg.snr = 0.16;
    c->cfg.n_steps = 1;
    *out = c;
    return SDE_OK;
}

void sde_corrector_free(sde_corrector *corrector)
{
    if (corrector == NULL)
        return;
    sde__pc_work_release(&corrector->work);
    sde_process_free(corrector->process);
    sde__free(corrector);
}

int sde_corrector_kind(const sde_corrector *corrector)
{
    return corrector != NULL ? corrector->cfg.kind : 0;
}

size_t sde_corrector_workspace_bytes(const sde_corrector *corrector)
{
    return corrector != NULL ? sde__pc_work_bytes(&corrector->work) : 0;
}

static int check_handle(const sde_corrector *c, const char *func)
{
    SDE__CHECK(sde__check_ptr(c, func, "corrector"));
    if (c->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the corrector is busy: a callback must not call back into it");
    return SDE_OK;
}

int sde_corrector_set_int(sde_corrector *corrector, int option, int64_t value)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(corrector, func));
    switch (option) {
    case SDE_OPT_PC_REFERENCE:
    case SDE_OPT_PC_CORRECTOR_STEPS:
    case SDE_OPT_PC_THREADS:
    case SDE_OPT_PC_BATCH_NORMS:
        SDE__CHECK(sde__pc_int_option(option, value, func));
        break;
    default:
        return sde__not_an_option(option, SDE_OPTION_INT, "a corrector", func);
    }
    switch (option) {
    case SDE_OPT_PC_REFERENCE:
        corrector->cfg.reference = (int)value;
        return SDE_OK;
    case SDE_OPT_PC_BATCH_NORMS:
        corrector->cfg.batch_norms = (int)value;
        return SDE_OK;
    case SDE_OPT_PC_CORRECTOR_STEPS:
        if (value > 1)
            SDE__CHECK(sde__pc_work_reserve_copy(&corrector->work, func));
        corrector->cfg.n_steps = value;
        return SDE_OK;
    default:
        return sde__pc_work_set_threads(&corrector->work, (int)value, func);
    }
}

int sde_corrector_set_real(sde_corrector *corrector, int option, double value)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(corrector, func));
    if (option != SDE_OPT_PC_SNR)
        return sde__not_an_option(option, SDE_OPTION_REAL, "a corrector", func);
    SDE__CHECK(sde__pc_real_option(option, value, func));
    corrector->cfg.snr = value;
    return SDE_OK;
}

int sde_corrector_get_int(const sde_corrector *corrector, int option, int64_t *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(corrector, func, "corrector"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    switch (option) {
    case SDE_OPT_PC_REFERENCE: *value = corrector->cfg.reference; return SDE_OK;
    case SDE_OPT_PC_CORRECTOR_STEPS: *value = corrector->cfg.n_steps; return SDE_OK;
    case SDE_OPT_PC_THREADS: *value = corrector->work.threads; return SDE_OK;
    case SDE_OPT_PC_BATCH_NORMS: *value = corrector->cfg.batch_norms; return SDE_OK;
    default: return sde__not_an_option(option, SDE_OPTION_INT, "a corrector", func);
    }
}

int sde_corrector_get_real(const sde_corrector *corrector, int option, double *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(corrector, func, "corrector"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    if (option != SDE_OPT_PC_SNR)
        return sde__not_an_option(option, SDE_OPTION_REAL, "a corrector", func);
    *value = corrector->cfg.snr;
    return SDE_OK;
}

int sde_corrector_alpha(const sde_corrector *corrector, const double *t, double *alpha_out,
                        size_t batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(corrector, func, "corrector"));
    SDE__CHECK(sde__check_ptr(t, func, "t"));
    SDE__CHECK(sde__check_ptr(alpha_out, func, "alpha_out"));
    SDE__CHECK(sde__check_size(batch, func, "batch"));
    SDE__CHECK(sde__check_times(t, batch, sde_process_t_end(corrector->process), func));
    SDE__CHECK(sde__corr_check_config(&corrector->cfg, func));
    for (size_t b = 0; b < batch; b++)
        alpha_out[b] = corrector->cfg.kind == SDE_CORRECTOR_NONE
                           ? 1.0
                           : sde__corr_alpha1(&corrector->cfg, t[b]);
    return SDE_OK;
}

int sde_corrector_last_step_sizes(const sde_corrector *corrector, double *step_out,
                                  size_t batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(corrector, func, "corrector"));
    SDE__CHECK(sde__check_ptr(step_out, func, "step_out"));
    if (corrector->last_batch == 0)
        return sde__fail(SDE_E_STATE, func, "no successful sde_corrector_step() yet");
    if (batch != corrector->last_batch)
        return sde__fail(SDE_E_DIM, func, "batch (%zu) differs from the last step's batch (%zu)",
                         batch, corrector->last_batch);
    memcpy(step_out, sde__row(&corrector->work, SDE__ROW_E), batch * sizeof *step_out);
    return SDE_OK;
}

int sde_corrector_step(sde_corrector *corrector, sde_model *model, sde_noise *noise,
                       const double *t, double *x, double *x_mean, size_t batch, size_t dim,
                       size_t sample_offset)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(corrector, func));
    SDE__CHECK(sde__check_ptr(t, func, "t"));
    SDE__CHECK(sde__pc_check_step(corrector->process, &corrector->work, model, noise, t, x,
                                  batch, dim, sample_offset, func));
    if (x_mean == x)
        return sde__fail(SDE_E_INVALID, func, "x_mean aliases x");
    SDE__CHECK(sde__corr_check_config(&corrector->cfg, func));
    if (corrector->cfg.kind != SDE_CORRECTOR_NONE)
        SDE__CHECK(sde_model_reserve(model, corrector->work.max_batch));
    sde__step_ctx ctx = {.model = model, .noise = noise, .t = t, .batch = batch,
                         .offset = sample_offset, .func = func};
    uint64_t counter = sde_noise_counter(noise);
    corrector->busy = 1;
    int rc = sde__correct(&corrector->cfg, &corrector->work, &ctx, x, x_mean,
                          corrector->cfg.n_steps == 1);
    corrector->busy = 0;
    if (rc != SDE_OK) {
        if (sde_noise_counter(noise) != counter)
            sde_noise_set_counter(noise, counter);
        return rc;
    }
    corrector->last_batch = batch;
    return SDE_OK;
}
