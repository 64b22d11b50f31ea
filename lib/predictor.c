/* Predictors: Euler–Maruyama, reverse diffusion, ancestral sampling, none. Each step is
 * x_mean = A x + C score (+ D drift for custom processes), x = x_mean + S z, with per-sample
 * coefficients computed here on the calling thread and the element-wise work in
 * pc_kernels.c. */
#include <math.h>
#include <string.h>

#include "pc_private.h"

struct sde_predictor {
    sde__pred_cfg cfg;
    sde_process *process; /* own copy */
    sde__pc_work work;
    int busy; /* set during a step: a callback must not re-enter */
};

static const char *const kind_names[] = {NULL, "euler_maruyama", "reverse_diffusion",
                                         "ancestral_sampling", "none"};

const char *sde_predictor_kind_name(int kind)
{
    return kind >= SDE_PREDICTOR_EULER_MARUYAMA && kind <= SDE_PREDICTOR_NONE ? kind_names[kind]
                                                                               : NULL;
}

int sde_predictor_kind_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    for (int k = SDE_PREDICTOR_EULER_MARUYAMA; k <= SDE_PREDICTOR_NONE; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return 0;
}

const char *sde__pred_what(int kind)
{
    switch (kind) {
    case SDE_PREDICTOR_EULER_MARUYAMA: return "Euler-Maruyama predictor";
    case SDE_PREDICTOR_REVERSE_DIFFUSION: return "reverse-diffusion predictor";
    case SDE_PREDICTOR_ANCESTRAL: return "ancestral-sampling predictor";
    default: return "no-op predictor";
    }
}

static const char *process_name(int kind)
{
    switch (kind) {
    case SDE_PROCESS_VP: return "VP";
    case SDE_PROCESS_SUBVP: return "sub-VP";
    case SDE_PROCESS_VE: return "VE";
    default: return "custom";
    }
}

/* ---- configuration checks ------------------------------------------------------------- */

int sde__pred_check_new(const sde_process *p, int kind, const char *func)
{
    if (kind < SDE_PREDICTOR_EULER_MARUYAMA || kind > SDE_PREDICTOR_NONE)
        return sde__fail(SDE_E_INVALID, func, "predictor kind (%d) is not an sde_predictor_kind",
                         kind);
    int pk = sde_process_kind(p);
    if (kind == SDE_PREDICTOR_ANCESTRAL && pk != SDE_PROCESS_VP && pk != SDE_PROCESS_VE)
        return sde__fail(SDE_E_UNSUPPORTED, func,
                         "the ancestral-sampling predictor is defined for VP (DDPM) and VE "
                         "(SMLD) processes only, not for a %s process; use reverse diffusion or "
                         "Euler-Maruyama", process_name(pk));
    int tables = (kind == SDE_PREDICTOR_ANCESTRAL || kind == SDE_PREDICTOR_REVERSE_DIFFUSION) &&
                 pk == SDE_PROCESS_VP;
    if (tables && !sde_process_has_tables(p)) {
        sde__process_require_tables(p, func); /* records the detailed reason */
        char why[640];
        strncpy(why, sde_last_error(), sizeof why - 1);
        why[sizeof why - 1] = '\0';
        return sde__fail(SDE_E_INVALID, func, "the %s reads the DDPM tables, which are invalid "
                         "(the reference would return NaN): %s", sde__pred_what(kind), why);
    }
    return SDE_OK;
}

int sde__pred_check_config(const sde__pred_cfg *cfg, const char *func)
{
    if (cfg->kind == SDE_PREDICTOR_ANCESTRAL && cfg->probability_flow)
        return sde__fail(SDE_E_UNSUPPORTED, func,
                         "SDE_OPT_PC_PROBABILITY_FLOW (1) is not defined for the "
                         "ancestral-sampling predictor");
    if (cfg->reference && cfg->kind == SDE_PREDICTOR_EULER_MARUYAMA && cfg->probability_flow)
        return sde__fail(SDE_E_UNSUPPORTED, func,
                         "reference-compatible mode refuses the Euler-Maruyama predictor with "
                         "probability flow, as score_sde_pytorch does (R13); turn "
                         "SDE_OPT_PC_REFERENCE off to step the probability-flow ODE");
    return SDE_OK;
}

int sde__pred_needs_drift(const sde_process *p, int kind)
{
    return sde__process_is_custom(p) &&
           (kind == SDE_PREDICTOR_EULER_MARUYAMA || kind == SDE_PREDICTOR_REVERSE_DIFFUSION);
}

/* ---- one step ------------------------------------------------------------------------- */

/* The linear built-in processes have drift f(x, t) = fc(t) x with fc = -beta(t)/2 (VP,
 * sub-VP) or 0 (VE). */
struct linear_drift {
    int vp_like;
    double bmin, bmax;
};

static struct linear_drift linear_drift_of(const sde_process *p)
{
    struct linear_drift d = {0, 0.0, 0.0};
    int pk = sde_process_kind(p);
    if (pk == SDE_PROCESS_VP || pk == SDE_PROCESS_SUBVP) {
        d.vp_like = 1;
        sde_process_param(p, "beta_min", &d.bmin);
        sde_process_param(p, "beta_max", &d.bmax);
    }
    return d;
}

static double drift_coeff(const struct linear_drift *d, double t)
{
    return d->vp_like ? -0.5 * (d->bmin + t * (d->bmax - d->bmin)) : 0.0;
}

/* Coefficients of every row; returns whether any row has a noise term. */
static int coefficients(const sde__pred_cfg *cfg, const sde__pc_work *w, const sde__step_ctx *ctx,
                        double dt, const double *gcustom)
{
    const sde_process *p = cfg->process;
    int pk = sde_process_kind(p);
    double *A = sde__row(w, SDE__ROW_A), *C = sde__row(w, SDE__ROW_C);
    double *S = sde__row(w, SDE__ROW_S), *D = sde__row(w, SDE__ROW_D);
    double c = cfg->probability_flow ? 0.5 : 1.0;
    double T = sde_process_t_end(p);
    int64_t N = sde_process_num_steps(p);
    const double *alphas = NULL, *betas = NULL, *sigmas = NULL;
    if (pk == SDE_PROCESS_VP && sde_process_has_tables(p)) {
        alphas = sde__process_table_ptr(p, SDE_TABLE_ALPHAS);
        betas = sde__process_table_ptr(p, SDE_TABLE_BETAS);
    } else if (pk == SDE_PROCESS_VE) {
        sigmas = sde__process_table_ptr(p, SDE_TABLE_SIGMAS);
    }
    struct linear_drift lin = linear_drift_of(p);
    double fcb = 0.0;
    int any = 0;
    for (size_t b = 0; b < ctx->batch; b++) {
        double t = ctx->t[b];
        double g = pk == SDE_PROCESS_CUSTOM ? gcustom[b] : 0.0;
        switch (cfg->kind) {
        case SDE_PREDICTOR_EULER_MARUYAMA: {
            double h = cfg->reference ? -1.0 / (double)N : dt; /* R7 */
            if (pk != SDE_PROCESS_CUSTOM) {
                g = sde__process_diffusion1(p, t);
                fcb = drift_coeff(&lin, t);
            }
            A[b] = pk == SDE_PROCESS_CUSTOM ? 1.0 : 1.0 + h * fcb;
            D[b] = h;
            C[b] = -c * (g * g) * h;
            S[b] = cfg->probability_flow ? 0.0 : g * sqrt(-h);
            break;
        }
        case SDE_PREDICTOR_REVERSE_DIFFUSION: {
            double G;
            if (pk == SDE_PROCESS_VP) {
                int64_t i = sde__process_index1(p, t);
                G = sqrt(betas[i]);
                A[b] = 2.0 - sqrt(alphas[i]); /* x - (sqrt(alpha) - 1) x */
            } else if (pk == SDE_PROCESS_VE) {
                int64_t i = sde__process_index1(p, t);
                double sig = sigmas[i], adj = i > 0 ? sigmas[i - 1] : 0.0;
                G = sqrt(sig * sig - adj * adj);
                A[b] = 1.0;
            } else { /* Euler discretisation with step T/N (sub-VP, custom) */
                double h = T / (double)N;
                if (pk == SDE_PROCESS_SUBVP) {
                    g = sde__process_diffusion1(p, t);
                    A[b] = 1.0 - drift_coeff(&lin, t) * h;
                } else {
                    A[b] = 1.0;
                }
                D[b] = -h;
                G = g * sqrt(h);
            }
            C[b] = c * (G * G);
            S[b] = cfg->probability_flow ? 0.0 : G;
            break;
        }
        default: { /* ancestral: VP or VE (checked at creation) */
            int64_t i = sde__process_index1(p, t);
            if (pk == SDE_PROCESS_VE) {
                double sig = sigmas[i], adj = i > 0 ? sigmas[i - 1] : 0.0;
                double d = sig * sig - adj * adj;
                A[b] = 1.0;
                C[b] = d;
                S[b] = sqrt(adj * adj * d / (sig * sig));
            } else {
                double beta = betas[i], inv = 1.0 / sqrt(1.0 - beta);
                A[b] = inv;
                C[b] = beta * inv;
                S[b] = sqrt(beta);
            }
            break;
        }
        }
        any |= S[b] != 0.0;
    }
    return any;
}

int sde__predict(const sde__pred_cfg *cfg, sde__pc_work *w, sde__step_ctx *ctx, double dt,
                 double *x, double *x_mean, int mean_only)
{
    size_t n = ctx->batch * w->dim;
    if (cfg->kind == SDE_PREDICTOR_NONE) {
        if (x_mean != NULL && !mean_only)
            memcpy(x_mean, x, n * sizeof *x);
        return SDE_OK;
    }
    const char *what = sde__pred_what(cfg->kind);
    const sde_process *p = cfg->process;
    int custom = sde__process_is_custom(p);
    /* Inside the sampler, x is the sampler's own state (discarded on error), so the score's
     * conversion and check can ride along with the update pass: one pass less over the
     * score. Not with host callbacks between the model call and the update (a custom
     * process, a noise callback): they must not run for a refused network output. */
    int fused = ctx->in_sampler && !custom && sde__noise_is_philox(ctx->noise);
    SDE__CHECK(fused ? sde__pc_score_call(w, ctx, x, what) : sde__pc_score(w, ctx, x, what));
    double *gcustom = sde__row(w, SDE__ROW_GN);
    if (custom) {
        /* The process's callbacks, on the calling thread (they allocate inside process.c). */
        int rc = sde_process_diffusion(p, ctx->t, gcustom, ctx->batch);
        if (rc == SDE_OK)
            rc = sde_process_drift(p, ctx->t, x, w->drift, ctx->batch, w->dim);
        if (rc != SDE_OK)
            return sde__pc_step_failed(ctx, what, rc);
    }
    int any_noise = coefficients(cfg, w, ctx, dt, gcustom);
    int add_noise = any_noise && !mean_only;
    sde__noise_plan plan;
    int rc = sde__pc_draw(w, ctx->noise, ctx->batch, ctx->offset, add_noise, 0, &plan);
    if (rc != SDE_OK) {
        if (fused) /* the score's own failure comes first, as without the fusion */
            SDE__CHECK(sde__pc_score_finish(w, ctx, x, what));
        return sde__pc_step_failed(ctx, what, rc);
    }
    sde__affine_job job = {
        .dim = w->dim,
        .batch = ctx->batch,
        .A = sde__row(w, SDE__ROW_A),
        .C = sde__row(w, SDE__ROW_C),
        .S = sde__row(w, SDE__ROW_S),
        .D = custom ? sde__row(w, SDE__ROW_D) : NULL,
        .f = custom ? w->drift : NULL,
        .g = w->score,
        .xin = x,
        .xout = x,
        .xm = mean_only ? NULL : x_mean,
        .add_noise = add_noise,
        .nz = plan,
        .model = fused ? ctx->model : NULL,
    };
    uint64_t flags = sde__run_affine(w, &job);
    return fused ? sde__pc_score_converted(w, ctx, flags, what) : SDE_OK;
}

/* ---- the public stepper --------------------------------------------------------------- */

int sde_predictor_new(sde_predictor **out, const sde_process *process, int kind, size_t dim,
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
    SDE__CHECK(sde__pred_check_new(process, kind, func));
    sde_predictor *p = sde__calloc(1, sizeof *p);
    if (p == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the predictor");
    int rc = sde__process_clone(process, &p->process);
    if (rc == SDE_OK)
        rc = sde__pc_work_init(&p->work, dim, max_batch, kind != SDE_PREDICTOR_NONE,
                               sde__pred_needs_drift(process, kind), func);
    if (rc != SDE_OK) {
        sde_process_free(p->process);
        sde__free(p);
        return rc;
    }
    p->cfg.kind = kind;
    p->cfg.process = p->process;
    *out = p;
    return SDE_OK;
}

void sde_predictor_free(sde_predictor *predictor)
{
    if (predictor == NULL)
        return;
    sde__pc_work_release(&predictor->work);
    sde_process_free(predictor->process);
    sde__free(predictor);
}

int sde_predictor_kind(const sde_predictor *predictor)
{
    return predictor != NULL ? predictor->cfg.kind : 0;
}

size_t sde_predictor_workspace_bytes(const sde_predictor *predictor)
{
    return predictor != NULL ? sde__pc_work_bytes(&predictor->work) : 0;
}

static int check_handle(const sde_predictor *p, const char *func)
{
    SDE__CHECK(sde__check_ptr(p, func, "predictor"));
    if (p->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the predictor is busy: a callback must not call back into it");
    return SDE_OK;
}

int sde_predictor_set_int(sde_predictor *predictor, int option, int64_t value)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(predictor, func));
    switch (option) {
    case SDE_OPT_PC_REFERENCE:
    case SDE_OPT_PC_PROBABILITY_FLOW:
    case SDE_OPT_PC_THREADS:
        SDE__CHECK(sde__pc_int_option(option, value, func));
        break;
    default:
        return sde__not_an_option(option, SDE_OPTION_INT, "a predictor", func);
    }
    if (option == SDE_OPT_PC_REFERENCE)
        predictor->cfg.reference = (int)value;
    else if (option == SDE_OPT_PC_PROBABILITY_FLOW)
        predictor->cfg.probability_flow = (int)value;
    else
        return sde__pc_work_set_threads(&predictor->work, (int)value, func);
    return SDE_OK;
}

int sde_predictor_set_real(sde_predictor *predictor, int option, double value)
{
    (void)value;
    SDE__CHECK(check_handle(predictor, __func__));
    return sde__not_an_option(option, SDE_OPTION_REAL, "a predictor", __func__);
}

int sde_predictor_get_int(const sde_predictor *predictor, int option, int64_t *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(predictor, func, "predictor"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    switch (option) {
    case SDE_OPT_PC_REFERENCE: *value = predictor->cfg.reference; return SDE_OK;
    case SDE_OPT_PC_PROBABILITY_FLOW: *value = predictor->cfg.probability_flow; return SDE_OK;
    case SDE_OPT_PC_THREADS: *value = predictor->work.threads; return SDE_OK;
    default: return sde__not_an_option(option, SDE_OPTION_INT, "a predictor", func);
    }
}

int sde_predictor_get_real(const sde_predictor *predictor, int option, double *value)
{
    SDE__CHECK(sde__check_ptr(predictor, __func__, "predictor"));
    SDE__CHECK(sde__check_ptr(value, __func__, "value"));
    return sde__not_an_option(option, SDE_OPTION_REAL, "a predictor", __func__);
}

int sde_predictor_step(sde_predictor *predictor, sde_model *model, sde_noise *noise,
                       const double *t, double dt, double *x, double *x_mean, size_t batch,
                       size_t dim, size_t sample_offset)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(predictor, func));
    SDE__CHECK(sde__check_ptr(t, func, "t"));
    SDE__CHECK(sde__pc_check_step(predictor->process, &predictor->work, model, noise, t, x,
                                  batch, dim, sample_offset, func));
    if (x_mean == x)
        return sde__fail(SDE_E_INVALID, func, "x_mean aliases x");
    SDE__CHECK(sde__pred_check_config(&predictor->cfg, func));
    if (predictor->cfg.kind == SDE_PREDICTOR_EULER_MARUYAMA && !predictor->cfg.reference &&
        !(isfinite(dt) && dt < 0.0))
        return sde__fail(SDE_E_INVALID, func,
                         "dt (%.17g) must be finite and < 0 for the Euler-Maruyama predictor "
                         "(the step goes from t to t + dt)", dt);
    if (predictor->cfg.kind != SDE_PREDICTOR_NONE)
        SDE__CHECK(sde_model_reserve(model, predictor->work.max_batch));
    sde__step_ctx ctx = {.model = model, .noise = noise, .t = t, .batch = batch,
                         .offset = sample_offset, .func = func};
    uint64_t counter = sde_noise_counter(noise);
    predictor->busy = 1;
    int rc = sde__predict(&predictor->cfg, &predictor->work, &ctx, dt, x, x_mean, 0);
    predictor->busy = 0;
    if (rc != SDE_OK && sde_noise_counter(noise) != counter)
        sde_noise_set_counter(noise, counter);
    return rc;
}
