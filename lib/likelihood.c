/* The likelihood (log p in nats, bits/dim) along the probability-flow ODE: an sde_ode_solver
 * over augmented rows [x (D values) | delta_1 .. delta_k] whose right-hand side is
 * sde_process_reverse(probability_flow = 1) of sde_model_score() for x, and the divergence
 * estimate for each delta (Hutchinson probes or the exact trace, with the host's JVP or central
 * finite differences of the score). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "model_impl.h"
#include "ode_impl.h"

struct sde_likelihood {
    sde_model *model;            /* borrowed */
    const sde_process *process;  /* the model's own copy */
    int method, custom;
    size_t max_batch, dim;

    /* options */
    int divergence, jvp, bits, dequantize, reference;
    int64_t probes;
    double eps, T, scale, shift, fd_step;

    /* allocation-dependent shape: row width and number of probe buffers */
    size_t width, nprobe;
    sde_ode_solver *solver;
    double *block;
    double *y;                            /* max_batch x width: the augmented state */
    double *x, *score, *drift, *jv, *sm;  /* max_batch x D each */
    double *probe;                        /* nprobe x max_batch x D */
    double *c, *g2, *h, *qs, *qf, *ones, *plog; /* max_batch each */

    /* during a run */
    int use_host_jvp, status, busy;
    size_t run_batch;
    uint64_t nfe, score_calls, jvp_calls;
};

enum { ROW_ARRAYS = 7, D_BUFFERS = 5 };

/* ---- scratch --------------------------------------------------------------------------- */

static size_t width_for(const sde_likelihood *l, int divergence, int64_t probes)
{
    return l->dim + (divergence == SDE_LIK_EXACT_TRACE ? 1 : (size_t)probes);
}

static size_t nprobe_for(int divergence, int64_t probes)
{
    return divergence == SDE_LIK_EXACT_TRACE ? 1 : (size_t)probes;
}

/* Copy every solver option of `from` to `to`. */
static void copy_solver_options(const sde_ode_solver *from, sde_ode_solver *to, const char *func)
{
    for (int opt = 300; opt < 400; opt++)
        if (sde__ode_solver_option(opt)) {
            int64_t v;
            if (sde__ode_get_int(from, opt, &v, func) == SDE_OK)
                sde__ode_set_int(to, opt, v, func);
        }
    for (int opt = 1200; opt < 1300; opt++)
        if (sde__ode_solver_option(opt)) {
            double v;
            if (sde__ode_get_real(from, opt, &v, func) == SDE_OK)
                sde__ode_set_real(to, opt, v, func);
        }
}

/* (Re)allocate the solver and the scratch for `divergence` and `probes`; on failure the old
 * ones stay. */
static int configure(sde_likelihood *l, int divergence, int64_t probes, const char *func)
{
    size_t W = width_for(l, divergence, probes), np = nprobe_for(divergence, probes);
    if (l->solver != NULL && W == l->width && np == l->nprobe)
        return SDE_OK;
    size_t mb = l->max_batch, D = l->dim;
    /* y: mb*W, D buffers: (5 + np) mb*D, rows: 7 mb */
    if (W > SIZE_MAX / sizeof(double) / mb || np + D_BUFFERS > SIZE_MAX / sizeof(double) / mb / D)
        return sde__fail(SDE_E_DIM, func, "max_batch (%zu) x dim (%zu) x %zu probes is too large",
                         mb, D, np);
    size_t total = mb * W, dsz = mb * D;
    if ((np + D_BUFFERS) * dsz > SIZE_MAX / sizeof(double) - total - ROW_ARRAYS * mb)
        return sde__fail(SDE_E_DIM, func, "max_batch (%zu) x dim (%zu) x %zu probes is too large",
                         mb, D, np);
    total += (np + D_BUFFERS) * dsz + ROW_ARRAYS * mb;

    sde_ode_solver *solver = NULL;
    int rc = sde_ode_solver_new(&solver, l->method, mb, W);
    if (rc != SDE_OK)
        return rc;
    double *block = sde__malloc_array(total, sizeof(double));
    if (block == NULL) {
        sde_ode_solver_free(solver);
        return sde__fail(SDE_E_NOMEM, func,
                         "cannot allocate %zu doubles of scratch (max_batch %zu, dim %zu, "
                         "%zu probe buffers)", total, mb, D, np);
    }
    if (l->solver != NULL)
        copy_solver_options(l->solver, solver, func);
    sde_ode_solver_free(l->solver);
    sde__free(l->block);
    l->solver = solver;
    l->block = block;
    l->width = W;
    l->nprobe = np;
    double *p = block;
    l->y = p, p += mb * W;
    l->x = p, p += dsz;
    l->score = p, p += dsz;
    l->drift = p, p += dsz;
    l->jv = p, p += dsz;
    l->sm = p, p += dsz;
    l->probe = p, p += np * dsz;
    l->c = p, p += mb;
    l->g2 = p, p += mb;
    l->h = p, p += mb;
    l->qs = p, p += mb;
    l->qf = p, p += mb;
    l->ones = p, p += mb;
    l->plog = p;
    for (size_t b = 0; b < mb; b++)
        l->ones[b] = 1.0;
    return SDE_OK;
}

/* The model's JVP result buffer, sized for max_batch now so that runs never allocate (the
 * adapter would otherwise grow it on its first JVP call). */
static int reserve_model_jv(sde_model *m, size_t max_batch, const char *func)
{
    if (m->jv_cap >= max_batch)
        return SDE_OK;
    double *jv = sde__malloc_array(max_batch * m->dim, sizeof *jv);
    if (jv == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the model's JVP scratch (%zu x %zu)",
                         max_batch, m->dim);
    sde__free(m->jv);
    m->jv = jv;
    m->jv_cap = max_batch;
    return SDE_OK;
}

void sde_likelihood_free(sde_likelihood *lik)
{
    if (lik == NULL)
        return;
    sde_ode_solver_free(lik->solver);
    sde__free(lik->block);
    sde__free(lik);
}

int sde_likelihood_new(sde_likelihood **out, sde_model *model, int method, size_t max_batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(out, func, "out"));
    *out = NULL;
    if (model != NULL && model->busy)
        return sde__fail(SDE_E_STATE, func, "the model is busy (called from its callback)");
    /* rows of the augmented state: dim values and the log-density change */
    size_t dim = model != NULL ? sde_model_dim(model) : 0;
    SDE__CHECK(sde__ode_driver_args(model, method, max_batch, dim + 1, func));
    SDE__CHECK(reserve_model_jv(model, max_batch, func));

    sde_likelihood *l = sde__calloc(1, sizeof *l);
    if (l == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the likelihood");
    l->model = model;
    l->process = sde_model_process(model);
    l->custom = sde_process_kind(l->process) == SDE_PROCESS_CUSTOM;
    l->method = method;
    l->max_batch = max_batch;
    l->dim = dim;
    l->divergence = SDE_LIK_HUTCHINSON_RADEMACHER;
    l->jvp = SDE_LIK_JVP_AUTO;
    l->probes = 1;
    l->bits = 8;
    l->T = sde_process_t_end(l->process);
    l->eps = 1e-5 < l->T ? 1e-5 : 1e-5 * l->T;
    l->scale = 1.0;
    l->shift = 0.0;
    l->fd_step = 0.0;
    int rc = configure(l, l->divergence, l->probes, func);
    if (rc != SDE_OK) {
        sde_likelihood_free(l);
        return rc;
    }
    *out = l;
    return SDE_OK;
}

/* ---- options --------------------------------------------------------------------------- */

/* The type of a likelihood option (getters: no bounds to check). */
static int check_type(int option, int type, const char *func)
{
    if (sde_option_type(option) == type)
        return SDE_OK;
    return sde__ode_option_check(option, type, 0.0, func); /* fails, naming the right setter */
}

static int check_idle(const sde_likelihood *l, const char *func)
{
    SDE__CHECK(sde__check_ptr(l, func, "lik"));
    if (l->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the likelihood is busy: the network must not call back into it");
    return SDE_OK;
}

static int is_lik_option(int option)
{
    return (option >= SDE_OPT_LIK_DIVERGENCE && option <= SDE_OPT_LIK_REFERENCE_MODE) ||
           (option >= SDE_OPT_LIK_EPS && option <= SDE_OPT_LIK_FD_STEP);
}

static int not_for_lik(int option, const char *func)
{
    const char *name = sde_option_name(option);
    if (name == NULL)
        return sde__fail(SDE_E_INVALID, func, "option (%d) is not a known option", option);
    return sde__fail(SDE_E_INVALID, func, "option %s (%d) does not apply to the likelihood", name,
                     option);
}

int sde_likelihood_set_int(sde_likelihood *lik, int option, int64_t value)
{
    const char *func = __func__;
    SDE__CHECK(check_idle(lik, func));
    if (is_lik_option(option)) {
        SDE__CHECK(sde__ode_option_check(option, SDE_OPTION_INT, (double)value, func));
        switch (option) {
        case SDE_OPT_LIK_DIVERGENCE:
            SDE__CHECK(configure(lik, (int)value, lik->probes, func));
            lik->divergence = (int)value;
            break;
        case SDE_OPT_LIK_PROBES:
            SDE__CHECK(configure(lik, lik->divergence, value, func));
            lik->probes = value;
            break;
        case SDE_OPT_LIK_JVP: lik->jvp = (int)value; break;
        case SDE_OPT_LIK_BITS: lik->bits = (int)value; break;
        case SDE_OPT_LIK_DEQUANTIZE: lik->dequantize = (int)value; break;
        default: lik->reference = (int)value; break; /* SDE_OPT_LIK_REFERENCE_MODE */
        }
        return SDE_OK;
    }
    if (!sde__ode_solver_option(option))
        return not_for_lik(option, func);
    return sde__ode_set_int(lik->solver, option, value, func);
}

int sde_likelihood_set_real(sde_likelihood *lik, int option, double value)
{
    const char *func = __func__;
    SDE__CHECK(check_idle(lik, func));
    if (is_lik_option(option)) {
        SDE__CHECK(sde__ode_option_check(option, SDE_OPTION_REAL, value, func));
        switch (option) {
        case SDE_OPT_LIK_EPS:
            if (!(value < lik->T))
                return sde__fail(SDE_E_INVALID, func,
                                 "SDE_OPT_LIK_EPS (%.17g) must be below the process's T (%.17g)",
                                 value, lik->T);
            lik->eps = value;
            break;
        case SDE_OPT_LIK_DATA_SCALE: lik->scale = value; break;
        case SDE_OPT_LIK_DATA_SHIFT: lik->shift = value; break;
        default: lik->fd_step = value; break; /* SDE_OPT_LIK_FD_STEP */
        }
        return SDE_OK;
    }
    if (!sde__ode_solver_option(option))
        return not_for_lik(option, func);
    return sde__ode_set_real(lik->solver, option, value, func);
}

int sde_likelihood_get_int(const sde_likelihood *lik, int option, int64_t *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(lik, func, "lik"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    if (is_lik_option(option)) {
        SDE__CHECK(check_type(option, SDE_OPTION_INT, func));
        switch (option) {
        case SDE_OPT_LIK_DIVERGENCE: *value = lik->divergence; break;
        case SDE_OPT_LIK_PROBES: *value = lik->probes; break;
        case SDE_OPT_LIK_JVP: *value = lik->jvp; break;
        case SDE_OPT_LIK_BITS: *value = lik->bits; break;
        case SDE_OPT_LIK_DEQUANTIZE: *value = lik->dequantize; break;
        default: *value = lik->reference; break;
        }
        return SDE_OK;
    }
    if (!sde__ode_solver_option(option))
        return not_for_lik(option, func);
    return sde__ode_get_int(lik->solver, option, value, func);
}

int sde_likelihood_get_real(const sde_likelihood *lik, int option, double *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(lik, func, "lik"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    if (is_lik_option(option)) {
        SDE__CHECK(check_type(option, SDE_OPTION_REAL, func));
        switch (option) {
        case SDE_OPT_LIK_EPS: *value = lik->eps; break;
        case SDE_OPT_LIK_DATA_SCALE: *value = lik->scale; break;
        case SDE_OPT_LIK_DATA_SHIFT: *value = lik->shift; break;
        default: *value = lik->fd_step > 0.0 ? lik->fd_step : cbrt(DBL_EPSILON); break;
        }
        return SDE_OK;
    }
    if (!sde__ode_solver_option(option))
        return not_for_lik(option, func);
    return sde__ode_get_real(lik->solver, option, value, func);
}

static double offset_of(const sde_likelihood *l)
{
    if (l->reference)
        return 7.0 - (l->shift - l->scale); /* 7 - inverse_scaler(-1) */
    return (double)l->bits + log2(l->scale);
}

int sde_likelihood_bpd_offset(const sde_likelihood *lik, double *offset)
{
    SDE__CHECK(sde__check_ptr(lik, __func__, "lik"));
    SDE__CHECK(sde__check_ptr(offset, __func__, "offset"));
    *offset = offset_of(lik);
    return SDE_OK;
}

int sde_likelihood_get_nfe(const sde_likelihood *lik, uint64_t *nfe)
{
    SDE__CHECK(sde__check_ptr(lik, __func__, "lik"));
    SDE__CHECK(sde__check_ptr(nfe, __func__, "nfe"));
    *nfe = lik->nfe;
    return SDE_OK;
}

int sde_likelihood_get_calls(const sde_likelihood *lik, uint64_t *score_calls,
                             uint64_t *jvp_calls)
{
    SDE__CHECK(sde__check_ptr(lik, __func__, "lik"));
    if (score_calls != NULL)
        *score_calls = lik->score_calls;
    if (jvp_calls != NULL)
        *jvp_calls = lik->jvp_calls;
    return SDE_OK;
}

const sde_ode_solver *sde_likelihood_solver(const sde_likelihood *lik)
{
    return lik ? lik->solver : NULL;
}

/* ---- the augmented right-hand side ----------------------------------------------------- */

/* A library status inside the RHS: keep it for compute() to return, and hand its message to
 * the solver, which reports "right-hand side returned -1: <message>". */
static int rhs_failed(sde_likelihood *l, int status)
{
    l->status = status;
    sde_set_error_message(sde_last_error());
    return -1;
}

/* score(x) -> out, counting; a recoverable (> 0) network status is passed on to the solver. */
static int score_at(sde_likelihood *l, const double *t, const double *x, double *out,
                    size_t batch)
{
    int rc = sde__model_score_into(l->model, t, x, out, batch, l->dim, "sde_model_score");
    l->score_calls++;
    if (rc == SDE_OK)
        return 0;
    if (rc == SDE_E_CALLBACK && l->model->last_net_rc > 0)
        return l->model->last_net_rc;
    return rhs_failed(l, rc);
}

/* xp = x + sign h v, row by row. */
static void shift_rows(const sde_likelihood *l, const double *v, double sign, size_t batch)
{
    size_t D = l->dim;
    for (size_t b = 0; b < batch; b++) {
        double hb = sign * l->h[b];
        const double *xb = l->x + b * D, *vb = v + b * D;
        double *pb = l->drift + b * D;
        for (size_t i = 0; i < D; i++)
            pb[i] = xb[i] + hb * vb[i];
    }
}

/* jv = J_score v for every row (host JVP or central differences; the drift buffer serves as
 * the perturbed state). */
static int jvp(sde_likelihood *l, const double *t, const double *v, size_t batch)
{
    size_t D = l->dim;
    if (l->use_host_jvp) {
        int rc = sde_model_score_jvp(l->model, t, l->x, v, l->jv, batch, D);
        l->jvp_calls++;
        return rc == SDE_OK ? 0 : rhs_failed(l, rc);
    }
    shift_rows(l, v, 1.0, batch);
    int rc = score_at(l, t, l->drift, l->jv, batch);
    if (rc != 0)
        return rc;
    shift_rows(l, v, -1.0, batch);
    rc = score_at(l, t, l->drift, l->sm, batch);
    if (rc != 0)
        return rc;
    for (size_t b = 0; b < batch; b++) {
        double inv = 0.5 / l->h[b];
        double *jb = l->jv + b * D;
        const double *mb = l->sm + b * D;
        for (size_t i = 0; i < D; i++)
            jb[i] = (jb[i] - mb[i]) * inv;
    }
    return 0;
}

/* qf[b] = v_b^T J_f v_b for a custom drift, by central differences (uses drift, sm, jv). */
static int drift_quad_custom(sde_likelihood *l, const double *t, const double *v, size_t batch)
{
    size_t D = l->dim;
    shift_rows(l, v, 1.0, batch);
    int rc = sde_process_drift(l->process, t, l->drift, l->sm, batch, D);
    if (rc != SDE_OK)
        return rhs_failed(l, rc);
    shift_rows(l, v, -1.0, batch);
    rc = sde_process_drift(l->process, t, l->drift, l->jv, batch, D);
    if (rc != SDE_OK)
        return rhs_failed(l, rc);
    for (size_t b = 0; b < batch; b++) {
        const double *vb = v + b * D, *pb = l->sm + b * D, *mb = l->jv + b * D;
        /* v.(p - m), differencing first (p and m are close) with lane partials */
        double part[SDE__LANES] = {0.0};
        size_t i = 0;
        for (; i + SDE__LANES <= D; i += SDE__LANES)
            for (int j = 0; j < SDE__LANES; j++)
                part[j] += vb[i + j] * (pb[i + j] - mb[i + j]);
        for (int j = 0; i < D; i++, j++)
            part[j] += vb[i] * (pb[i] - mb[i]);
        l->qf[b] = sde__lanes_sum(part) * 0.5 / l->h[b];
    }
    return 0;
}

/* The divergence estimate of one probe v (rows of the batch) into qs (score part v^T J_s v)
 * and qf (drift part v^T J_f v). */
static int probe_quads(sde_likelihood *l, const double *t, const double *v, size_t batch)
{
    size_t D = l->dim;
    int rc = jvp(l, t, v, batch);
    if (rc != 0)
        return rc;
    for (size_t b = 0; b < batch; b++) {
        const double *vb = v + b * D, *jb = l->jv + b * D;
        l->qs[b] = sde__dot_fixed(D, vb, jb);
        if (!l->custom)
            l->qf[b] = l->c[b] * sde__dot_fixed(D, vb, vb);
    }
    return l->custom ? drift_quad_custom(l, t, v, batch) : 0;
}

static int lik_rhs(const double *t, const double *y, double *dydt, size_t batch, size_t W,
                   void *user)
{
    sde_likelihood *l = user;
    size_t D = l->dim;
    for (size_t b = 0; b < batch; b++)
        memcpy(l->x + b * D, y + b * W, D * sizeof *y);
    int rc = score_at(l, t, l->x, l->score, batch);
    if (rc != 0)
        return rc;
    rc = sde_process_reverse(l->process, t, l->x, l->score, 1, l->drift, NULL, batch, D);
    if (rc == SDE_OK)
        rc = sde_process_diffusion(l->process, t, l->g2, batch);
    if (rc == SDE_OK && !l->custom) /* f = c(t) x: c from the drift of a 1-wide row of ones */
        rc = sde_process_drift(l->process, t, l->ones, l->c, batch, 1);
    if (rc != SDE_OK)
        return rhs_failed(l, rc);
    for (size_t b = 0; b < batch; b++) {
        memcpy(dydt + b * W, l->drift + b * D, D * sizeof *dydt);
        l->g2[b] *= l->g2[b];
    }
    if (!l->use_host_jvp || l->custom) {
        /* finite-difference steps: h = step * s(t), s the marginal std (1 if not positive) */
        double step = l->fd_step > 0.0 ? l->fd_step : cbrt(DBL_EPSILON);
        for (size_t b = 0; b < batch; b++) {
            double a, s;
            /* the model adapter has already needed the marginal at t, so it exists */
            rc = sde__process_marginal_at(l->process, t[b], &a, &s, "sde_likelihood_compute");
            if (rc != SDE_OK)
                return rhs_failed(l, rc);
            if (!(s > 0.0 && isfinite(s)))
                s = 1.0;
            l->h[b] = step * s;
        }
    }

    if (l->divergence == SDE_LIK_EXACT_TRACE) {
        double *v = l->probe;        /* all zero between uses */
        double *acc_s = l->plog;     /* free during the run */
        for (size_t b = 0; b < batch; b++) {
            acc_s[b] = 0.0;
            dydt[b * W + D] = 0.0;
        }
        for (size_t i = 0; i < D; i++) {
            for (size_t b = 0; b < batch; b++)
                v[b * D + i] = 1.0;
            rc = jvp(l, t, v, batch);
            if (rc == 0) {
                for (size_t b = 0; b < batch; b++)
                    acc_s[b] += l->jv[b * D + i];
                if (l->custom) /* (overwrites jv) */
                    rc = drift_quad_custom(l, t, v, batch);
            }
            for (size_t b = 0; b < batch; b++)
                v[b * D + i] = 0.0;
            if (rc != 0)
                return rc;
            if (l->custom)
                for (size_t b = 0; b < batch; b++)
                    dydt[b * W + D] += l->qf[b];
        }
        for (size_t b = 0; b < batch; b++) {
            double tr_f = l->custom ? dydt[b * W + D] : l->c[b] * (double)D;
            dydt[b * W + D] = tr_f - 0.5 * l->g2[b] * acc_s[b];
        }
        return 0;
    }

    size_t k = (size_t)l->probes;
    for (size_t j = 0; j < k; j++) {
        const double *v = l->probe + j * batch * D;
        rc = probe_quads(l, t, v, batch);
        if (rc != 0)
            return rc;
        for (size_t b = 0; b < batch; b++)
            dydt[b * W + D + j] = l->qf[b] - 0.5 * l->g2[b] * l->qs[b];
    }
    return 0;
}

/* ---- compute --------------------------------------------------------------------------- */

static int compute_checks(const sde_likelihood *l, const sde_noise *noise, const double *x,
                          size_t batch, size_t dim, const char *func)
{
    SDE__CHECK(check_idle(l, func));
    SDE__CHECK(sde__check_ptr(x, func, "x"));
    if (batch == 0 || batch > l->max_batch)
        return sde__fail(SDE_E_DIM, func, "batch (%zu) must be in [1, max_batch = %zu]", batch,
                         l->max_batch);
    if (dim != l->dim)
        return sde__fail(SDE_E_DIM, func, "dim (%zu) differs from the model's dim (%zu)", dim,
                         l->dim);
    size_t n = batch * dim;
    size_t bad = sde__find_nonfinite(n, x);
    if (bad < n)
        return sde__fail(SDE_E_INVALID, func, "x[%zu] (sample %zu, element %zu) is %g", bad,
                         bad / dim, bad % dim, x[bad]);
    if (l->dequantize) {
        if (l->bits == 0)
            return sde__fail(SDE_E_INVALID, func,
                             "SDE_OPT_LIK_DEQUANTIZE needs SDE_OPT_LIK_BITS >= 1 (it is 0)");
        for (size_t i = 0; i < n; i++)
            if (!(x[i] >= 0.0 && x[i] <= 1.0))
                return sde__fail(SDE_E_INVALID, func,
                                 "x[%zu] (sample %zu, element %zu) is %.17g: dequantised data "
                                 "must lie in [0, 1]", i, i / dim, i % dim, x[i]);
    }
    if (l->reference && l->probes != 1 && l->divergence != SDE_LIK_EXACT_TRACE)
        return sde__fail(SDE_E_INVALID, func,
                         "SDE_OPT_LIK_PROBES is %lld: reference mode uses a single probe",
                         (long long)l->probes);
    int hutchinson = l->divergence != SDE_LIK_EXACT_TRACE;
    if ((hutchinson || l->dequantize) && noise == NULL)
        return sde__fail(SDE_E_INVALID, func, "noise is NULL, but the %s needs draws from it",
                         hutchinson ? "Hutchinson estimator" : "dequantisation");
    if (l->jvp == SDE_LIK_JVP_HOST && !sde_model_has_jvp(l->model))
        return sde__fail(SDE_E_UNSUPPORTED, func,
                         "SDE_OPT_LIK_JVP is SDE_LIK_JVP_HOST, but the model has no JVP "
                         "callback (sde_model_set_jvp)");
    if (l->model->busy)
        return sde__fail(SDE_E_STATE, func, "the model is busy (called from its callback)");
    return SDE_OK;
}

/* Fill y (rows of width W) and draw the probes. */
static int prepare(sde_likelihood *l, sde_noise *noise, const double *x, size_t batch,
                   size_t offset)
{
    size_t D = l->dim, W = l->width;
    if (l->dequantize) {
        SDE__CHECK(sde_noise_uniform(noise, l->x, batch, D, offset));
        double levels = ldexp(1.0, l->bits); /* 2^n */
        for (size_t b = 0; b < batch; b++)
            for (size_t i = 0; i < D; i++) {
                double u = ((levels - 1.0) * x[b * D + i] + l->x[b * D + i]) / levels;
                l->y[b * W + i] = (u - l->shift) / l->scale;
            }
    } else {
        for (size_t b = 0; b < batch; b++)
            memcpy(l->y + b * W, x + b * D, D * sizeof *x);
    }
    for (size_t b = 0; b < batch; b++)
        for (size_t j = D; j < W; j++)
            l->y[b * W + j] = 0.0;
    if (l->divergence == SDE_LIK_EXACT_TRACE) {
        memset(l->probe, 0, batch * D * sizeof *l->probe);
        return SDE_OK;
    }
    int kind = l->divergence == SDE_LIK_HUTCHINSON_GAUSSIAN ? SDE_NOISE_NORMAL
                                                            : SDE_NOISE_RADEMACHER;
    for (int64_t j = 0; j < l->probes; j++)
        SDE__CHECK(sde_noise_draw(noise, kind, 0.0, l->probe + (size_t)j * batch * D, batch, D,
                                  offset));
    /* a non-finite probe would poison the estimate silently (a host noise callback) */
    size_t n = (size_t)l->probes * batch * D;
    size_t bad = sde__find_nonfinite(n, l->probe);
    if (bad < n)
        return sde__fail(SDE_E_NUMERIC, "sde_likelihood_compute",
                         "probe value %zu drawn from the noise source is %g", bad, l->probe[bad]);
    return SDE_OK;
}

int sde_likelihood_compute(sde_likelihood *lik, sde_noise *noise, const double *x, size_t batch,
                           size_t dim, size_t sample_offset, double *logp_out, double *bpd_out,
                           double *bpd_se_out, double *z_out, double *delta_out)
{
    const char *func = __func__;
    SDE__CHECK(compute_checks(lik, noise, x, batch, dim, func));
    sde_likelihood *l = lik;
    size_t D = l->dim, W = l->width;
    uint64_t counter = noise != NULL ? sde_noise_counter(noise) : 0;
    l->busy = 1;
    l->status = SDE_OK;
    l->nfe = l->score_calls = l->jvp_calls = 0;
    l->run_batch = batch;
    l->use_host_jvp = l->jvp == SDE_LIK_JVP_HOST ||
                      (l->jvp == SDE_LIK_JVP_AUTO && sde_model_has_jvp(l->model));

    int rc = prepare(l, noise, x, batch, sample_offset);
    if (rc == SDE_OK) {
        rc = sde__ode_integrate(l->solver, lik_rhs, l, l->eps, l->T, l->y, 0, NULL, NULL, batch,
                                W, l->reference ? 0 : -1, func);
        sde_ode_solver_get_nfe(l->solver, &l->nfe);
        if (rc == SDE_E_CALLBACK && l->status != SDE_OK)
            rc = l->status; /* e.g. SDE_E_NUMERIC from the model; the message says where */
    }
    if (rc == SDE_OK) {
        for (size_t b = 0; b < batch; b++)
            memcpy(l->x + b * D, l->y + b * W, D * sizeof *l->x);
        rc = sde_process_prior_logp(l->process, l->x, l->plog, batch, D);
    }
    if (rc != SDE_OK) {
        if (noise != NULL && sde_noise_counter(noise) != counter)
            sde_noise_set_counter(noise, counter);
        l->busy = 0;
        return rc;
    }

    size_t k = W - D;
    double offset = offset_of(l), per_bit = 1.0 / ((double)D * SDE__LN2);
    for (size_t b = 0; b < batch; b++) {
        const double *db = l->y + b * W + D;
        double mean = 0.0;
        for (size_t j = 0; j < k; j++)
            mean += db[j];
        mean /= (double)k;
        double se = 0.0;
        if (l->divergence != SDE_LIK_EXACT_TRACE) {
            if (k < 2) {
                se = NAN;
            } else {
                double ss = 0.0;
                for (size_t j = 0; j < k; j++)
                    ss += (db[j] - mean) * (db[j] - mean);
                se = sqrt(ss / (double)(k - 1) / (double)k) * per_bit;
            }
        }
        double logp = l->plog[b] + mean;
        if (logp_out != NULL)
            logp_out[b] = logp;
        if (bpd_out != NULL)
            bpd_out[b] = -logp * per_bit + offset;
        if (bpd_se_out != NULL)
            bpd_se_out[b] = se;
        if (delta_out != NULL)
            delta_out[b] = mean;
    }
    if (z_out != NULL)
        memcpy(z_out, l->x, batch * D * sizeof *z_out);
    l->busy = 0;
    return SDE_OK;
}
