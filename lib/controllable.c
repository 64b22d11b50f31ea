/* The projection sampler (issue 6): inpainting, colorization and linear inverse problems as a
 * predictor-corrector driver over the public steppers, with the known part re-imposed at the
 * current noise level after every update (score_sde_pytorch controllable_generation.py).
 * It works in its own state buffers and copies the result out only on success. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sde/controllable.h>
#include <sde/sampler.h>

#include "pc_private.h"

struct sde_inverse {
    sde_process *process; /* own copy */
    sde_predictor *pred;
    sde_corrector *corr;
    size_t dim, max_batch;
    double *x, *xm, *z, *w, *x0; /* state-sized each */
    double *tb;                  /* max_batch times */
    double *lw, *lt, *u;         /* SMC: max_batch log-weights, log-twistings, uniforms */
    size_t *idx;                 /* SMC: max_batch resampling indices */
    int reference, pf, denoise, known_noise, batch_norms, threads, method;
    int64_t csteps, steps, particles;
    double snr, eps, lambda, sigma_y, ess;
    sde_progress_fn progress;
    void *progress_user;
    sde_linear_op_fn A, AT;
    void *op_user;
    size_t m;
    double *ya, *yb, *yc; /* max_batch * m each */
    uint64_t calls;
    int busy;
};

/* The reference's colour transform (controllable_generation.py, get_pc_colorizer): the
 * 8-significant-digit table M and its exact float64 inverse (computed once, below). */
static const double REF_M[9] = {0.57735014, -0.81649649, 4.7008697e-08,
                                0.57735026, 0.40824834,  0.70710671,
                                0.57735026, 0.40824822,  -0.70710683};

static void inverse3(const double *M, double *inv)
{
    double c00 = M[4] * M[8] - M[5] * M[7], c01 = M[5] * M[6] - M[3] * M[8],
           c02 = M[3] * M[7] - M[4] * M[6];
    double det = M[0] * c00 + M[1] * c01 + M[2] * c02;
    inv[0] = c00 / det;
    inv[3] = c01 / det;
    inv[6] = c02 / det;
    inv[1] = (M[2] * M[7] - M[1] * M[8]) / det;
    inv[4] = (M[0] * M[8] - M[2] * M[6]) / det;
    inv[7] = (M[1] * M[6] - M[0] * M[7]) / det;
    inv[2] = (M[1] * M[5] - M[2] * M[4]) / det;
    inv[5] = (M[2] * M[3] - M[0] * M[5]) / det;
    inv[8] = (M[0] * M[4] - M[1] * M[3]) / det;
}

int sde_colorize_matrices(double *M_out, double *invM_out)
{
    if (M_out == NULL && invM_out == NULL)
        return sde__fail(SDE_E_INVALID, __func__, "M_out and invM_out are both NULL");
    if (M_out != NULL)
        memcpy(M_out, REF_M, sizeof REF_M);
    if (invM_out != NULL)
        inverse3(REF_M, invM_out);
    return SDE_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int fwd_int(sde_inverse *v, int pc_option, int64_t value, int to_pred, int to_corr)
{
    if (to_pred)
        SDE__CHECK(sde_predictor_set_int(v->pred, pc_option, value));
    if (to_corr)
        SDE__CHECK(sde_corrector_set_int(v->corr, pc_option, value));
    return SDE_OK;
}

int sde_inverse_new(sde_inverse **out, const sde_process *process, int predictor, int corrector,
                    size_t dim, size_t max_batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(out, func, "out"));
    *out = NULL;
    SDE__CHECK(sde__check_ptr(process, func, "process"));
    SDE__CHECK(sde__check_size(dim, func, "dim"));
    SDE__CHECK(sde__check_size(max_batch, func, "max_batch"));
    if (max_batch > SIZE_MAX / sizeof(double) / dim / 5)
        return sde__fail(SDE_E_DIM, func, "max_batch (%zu) x dim (%zu) is too large", max_batch,
                         dim);
    sde_inverse *v = sde__calloc(1, sizeof *v);
    if (v == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the projection sampler");
    int rc = sde__process_clone(process, &v->process);
    if (rc == SDE_OK)
        rc = sde_predictor_new(&v->pred, process, predictor, dim, max_batch);
    if (rc == SDE_OK)
        rc = sde_corrector_new(&v->corr, process, corrector, dim, max_batch);
    if (rc == SDE_OK) {
        v->x = sde__malloc_array(5 * max_batch * dim, sizeof *v->x);
        v->tb = sde__malloc_array(4 * max_batch, sizeof *v->tb);
        v->idx = sde__malloc_array(max_batch, sizeof *v->idx);
        if (v->x == NULL || v->tb == NULL || v->idx == NULL)
            rc = sde__fail(SDE_E_NOMEM, func, "cannot allocate 5 state buffers (%zu x %zu "
                           "doubles)", max_batch, dim);
    }
    if (rc != SDE_OK) {
        sde_inverse_free(v);
        return rc;
    }
    size_t n = max_batch * dim;
    v->xm = v->x + n;
    v->z = v->xm + n;
    v->w = v->z + n;
    v->x0 = v->w + n;
    v->lw = v->tb + max_batch;
    v->lt = v->lw + max_batch;
    v->u = v->lt + max_batch;
    v->ess = 0.5;
    v->dim = dim;
    v->max_batch = max_batch;
    v->denoise = 1;
    v->threads = 1;
    v->csteps = 1;
    v->steps = sde_process_num_steps(process);
    v->snr = 0.16;
    v->eps = 1e-5;
    v->lambda = 1.0;
    sde_corrector_set_real(v->corr, SDE_OPT_PC_SNR, v->snr);
    *out = v;
    return SDE_OK;
}

void sde_inverse_free(sde_inverse *inverse)
{
    if (inverse == NULL)
        return;
    sde_predictor_free(inverse->pred);
    sde_corrector_free(inverse->corr);
    sde_process_free(inverse->process);
    sde__free(inverse->x);
    sde__free(inverse->tb);
    sde__free(inverse->idx);
    sde__free(inverse->ya);
    sde__free(inverse);
}

size_t sde_inverse_workspace_bytes(const sde_inverse *inverse)
{
    if (inverse == NULL)
        return 0;
    return sde_predictor_workspace_bytes(inverse->pred) +
           sde_corrector_workspace_bytes(inverse->corr) +
           (5 * inverse->max_batch * inverse->dim + 4 * inverse->max_batch +
            3 * inverse->max_batch * inverse->m) * sizeof(double) +
           inverse->max_batch * sizeof(size_t);
}

static int check_handle(const sde_inverse *v, const char *func)
{
    SDE__CHECK(sde__check_ptr(v, func, "inverse"));
    if (v->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the projection sampler is busy: a callback must not call back into it");
    return SDE_OK;
}

static int in_bounds(int option, double value, const char *func)
{
    double lo, hi;
    if (sde_option_bounds(option, &lo, &hi) != SDE_OK || !(value >= lo && value <= hi))
        return sde__fail(SDE_E_INVALID, func, "%s (%.17g) is outside [%.17g, %.17g]",
                         sde_option_name(option), value, lo, hi);
    return SDE_OK;
}

int sde_inverse_set_int(sde_inverse *inverse, int option, int64_t value)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(inverse, func));
    if (option < SDE_OPT_CTRL_REFERENCE || option > SDE_OPT_CTRL_PARTICLES)
        return sde__not_an_option(option, SDE_OPTION_INT, "sde_inverse", func);
    SDE__CHECK(in_bounds(option, (double)value, func));
    sde_inverse *v = inverse;
    switch (option) {
    case SDE_OPT_CTRL_REFERENCE:
        SDE__CHECK(fwd_int(v, SDE_OPT_PC_REFERENCE, value, 1, 1));
        v->reference = (int)value;
        break;
    case SDE_OPT_CTRL_PROBABILITY_FLOW:
        SDE__CHECK(fwd_int(v, SDE_OPT_PC_PROBABILITY_FLOW, value, 1, 0));
        v->pf = (int)value;
        break;
    case SDE_OPT_CTRL_CORRECTOR_STEPS:
        SDE__CHECK(fwd_int(v, SDE_OPT_PC_CORRECTOR_STEPS, value, 0, 1));
        v->csteps = value;
        break;
    case SDE_OPT_CTRL_STEPS: v->steps = value; break;
    case SDE_OPT_CTRL_DENOISE: v->denoise = (int)value; break;
    case SDE_OPT_CTRL_THREADS:
        SDE__CHECK(fwd_int(v, SDE_OPT_PC_THREADS, value, 1, 1));
        v->threads = (int)value;
        break;
    case SDE_OPT_CTRL_KNOWN_FROM_NOISE: v->known_noise = (int)value; break;
    case SDE_OPT_CTRL_METHOD: v->method = (int)value; break;
    case SDE_OPT_CTRL_PARTICLES: v->particles = value; break;
    default: /* SDE_OPT_CTRL_BATCH_NORMS */
        SDE__CHECK(fwd_int(v, SDE_OPT_PC_BATCH_NORMS, value, 0, 1));
        v->batch_norms = (int)value;
        break;
    }
    return SDE_OK;
}

int sde_inverse_set_real(sde_inverse *inverse, int option, double value)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(inverse, func));
    if (option < SDE_OPT_CTRL_SNR || option > SDE_OPT_CTRL_ESS)
        return sde__not_an_option(option, SDE_OPTION_REAL, "sde_inverse", func);
    if (!isfinite(value))
        return sde__fail(SDE_E_INVALID, func, "%s (%g) is not finite", sde_option_name(option),
                         value);
    SDE__CHECK(in_bounds(option, value, func));
    switch (option) {
    case SDE_OPT_CTRL_SNR:
        SDE__CHECK(sde_corrector_set_real(inverse->corr, SDE_OPT_PC_SNR, value));
        inverse->snr = value;
        break;
    case SDE_OPT_CTRL_EPS: {
        double T = sde_process_t_end(inverse->process);
        if (!(value < T))
            return sde__fail(SDE_E_INVALID, func, "SDE_OPT_CTRL_EPS (%.17g) must be < T "
                             "(%.17g)", value, T);
        inverse->eps = value;
        break;
    }
    case SDE_OPT_CTRL_LAMBDA: inverse->lambda = value; break;
    case SDE_OPT_CTRL_ESS: inverse->ess = value; break;
    default: inverse->sigma_y = value; break;
    }
    return SDE_OK;
}

int sde_inverse_get_int(const sde_inverse *inverse, int option, int64_t *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(inverse, func, "inverse"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    const sde_inverse *v = inverse;
    switch (option) {
    case SDE_OPT_CTRL_REFERENCE: *value = v->reference; return SDE_OK;
    case SDE_OPT_CTRL_PROBABILITY_FLOW: *value = v->pf; return SDE_OK;
    case SDE_OPT_CTRL_CORRECTOR_STEPS: *value = v->csteps; return SDE_OK;
    case SDE_OPT_CTRL_STEPS: *value = v->steps; return SDE_OK;
    case SDE_OPT_CTRL_DENOISE: *value = v->denoise; return SDE_OK;
    case SDE_OPT_CTRL_THREADS: *value = v->threads; return SDE_OK;
    case SDE_OPT_CTRL_KNOWN_FROM_NOISE: *value = v->known_noise; return SDE_OK;
    case SDE_OPT_CTRL_BATCH_NORMS: *value = v->batch_norms; return SDE_OK;
    case SDE_OPT_CTRL_METHOD: *value = v->method; return SDE_OK;
    case SDE_OPT_CTRL_PARTICLES: *value = v->particles; return SDE_OK;
    default: return sde__not_an_option(option, SDE_OPTION_INT, "sde_inverse", func);
    }
}

int sde_inverse_get_real(const sde_inverse *inverse, int option, double *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(inverse, func, "inverse"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    switch (option) {
    case SDE_OPT_CTRL_SNR: *value = inverse->snr; return SDE_OK;
    case SDE_OPT_CTRL_EPS: *value = inverse->eps; return SDE_OK;
    case SDE_OPT_CTRL_LAMBDA: *value = inverse->lambda; return SDE_OK;
    case SDE_OPT_CTRL_MEASUREMENT_STD: *value = inverse->sigma_y; return SDE_OK;
    case SDE_OPT_CTRL_ESS: *value = inverse->ess; return SDE_OK;
    default: return sde__not_an_option(option, SDE_OPTION_REAL, "sde_inverse", func);
    }
}

int sde_inverse_set_progress(sde_inverse *inverse, sde_progress_fn fn, void *user_data)
{
    SDE__CHECK(check_handle(inverse, __func__));
    inverse->progress = fn;
    inverse->progress_user = fn != NULL ? user_data : NULL;
    return SDE_OK;
}

int sde_inverse_get_model_calls(const sde_inverse *inverse, uint64_t *calls)
{
    SDE__CHECK(sde__check_ptr(inverse, __func__, "inverse"));
    SDE__CHECK(sde__check_ptr(calls, __func__, "calls"));
    *calls = inverse->calls;
    return SDE_OK;
}

int sde_inverse_set_operator(sde_inverse *inverse, sde_linear_op_fn A, sde_linear_op_fn AT,
                             size_t m, void *user_data)
{
    const char *func = __func__;
    SDE__CHECK(check_handle(inverse, func));
    if (A == NULL && AT == NULL && m == 0) {
        sde__free(inverse->ya);
        inverse->ya = inverse->yb = inverse->yc = NULL;
        inverse->A = inverse->AT = NULL;
        inverse->m = 0;
        inverse->op_user = NULL;
        return SDE_OK;
    }
    if (A == NULL)
        return sde__fail(SDE_E_INVALID, func, "A is NULL");
    if (AT == NULL)
        return sde__fail(SDE_E_INVALID, func, "AT is NULL");
    SDE__CHECK(sde__check_size(m, func, "m"));
    if (m > SIZE_MAX / sizeof(double) / 3 / inverse->max_batch)
        return sde__fail(SDE_E_DIM, func, "m (%zu) is too large", m);
    double *buf = sde__malloc_array(3 * inverse->max_batch * m, sizeof *buf);
    if (buf == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate 3 x %zu x %zu doubles",
                         inverse->max_batch, m);
    sde__free(inverse->ya);
    inverse->ya = buf;
    inverse->yb = buf + inverse->max_batch * m;
    inverse->yc = inverse->yb + inverse->max_batch * m;
    inverse->A = A;
    inverse->AT = AT;
    inverse->m = m;
    inverse->op_user = user_data;
    return SDE_OK;
}

/* ---- problems and projections --------------------------------------------------------- */

enum { PB_INPAINT = 1, PB_COLOR = 2, PB_LINEAR = 3 };

typedef struct problem {
    int kind;
    const double *data, *mask; /* inpaint; data is also the gray image */
    size_t mask_rows;
    double M[9], iM[9];        /* colour */
    size_t pixels;
    const double *y; /* linear: [batch*m] */
    size_t batch, dim;
    const char *func;
} problem;

static const double *mask_row(const problem *pb, size_t b)
{
    return pb->mask + (pb->mask_rows == 1 ? 0 : b) * pb->dim;
}

/* Luminance (decoupled channel 0) of the gray image at sample b, pixel p. */
static double gray_lum(const problem *pb, size_t b, size_t p)
{
    const double *g = pb->data + b * pb->dim;
    size_t P = pb->pixels;
    return g[p] * pb->M[0] + g[P + p] * pb->M[3] + g[2 * P + p] * pb->M[6];
}

static void decouple1(const double *M, const double *v, double *u)
{
    for (int j = 0; j < 3; j++)
        u[j] = v[0] * M[j] + v[1] * M[3 + j] + v[2] * M[6 + j];
}

static int op_call(sde_inverse *v, sde_linear_op_fn fn, const double *in, double *out,
                   size_t batch, size_t in_dim, size_t out_dim, const char *what,
                   const char *func)
{
    sde__callback_message_reset();
    int rc = fn(in, out, batch, in_dim, out_dim, v->op_user); /* v->busy is set by run() */
    if (rc != 0)
        return sde__callback_failed(func, what, rc);
    size_t bad = sde__find_nonfinite(batch * out_dim, out);
    if (bad < batch * out_dim)
        return sde__fail(SDE_E_NUMERIC, func, "%s gave %g at sample %zu, element %zu", what,
                         out[bad], bad / out_dim, bad % out_dim);
    return SDE_OK;
}

/* Linear consistency step on xs: xs += lam AT(a y + s A z - A xs) (z NULL: s = 0). */
static int linear_step(sde_inverse *v, const problem *pb, double *xs, const double *z, double a,
                       double s, double lam, const char *func)
{
    size_t n = pb->batch * pb->dim, mm = v->m, nm = pb->batch * mm;
    for (size_t i = 0; i < n; i++)
        v->w[i] = (z != NULL ? s * z[i] : 0.0) - xs[i];
    SDE__CHECK(op_call(v, v->A, v->w, v->ya, pb->batch, pb->dim, mm, "the operator A", func));
    for (size_t i = 0; i < nm; i++)
        v->yb[i] = lam * (a * pb->y[i] + v->ya[i]);
    SDE__CHECK(op_call(v, v->AT, v->yb, v->w, pb->batch, mm, pb->dim, "the operator AT",
                       func));
    for (size_t i = 0; i < n; i++)
        xs[i] += v->w[i];
    return SDE_OK;
}

static double linear_lambda(const sde_inverse *v, double a, double s)
{
    if (v->sigma_y == 0.0)
        return v->lambda;
    double q = a * v->sigma_y;
    return s * s + q * q > 0.0 ? v->lambda * s * s / (s * s + q * q) : 0.0;
}

/* One projection at time t: draw z, re-impose the known part on v->x; with ref_mean (the
 * reference's R28 mean) also write v->xm from the projected state. */
static int project(sde_inverse *v, const problem *pb, sde_noise *noise, size_t offset, double t,
                   int ref_mean)
{
    const char *func = pb->func;
    double a, s;
    SDE__CHECK(sde__process_marginal_at(v->process, t, &a, &s, func));
    SDE__CHECK(sde_noise_normal(noise, v->z, pb->batch, pb->dim, offset));
    size_t D = pb->dim;
    if (pb->kind == PB_INPAINT) {
        for (size_t b = 0; b < pb->batch; b++) {
            const double *m = mask_row(pb, b), *d = pb->data + b * D, *z = v->z + b * D;
            double *x = v->x + b * D, *xm = v->xm + b * D;
            for (size_t i = 0; i < D; i++) {
                double mean = a * d[i];
                if (m[i] != 0.0)
                    x[i] = mean + s * z[i];
                if (ref_mean)
                    xm[i] = m[i] != 0.0 ? mean : x[i];
            }
        }
        return SDE_OK;
    }
    if (pb->kind == PB_COLOR) {
        size_t P = pb->pixels;
        for (size_t b = 0; b < pb->batch; b++) {
            double *x = v->x + b * D, *xm = v->xm + b * D;
            const double *z = v->z + b * D;
            for (size_t p = 0; p < P; p++) {
                double px[3] = {x[p], x[P + p], x[2 * P + p]}, u[3], q[3];
                double mean = a * gray_lum(pb, b, p);
                decouple1(pb->M, px, u);
                u[0] = mean + s * z[p];
                decouple1(pb->iM, u, q);
                x[p] = q[0], x[P + p] = q[1], x[2 * P + p] = q[2];
                if (ref_mean) {
                    decouple1(pb->M, q, u);
                    u[0] = mean;
                    decouple1(pb->iM, u, q);
                    xm[p] = q[0], xm[P + p] = q[1], xm[2 * P + p] = q[2];
                }
            }
        }
        return SDE_OK;
    }
    SDE__CHECK(linear_step(v, pb, v->x, v->z, a, s, linear_lambda(v, a, s), func));
    if (ref_mean) {
        memcpy(v->xm, v->x, pb->batch * D * sizeof *v->xm);
        SDE__CHECK(linear_step(v, pb, v->xm, NULL, a, 0.0, linear_lambda(v, a, 0.0), func));
    }
    return SDE_OK;
}

/* The default denoised output: the known part of the last predictor mean set to the
 * observation itself. */
static int final_mean(sde_inverse *v, const problem *pb, double *out)
{
    size_t D = pb->dim;
    if (pb->kind == PB_INPAINT) {
        for (size_t b = 0; b < pb->batch; b++) {
            const double *m = mask_row(pb, b), *d = pb->data + b * D;
            double *xm = out + b * D;
            for (size_t i = 0; i < D; i++)
                if (m[i] != 0.0)
                    xm[i] = d[i];
        }
        return SDE_OK;
    }
    if (pb->kind == PB_COLOR) {
        size_t P = pb->pixels;
        for (size_t b = 0; b < pb->batch; b++) {
            double *xm = out + b * D;
            for (size_t p = 0; p < P; p++) {
                double px[3] = {xm[p], xm[P + p], xm[2 * P + p]}, u[3], q[3];
                decouple1(pb->M, px, u);
                u[0] = gray_lum(pb, b, p);
                decouple1(pb->iM, u, q);
                xm[p] = q[0], xm[P + p] = q[1], xm[2 * P + p] = q[2];
            }
        }
        return SDE_OK;
    }
    if (v->sigma_y > 0.0)
        return SDE_OK; /* noisy measurements: the prior decides at s = 0 */
    return linear_step(v, pb, out, NULL, 1.0, 0.0, v->lambda, pb->func);
}

/* The initial state in v->x: the prior, with the known part set as configured. */
static int init_state(sde_inverse *v, const problem *pb, sde_noise *noise, size_t offset)
{
    size_t D = pb->dim;
    int rc = sde_process_prior_sample(v->process, noise, v->x, pb->batch, D, offset);
    if (rc != SDE_OK) {
        char inner[512];
        snprintf(inner, sizeof inner, "%s", sde_last_error());
        return sde__fail(rc, pb->func, "drawing the prior sample: %s", inner);
    }
    if (v->known_noise || pb->kind == PB_LINEAR || v->method == SDE_CTRL_SMC)
        return SDE_OK;
    if (pb->kind == PB_INPAINT) {
        for (size_t b = 0; b < pb->batch; b++) {
            const double *m = mask_row(pb, b), *d = pb->data + b * D;
            double *x = v->x + b * D;
            for (size_t i = 0; i < D; i++)
                x[i] = d[i] * m[i] + x[i] * (1.0 - m[i]); /* the reference's expression */
        }
        return SDE_OK;
    }
    size_t P = pb->pixels;
    for (size_t b = 0; b < pb->batch; b++) {
        double *x = v->x + b * D;
        for (size_t p = 0; p < P; p++) {
            double px[3] = {x[p], x[P + p], x[2 * P + p]}, u[3], q[3];
            if (v->reference) {
                /* R31: decouple(gray) mask + decouple(prior (1 - mask)), the mask applied in
                 * pixel space: the luminance also gets the prior's channels 1 and 2 */
                px[0] = 0.0;
                decouple1(pb->M, px, u);
                u[0] = gray_lum(pb, b, p) + u[0];
            } else {
                decouple1(pb->M, px, u);
                u[0] = gray_lum(pb, b, p);
            }
            decouple1(pb->iM, u, q);
            x[p] = q[0], x[P + p] = q[1], x[2 * P + p] = q[2];
        }
    }
    return SDE_OK;
}

static double grid_time(const sde_inverse *v, int64_t k)
{
    if (k >= v->steps)
        return 0.0;
    return sde__linspace_at(sde_process_t_end(v->process), v->eps, v->steps, k);
}

/* The start of grid step k: the progress callback, the batch's times, the corrector. */
static int begin_step(sde_inverse *v, sde_model *model, sde_noise *noise, int64_t k,
                      size_t batch, size_t D, size_t offset)
{
    double tk = grid_time(v, k);
    if (v->progress != NULL && v->progress((size_t)k, tk, v->progress_user) != 0)
        return SDE_ABORTED;
    for (size_t b = 0; b < batch; b++)
        v->tb[b] = tk;
    return sde_corrector_step(v->corr, model, noise, v->tb, v->x, NULL, batch, D, offset);
}

static int run_steps(sde_inverse *v, const problem *pb, sde_model *model, sde_noise *noise,
                     size_t offset)
{
    size_t batch = pb->batch, D = pb->dim;
    SDE__CHECK(init_state(v, pb, noise, offset));
    for (int64_t k = 0; k < v->steps; k++) {
        double tk = grid_time(v, k), tn = grid_time(v, k + 1);
        SDE__CHECK(begin_step(v, model, noise, k, batch, D, offset));
        int last = k == v->steps - 1;
        SDE__CHECK(project(v, pb, noise, offset, tk, 0));
        SDE__CHECK(sde_predictor_step(v->pred, model, noise, v->tb, tn - tk, v->x,
                                      last ? v->xm : NULL, batch, D, offset));
        SDE__CHECK(project(v, pb, noise, offset, tk, last && v->denoise && v->reference));
    }
    if (v->denoise && !v->reference)
        SDE__CHECK(final_mean(v, pb, v->xm));
    return SDE_OK;
}

/* ---- twisted SMC (SDE_CTRL_SMC) ----------------------------------------------------------- */

/* Log-twisting of every row at time t into out[]: -|K(x0hat) - y|^2 / (2 tau^2) with
 * tau^2 = s^2/a^2 + sigma_y^2, x0hat the model's Tweedie denoiser (one model call). */
static int twist(sde_inverse *v, const problem *pb, sde_model *model, double t, double *out)
{
    const char *func = pb->func;
    size_t batch = pb->batch, D = pb->dim;
    double a, s;
    SDE__CHECK(sde__process_marginal_at(v->process, t, &a, &s, func));
    for (size_t b = 0; b < batch; b++)
        v->tb[b] = t;
    int rc = sde_model_eval(model, v->tb, v->x, NULL, NULL, v->x0, NULL, batch, D);
    if (rc != SDE_OK) {
        char inner[512];
        snprintf(inner, sizeof inner, "%s", sde_last_error());
        return sde__fail(rc, func, "evaluating the twisting: %s", inner);
    }
    double tau2 = (s / a) * (s / a) + (pb->kind == PB_LINEAR ? v->sigma_y * v->sigma_y : 0.0);
    if (pb->kind == PB_LINEAR)
        SDE__CHECK(op_call(v, v->A, v->x0, v->ya, batch, D, v->m, "the operator A", func));
    for (size_t b = 0; b < batch; b++) {
        double r2 = 0.0;
        const double *x0 = v->x0 + b * D;
        if (pb->kind == PB_INPAINT) {
            const double *m = mask_row(pb, b), *d = pb->data + b * D;
            for (size_t i = 0; i < D; i++)
                if (m[i] != 0.0)
                    r2 += (x0[i] - d[i]) * (x0[i] - d[i]);
        } else if (pb->kind == PB_COLOR) {
            size_t P = pb->pixels;
            for (size_t q = 0; q < P; q++) {
                double lum = x0[q] * pb->M[0] + x0[P + q] * pb->M[3] + x0[2 * P + q] * pb->M[6];
                r2 += (lum - gray_lum(pb, b, q)) * (lum - gray_lum(pb, b, q));
            }
        } else {
            const double *ax = v->ya + b * v->m, *y = pb->y + b * v->m;
            for (size_t i = 0; i < v->m; i++)
                r2 += (ax[i] - y[i]) * (ax[i] - y[i]);
        }
        out[b] = -r2 / (2.0 * tau2);
    }
    return SDE_OK;
}

/* Systematic resampling of group [g0, g0 + G) when its effective sample size is below
 * ess * G (or always with force): rows of v->x and v->lt are gathered, log-weights reset. */
static void resample_group(sde_inverse *v, size_t g0, size_t G, size_t D, int force)
{
    double mx = -INFINITY, sum = 0.0, sum2 = 0.0;
    for (size_t i = g0; i < g0 + G; i++)
        mx = fmax(mx, v->lw[i]);
    for (size_t i = g0; i < g0 + G; i++) {
        double e = exp(v->lw[i] - mx);
        sum += e;
        sum2 += e * e;
    }
    if (!force && sum * sum >= v->ess * (double)G * sum2)
        return;
    double c = 0.0, u0 = v->u[g0];
    size_t j = g0;
    for (size_t k = 0; k < G; k++) { /* row g0 + k takes the particle where (u0 + k)/G falls */
        double target = (u0 + (double)k) / (double)G * sum;
        while (j + 1 < g0 + G && c + exp(v->lw[j] - mx) <= target)
            c += exp(v->lw[j++] - mx);
        v->idx[g0 + k] = j;
    }
    for (size_t k = g0; k < g0 + G; k++) {
        memcpy(v->w + k * D, v->x + v->idx[k] * D, D * sizeof *v->w);
        v->u[k] = v->lt[v->idx[k]]; /* u is free once the group's draw is read */
    }
    memcpy(v->x + g0 * D, v->w + g0 * D, G * D * sizeof *v->x);
    for (size_t k = g0; k < g0 + G; k++) {
        v->lt[k] = v->u[k];
        v->lw[k] = 0.0;
    }
}

/* The SMC chain: unconditional corrector and predictor steps, reweighting by the twisting
 * after each predictor step to t_{k+1} >= eps, resampling by group, a forced resampling
 * before the last step (eps -> 0), then the observation imposed on the output. */
static int run_smc(sde_inverse *v, const problem *pb, sde_model *model, sde_noise *noise,
                   size_t offset)
{
    size_t batch = pb->batch, D = pb->dim;
    size_t G = v->particles == 0 ? batch : (size_t)v->particles;
    SDE__CHECK(init_state(v, pb, noise, offset));
    SDE__CHECK(twist(v, pb, model, grid_time(v, 0), v->lt));
    for (size_t b = 0; b < batch; b++)
        v->lw[b] = 0.0;
    for (int64_t k = 0; k < v->steps; k++) {
        double tk = grid_time(v, k), tn = grid_time(v, k + 1);
        SDE__CHECK(begin_step(v, model, noise, k, batch, D, offset));
        int last = k == v->steps - 1;
        SDE__CHECK(sde_predictor_step(v->pred, model, noise, v->tb, tn - tk, v->x,
                                      last ? v->xm : NULL, batch, D, offset));
        if (last)
            break;
        SDE__CHECK(twist(v, pb, model, tn, v->z));
        for (size_t b = 0; b < batch; b++) {
            v->lw[b] += v->z[b] - v->lt[b];
            v->lt[b] = v->z[b];
        }
        SDE__CHECK(sde_noise_uniform(noise, v->u, batch, 1, offset));
        for (size_t g0 = 0; g0 < batch; g0 += G)
            resample_group(v, g0, G, D, k == v->steps - 2);
    }
    return final_mean(v, pb, v->denoise ? v->xm : v->x);
}

/* SMC groups must be whole and share one observation (resampling mixes their rows). */
static int check_groups(const sde_inverse *v, const problem *pb)
{
    size_t G = v->particles == 0 ? pb->batch : (size_t)v->particles, D = pb->dim;
    if (pb->batch % G != 0)
        return sde__fail(SDE_E_DIM, pb->func, "batch (%zu) is not a multiple of "
                         "SDE_OPT_CTRL_PARTICLES (%zu)", pb->batch, G);
    for (size_t b = 0; b < pb->batch; b++) {
        size_t b0 = b - b % G;
        int same = 1;
        if (pb->kind == PB_INPAINT) {
            const double *m = mask_row(pb, b), *m0 = mask_row(pb, b0);
            for (size_t i = 0; i < D; i++)
                same &= m[i] == m0[i] && (m[i] == 0.0 || pb->data[b * D + i] ==
                                                             pb->data[b0 * D + i]);
        } else if (pb->kind == PB_COLOR) {
            same = memcmp(pb->data + b * D, pb->data + b0 * D, D * sizeof *pb->data) == 0;
        } else {
            same = memcmp(pb->y + b * v->m, pb->y + b0 * v->m, v->m * sizeof *pb->y) == 0;
        }
        if (!same)
            return sde__fail(SDE_E_INVALID, pb->func, "rows %zu and %zu of SMC group %zu have "
                             "different observations", b0, b, b / G);
    }
    return SDE_OK;
}

static int check_run(const sde_inverse *v, const sde_model *model, const sde_noise *noise,
                     const double *x_out, size_t batch, size_t dim, const char *func)
{
    SDE__CHECK(check_handle(v, func));
    SDE__CHECK(sde__check_ptr(model, func, "model"));
    SDE__CHECK(sde__check_ptr(noise, func, "noise"));
    SDE__CHECK(sde__check_ptr(x_out, func, "x_out"));
    if (batch < 1 || batch > v->max_batch)
        return sde__fail(SDE_E_DIM, func, "batch (%zu) is not in [1, max_batch = %zu]", batch,
                         v->max_batch);
    if (dim != v->dim)
        return sde__fail(SDE_E_DIM, func, "dim (%zu) differs from the sampler's dim (%zu)", dim,
                         v->dim);
    if (sde_model_dim(model) != dim)
        return sde__fail(SDE_E_DIM, func, "the model's dim (%zu) differs from dim (%zu)",
                         sde_model_dim(model), dim);
    double T = sde_process_t_end(v->process);
    if (v->steps > 1 && !(v->eps < T))
        return sde__fail(SDE_E_INVALID, func, "SDE_OPT_CTRL_EPS (%.17g) must be < T (%.17g)",
                         v->eps, T);
    return SDE_OK;
}

static int run(sde_inverse *v, const problem *pb, sde_model *model, sde_noise *noise,
               double *x_out, size_t offset)
{
    if (v->pred != NULL && sde_predictor_kind(v->pred) != SDE_PREDICTOR_NONE)
        SDE__CHECK(sde_model_reserve(model, v->max_batch));
    if (v->method == SDE_CTRL_SMC) {
        if (v->reference)
            return sde__fail(SDE_E_INVALID, pb->func, "SDE_OPT_CTRL_REFERENCE applies to the "
                             "replacement method only (SDE_OPT_CTRL_METHOD is SDE_CTRL_SMC)");
        SDE__CHECK(check_groups(v, pb));
        SDE__CHECK(sde_model_reserve(model, v->max_batch));
    }
    uint64_t counter = sde_noise_counter(noise), calls0 = sde_model_num_calls(model);
    v->busy = 1;
    int rc = v->method == SDE_CTRL_SMC ? run_smc(v, pb, model, noise, offset)
                                       : run_steps(v, pb, model, noise, offset);
    v->busy = 0;
    v->calls = sde_model_num_calls(model) - calls0;
    if (rc != SDE_OK) {
        if (sde_noise_counter(noise) != counter)
            sde_noise_set_counter(noise, counter);
        return rc;
    }
    memcpy(x_out, v->denoise ? v->xm : v->x, pb->batch * pb->dim * sizeof *x_out);
    return SDE_OK;
}

int sde_inverse_inpaint(sde_inverse *inverse, sde_model *model, sde_noise *noise,
                        const double *data, const double *mask, size_t mask_rows, double *x_out,
                        size_t batch, size_t dim, size_t sample_offset)
{
    const char *func = __func__;
    SDE__CHECK(check_run(inverse, model, noise, x_out, batch, dim, func));
    SDE__CHECK(sde__check_ptr(data, func, "data"));
    SDE__CHECK(sde__check_ptr(mask, func, "mask"));
    if (mask_rows != 1 && mask_rows != batch)
        return sde__fail(SDE_E_DIM, func, "mask_rows (%zu) must be 1 or batch (%zu)", mask_rows,
                         batch);
    for (size_t i = 0; i < mask_rows * dim; i++)
        if (mask[i] != 0.0 && mask[i] != 1.0)
            return sde__fail(SDE_E_INVALID, func, "mask[%zu] (row %zu, element %zu) is %g: the "
                             "mask must be binary (0 unknown, 1 known)", i, i / dim, i % dim,
                             mask[i]);
    for (size_t b = 0; b < batch; b++) {
        const double *m = mask + (mask_rows == 1 ? 0 : b) * dim;
        for (size_t i = 0; i < dim; i++)
            if (m[i] != 0.0 && !isfinite(data[b * dim + i]))
                return sde__fail(SDE_E_INVALID, func, "data[%zu] (sample %zu, element %zu, "
                                 "known) is %g", b * dim + i, b, i, data[b * dim + i]);
    }
    problem pb = {.kind = PB_INPAINT, .data = data, .mask = mask, .mask_rows = mask_rows,
                  .batch = batch, .dim = dim, .func = func};
    return run(inverse, &pb, model, noise, x_out, sample_offset);
}

int sde_inverse_colorize(sde_inverse *inverse, sde_model *model, sde_noise *noise,
                         const double *gray, const double *M, const double *invM,
                         double *x_out, size_t batch, size_t channels, size_t pixels,
                         size_t sample_offset)
{
    const char *func = __func__;
    if (channels != 3)
        return sde__fail(SDE_E_DIM, func, "channels (%zu) must be 3: the colour transform acts "
                         "on RGB", channels);
    SDE__CHECK(sde__check_size(pixels, func, "pixels"));
    if (pixels > SIZE_MAX / 3)
        return sde__fail(SDE_E_DIM, func, "pixels (%zu) is too large", pixels);
    size_t dim = 3 * pixels;
    SDE__CHECK(check_run(inverse, model, noise, x_out, batch, dim, func));
    SDE__CHECK(sde__check_ptr(gray, func, "gray"));
    if ((M == NULL) != (invM == NULL))
        return sde__fail(SDE_E_INVALID, func, "M and invM must both be given or both be NULL");
    problem pb = {.kind = PB_COLOR, .data = gray, .pixels = pixels, .batch = batch, .dim = dim,
                  .func = func};
    if (M == NULL) {
        sde_colorize_matrices(pb.M, pb.iM);
    } else {
        for (int i = 0; i < 9; i++) {
            if (!isfinite(M[i]))
                return sde__fail(SDE_E_INVALID, func, "M[%d] is %g", i, M[i]);
            if (!isfinite(invM[i]))
                return sde__fail(SDE_E_INVALID, func, "invM[%d] is %g", i, invM[i]);
        }
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                double e = M[3 * i] * invM[j] + M[3 * i + 1] * invM[3 + j] +
                           M[3 * i + 2] * invM[6 + j];
                if (fabs(e - (i == j ? 1.0 : 0.0)) > 1e-6)
                    return sde__fail(SDE_E_INVALID, func, "invM is not the inverse of M: "
                                     "(M invM)[%d][%d] = %.17g", i, j, e);
            }
        memcpy(pb.M, M, sizeof pb.M);
        memcpy(pb.iM, invM, sizeof pb.iM);
    }
    size_t bad = sde__find_nonfinite(batch * dim, gray);
    if (bad < batch * dim)
        return sde__fail(SDE_E_INVALID, func, "gray[%zu] is %g", bad, gray[bad]);
    return run(inverse, &pb, model, noise, x_out, sample_offset);
}

int sde_inverse_solve(sde_inverse *inverse, sde_model *model, sde_noise *noise, const double *y,
                      size_t m, double *x_out, size_t batch, size_t dim, size_t sample_offset)
{
    const char *func = __func__;
    SDE__CHECK(check_run(inverse, model, noise, x_out, batch, dim, func));
    SDE__CHECK(sde__check_ptr(y, func, "y"));
    if (inverse->A == NULL)
        return sde__fail(SDE_E_STATE, func, "no operator: call sde_inverse_set_operator() first");
    if (m != inverse->m)
        return sde__fail(SDE_E_DIM, func, "m (%zu) differs from the operator's m (%zu)", m,
                         inverse->m);
    size_t bad = sde__find_nonfinite(batch * m, y);
    if (bad < batch * m)
        return sde__fail(SDE_E_INVALID, func, "y[%zu] is %g", bad, y[bad]);
    problem pb = {.kind = PB_LINEAR, .y = y, .batch = batch, .dim = dim, .func = func};
    return run(inverse, &pb, model, noise, x_out, sample_offset);
}
