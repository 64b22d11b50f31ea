/* The ODE solver handle: creation (all scratch), options, statistics, the argument checks of
 * the integrate functions, and the RHS call wrapper the drivers share. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ode_impl.h"

/* ---- creation ------------------------------------------------------------------------ */

void sde_ode_solver_free(sde_ode_solver *solver)
{
    if (solver == NULL)
        return;
    sde__free(solver->block);
    sde__free(solver->trow);
    sde__free(solver->gacc);
    sde__free(solver->gnext);
    sde__free(solver->gflag);
    sde__free(solver);
}

int sde_ode_solver_new(sde_ode_solver **out, int method, size_t max_batch, size_t dim)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(out, func, "out"));
    *out = NULL;
    const sde__ode_method *m = sde__ode_method_find(method);
    if (m == NULL)
        return sde__fail(SDE_E_INVALID, func, "method (%d) is not an sde_ode_method", method);
    if (max_batch == 0)
        return sde__fail(SDE_E_DIM, func, "max_batch is 0 (must be >= 1)");
    if (dim == 0)
        return sde__fail(SDE_E_DIM, func, "dim is 0 (must be >= 1)");
    size_t nb = (size_t)m->buffers;
    if (max_batch > SIZE_MAX / sizeof(double) / dim / nb)
        return sde__fail(SDE_E_DIM, func, "max_batch (%zu) x dim (%zu) is too large", max_batch,
                         dim);
    size_t n = max_batch * dim;

    sde_ode_solver *s = sde__calloc(1, sizeof *s);
    if (s == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the solver");
    s->m = m;
    s->max_batch = max_batch;
    s->dim = dim;
    s->max_steps = 100000;
    s->num_steps = 100;
    s->per_sample = 1;
    s->dense = 1;
    s->rtol = 1e-5;
    s->atol = 1e-5;
    s->t_reached = NAN;
    s->block = sde__malloc_array(n * nb, sizeof(double));
    /* per-row doubles: trow, gt, gh, ghabs, gmin, gtmp */
    s->trow = sde__malloc_array(max_batch, 6 * sizeof(double));
    s->gacc = sde__calloc(2 * max_batch, sizeof(uint64_t));
    s->gnext = sde__calloc(max_batch, sizeof(size_t));
    s->gflag = sde__calloc(max_batch, 1);
    if (s->block == NULL || s->trow == NULL || s->gacc == NULL || s->gnext == NULL ||
        s->gflag == NULL) {
        sde_ode_solver_free(s);
        return sde__fail(SDE_E_NOMEM, func,
                         "cannot allocate %zu state-sized buffers of %zu x %zu doubles", nb,
                         max_batch, dim);
    }
    for (size_t i = 0; i < nb; i++)
        s->buf[i] = s->block + i * n;
    s->gt = s->trow + max_batch;
    s->gh = s->gt + max_batch;
    s->ghabs = s->gh + max_batch;
    s->gmin = s->ghabs + max_batch;
    s->gtmp = s->gmin + max_batch;
    s->grej = s->gacc + max_batch;
    *out = s;
    return SDE_OK;
}

int sde_ode_solver_method(const sde_ode_solver *solver) { return solver ? solver->m->method : 0; }

size_t sde_ode_solver_max_batch(const sde_ode_solver *solver)
{
    return solver ? solver->max_batch : 0;
}

size_t sde_ode_solver_dim(const sde_ode_solver *solver) { return solver ? solver->dim : 0; }

/* ---- options ------------------------------------------------------------------------- */

int sde__ode_option_check(int option, int type, double value, const char *func)
{
    const char *name = sde_option_name(option);
    int have = sde_option_type(option);
    if (name == NULL || have == 0)
        return sde__fail(SDE_E_INVALID, func, "option (%d) is not a known option", option);
    if (have != type)
        return sde__fail(SDE_E_INVALID, func, "option %s (%d) is %s option: use the %s setter",
                         name, option, have == SDE_OPTION_INT ? "an integer" : "a real",
                         have == SDE_OPTION_INT ? "_set_int/_get_int" : "_set_real/_get_real");
    double lo, hi;
    SDE__CHECK(sde_option_bounds(option, &lo, &hi));
    if (!(value >= lo && value <= hi))
        return sde__fail(SDE_E_INVALID, func, "%s (%.17g) is outside [%.17g, %.17g]", name,
                         value, lo, hi);
    return SDE_OK;
}

int sde__ode_solver_option(int option)
{
    switch (option) {
    case SDE_OPT_ODE_MAX_STEPS:
    case SDE_OPT_ODE_NUM_STEPS:
    case SDE_OPT_ODE_PER_SAMPLE:
    case SDE_OPT_ODE_DENSE_OUTPUT:
    case SDE_OPT_ODE_RTOL:
    case SDE_OPT_ODE_ATOL:
    case SDE_OPT_ODE_FIRST_STEP:
    case SDE_OPT_ODE_MIN_STEP:
    case SDE_OPT_ODE_MAX_STEP:
        return 1;
    default:
        return 0;
    }
}

static int not_for_solver(int option, const char *func)
{
    const char *name = sde_option_name(option);
    if (name == NULL)
        return sde__fail(SDE_E_INVALID, func, "option (%d) is not a known option", option);
    return sde__fail(SDE_E_INVALID, func, "option %s (%d) does not apply to an ODE solver", name,
                     option);
}

int sde__ode_set_int(sde_ode_solver *s, int option, int64_t value, const char *func)
{
    if (!sde__ode_solver_option(option))
        return not_for_solver(option, func);
    SDE__CHECK(sde__ode_option_check(option, SDE_OPTION_INT, (double)value, func));
    switch (option) {
    case SDE_OPT_ODE_MAX_STEPS: s->max_steps = value; break;
    case SDE_OPT_ODE_NUM_STEPS: s->num_steps = value; break;
    case SDE_OPT_ODE_PER_SAMPLE: s->per_sample = (int)value; break;
    default: s->dense = (int)value; break; /* SDE_OPT_ODE_DENSE_OUTPUT */
    }
    return SDE_OK;
}

int sde__ode_set_real(sde_ode_solver *s, int option, double value, const char *func)
{
    if (!sde__ode_solver_option(option))
        return not_for_solver(option, func);
    SDE__CHECK(sde__ode_option_check(option, SDE_OPTION_REAL, value, func));
    switch (option) {
    case SDE_OPT_ODE_RTOL: s->rtol = value; break;
    case SDE_OPT_ODE_ATOL: s->atol = value; break;
    case SDE_OPT_ODE_FIRST_STEP: s->first_step = value; break;
    case SDE_OPT_ODE_MIN_STEP: s->min_step = value; break;
    default: s->max_step = value; break; /* SDE_OPT_ODE_MAX_STEP */
    }
    return SDE_OK;
}

int sde__ode_get_int(const sde_ode_solver *s, int option, int64_t *value, const char *func)
{
    if (!sde__ode_solver_option(option))
        return not_for_solver(option, func);
    if (sde_option_type(option) != SDE_OPTION_INT)
        return sde__ode_option_check(option, SDE_OPTION_INT, 0.0, func);
    switch (option) {
    case SDE_OPT_ODE_MAX_STEPS: *value = s->max_steps; break;
    case SDE_OPT_ODE_NUM_STEPS: *value = s->num_steps; break;
    case SDE_OPT_ODE_PER_SAMPLE: *value = s->per_sample; break;
    default: *value = s->dense; break;
    }
    return SDE_OK;
}

int sde__ode_get_real(const sde_ode_solver *s, int option, double *value, const char *func)
{
    if (!sde__ode_solver_option(option))
        return not_for_solver(option, func);
    if (sde_option_type(option) != SDE_OPTION_REAL)
        return sde__ode_option_check(option, SDE_OPTION_REAL, 0.0, func);
    switch (option) {
    case SDE_OPT_ODE_RTOL: *value = s->rtol; break;
    case SDE_OPT_ODE_ATOL: *value = s->atol; break;
    case SDE_OPT_ODE_FIRST_STEP: *value = s->first_step; break;
    case SDE_OPT_ODE_MIN_STEP: *value = s->min_step; break;
    default: *value = s->max_step; break;
    }
    return SDE_OK;
}

static int check_idle(const sde_ode_solver *s, const char *func)
{
    SDE__CHECK(sde__check_ptr(s, func, "solver"));
    if (s->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the solver is busy: its right-hand side must not call back into it");
    return SDE_OK;
}

int sde_ode_solver_set_int(sde_ode_solver *solver, int option, int64_t value)
{
    SDE__CHECK(check_idle(solver, __func__));
    return sde__ode_set_int(solver, option, value, __func__);
}

int sde_ode_solver_set_real(sde_ode_solver *solver, int option, double value)
{
    SDE__CHECK(check_idle(solver, __func__));
    return sde__ode_set_real(solver, option, value, __func__);
}

int sde_ode_solver_get_int(const sde_ode_solver *solver, int option, int64_t *value)
{
    SDE__CHECK(sde__check_ptr(solver, __func__, "solver"));
    SDE__CHECK(sde__check_ptr(value, __func__, "value"));
    return sde__ode_get_int(solver, option, value, __func__);
}

int sde_ode_solver_get_real(const sde_ode_solver *solver, int option, double *value)
{
    SDE__CHECK(sde__check_ptr(solver, __func__, "solver"));
    SDE__CHECK(sde__check_ptr(value, __func__, "value"));
    return sde__ode_get_real(solver, option, value, __func__);
}

/* ---- statistics ---------------------------------------------------------------------- */

static int stats_check(const sde_ode_solver *s, const void *out, const char *func)
{
    SDE__CHECK(sde__check_ptr(s, func, "solver"));
    return sde__check_ptr(out, func, "output pointer");
}

int sde_ode_solver_get_nfe(const sde_ode_solver *solver, uint64_t *nfe)
{
    SDE__CHECK(stats_check(solver, nfe, __func__));
    *nfe = solver->nfe;
    return SDE_OK;
}

int sde_ode_solver_get_accepted_steps(const sde_ode_solver *solver, uint64_t *steps)
{
    SDE__CHECK(stats_check(solver, steps, __func__));
    *steps = solver->accepted;
    return SDE_OK;
}

int sde_ode_solver_get_rejected_steps(const sde_ode_solver *solver, uint64_t *steps)
{
    SDE__CHECK(stats_check(solver, steps, __func__));
    *steps = solver->rejected;
    return SDE_OK;
}

int sde_ode_solver_get_t_reached(const sde_ode_solver *solver, double *t)
{
    SDE__CHECK(stats_check(solver, t, __func__));
    *t = solver->t_reached;
    return SDE_OK;
}

int sde_ode_solver_get_sample_stats(const sde_ode_solver *solver, size_t sample,
                                    uint64_t *accepted, uint64_t *rejected, double *t_reached)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(solver, func, "solver"));
    if (solver->last_batch == 0)
        return sde__fail(SDE_E_STATE, func, "the solver has not integrated anything yet");
    if (sample >= solver->last_batch)
        return sde__fail(SDE_E_INVALID, func,
                         "sample (%zu) is outside the last integration's batch (%zu)", sample,
                         solver->last_batch);
    size_t g = solver->last_per_sample ? sample : 0;
    if (accepted != NULL)
        *accepted = solver->gacc[g];
    if (rejected != NULL)
        *rejected = solver->grej[g];
    if (t_reached != NULL)
        *t_reached = solver->gt[g];
    return SDE_OK;
}

/* ---- the RHS call and outputs, shared by the drivers ---------------------------------- */

int sde__ode_call(sde__ode_run *r, const double *y, double *dydt, int adaptive)
{
    sde_ode_solver *s = r->s;
    sde__callback_message_reset();
    int rc = r->rhs(s->trow, y, dydt, r->batch, r->dim, r->user);
    s->nfe++;
    if (rc > 0 && adaptive)
        return SDE__ODE_RECOVERABLE;
    if (rc != 0) {
        char what[160];
        if (rc > 0)
            snprintf(what, sizeof what,
                     "ODE right-hand side (at t[0] = %.17g; a recoverable status is fatal for "
                     "the fixed-step method %s)",
                     s->trow[0], s->m->name);
        else
            snprintf(what, sizeof what, "ODE right-hand side (at t[0] = %.17g)", s->trow[0]);
        return sde__callback_failed(r->func, what, rc);
    }
    /* the check is an integer OR over the output (it vectorises, where a search for the
     * first bad element with an early exit does not); only a failed check looks for it */
    uint64_t flags = 0;
    for (size_t i = 0; i < r->n; i++)
        flags |= sde__nonfinite_flag(dydt[i]);
    size_t bad = sde__nonfinite_seen(flags) ? sde__find_nonfinite(r->n, dydt) : r->n;
    if (bad < r->n)
        return sde__fail(SDE_E_NUMERIC, r->func,
                         "the ODE right-hand side returned %g at row %zu, element %zu "
                         "(t = %.17g)",
                         dydt[bad], bad / r->dim, bad % r->dim, s->trow[bad / r->dim]);
    return SDE_OK;
}

void sde__ode_emit(sde__ode_run *r, size_t k, size_t g, const double *src)
{
    size_t off = g * r->glen;
    memcpy(r->y_out + k * r->n + off, src + off, r->glen * sizeof *src);
}

/* ---- integrate ----------------------------------------------------------------------- */

static int check_outputs(const sde__ode_run *r, const double *y)
{
    const char *func = r->func;
    if (r->n_out == 0)
        return sde__fail(SDE_E_DIM, func, "n_out is 0 (must be >= 1)");
    SDE__CHECK(sde__check_ptr(r->t_out, func, "t_out"));
    SDE__CHECK(sde__check_ptr(r->y_out, func, "y_out"));
    if (r->n_out > SIZE_MAX / sizeof(double) / r->n)
        return sde__fail(SDE_E_DIM, func, "n_out (%zu) x batch x dim is too large", r->n_out);
    const double *lo = r->y_out, *hi = r->y_out + r->n_out * r->n;
    if (y < hi && lo < y + r->n)
        return sde__fail(SDE_E_INVALID, func, "y_out overlaps y");
    double prev = r->t0;
    for (size_t k = 0; k < r->n_out; k++) {
        double t = r->t_out[k];
        if (!isfinite(t))
            return sde__fail(SDE_E_INVALID, func, "t_out[%zu] (%g) is not finite", k, t);
        if (r->dir * (t - prev) < 0.0 || r->dir * (r->t1 - t) < 0.0)
            return sde__fail(SDE_E_INVALID, func,
                             "t_out[%zu] (%.17g) must lie between the previous output time "
                             "(or t0 = %.17g) and t1 = %.17g",
                             k, t, r->t0, r->t1);
        prev = t;
    }
    return SDE_OK;
}

int sde__ode_integrate(sde_ode_solver *s, sde_ode_rhs_fn rhs, void *user, double t0, double t1,
                       double *y, size_t n_out, const double *t_out, double *y_out, size_t batch,
                       size_t dim, int per_sample, const char *func)
{
    SDE__CHECK(check_idle(s, func));
    if (rhs == NULL)
        return sde__fail(SDE_E_INVALID, func, "rhs is NULL");
    SDE__CHECK(sde__check_ptr(y, func, "y"));
    if (batch == 0 || batch > s->max_batch)
        return sde__fail(SDE_E_DIM, func, "batch (%zu) must be in [1, max_batch = %zu]", batch,
                         s->max_batch);
    if (dim != s->dim)
        return sde__fail(SDE_E_DIM, func, "dim (%zu) differs from the solver's dim (%zu)", dim,
                         s->dim);
    if (!isfinite(t0))
        return sde__fail(SDE_E_INVALID, func, "t0 (%g) is not finite", t0);
    if (!isfinite(t1))
        return sde__fail(SDE_E_INVALID, func, "t1 (%g) is not finite", t1);
    if (t0 == t1)
        return sde__fail(SDE_E_INVALID, func, "the time span is empty (t0 = t1 = %.17g)", t0);

    sde__ode_run r;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.rhs = rhs;
    r.user = user;
    r.t0 = t0;
    r.t1 = t1;
    r.dir = t1 > t0 ? 1.0 : -1.0;
    r.batch = batch;
    r.dim = dim;
    r.n = batch * dim;
    r.per_sample = per_sample >= 0 ? per_sample : s->per_sample;
    r.n_groups = r.per_sample ? batch : 1;
    r.glen = r.per_sample ? dim : r.n;
    r.rows_per_group = r.per_sample ? 1 : batch;
    r.n_out = n_out;
    r.t_out = t_out;
    r.y_out = y_out;
    r.func = func;
    if (t_out != NULL || y_out != NULL || n_out != 0)
        SDE__CHECK(check_outputs(&r, y));
    else
        r.n_out = 0;
    size_t bad = sde__find_nonfinite(r.n, y);
    if (bad < r.n)
        return sde__fail(SDE_E_INVALID, func, "y[%zu] (row %zu, element %zu) is %g", bad,
                         bad / dim, bad % dim, y[bad]);

    /* statistics describe this call from here on */
    s->nfe = s->accepted = s->rejected = 0;
    s->t_reached = NAN; /* a driver that stops a row sets it; otherwise see below */
    s->last_batch = batch;
    s->last_per_sample = r.per_sample;
    for (size_t g = 0; g < r.n_groups; g++) {
        s->gt[g] = t0;
        s->gacc[g] = s->grej[g] = 0;
        s->gnext[g] = 0;
        s->gflag[g] = 0;
    }

    memcpy(s->buf[0], y, r.n * sizeof *y);
    s->busy = 1;
    int rc = s->m->err_order > 0 ? sde__ode_adaptive(&r) : sde__ode_fixed(&r);
    s->busy = 0;

    for (size_t g = 0; g < r.n_groups; g++) {
        s->accepted += s->gacc[g];
        s->rejected += s->grej[g];
    }
    if (rc == SDE_OK) {
        memcpy(y, s->buf[0], r.n * sizeof *y);
        s->t_reached = t1;
    } else if (isnan(s->t_reached)) {
        /* stopped by the callback: report the least advanced row */
        s->t_reached = s->gt[0];
        for (size_t g = 1; g < r.n_groups; g++)
            if (r.dir * (s->gt[g] - s->t_reached) < 0.0)
                s->t_reached = s->gt[g];
    }
    return rc;
}

int sde_ode_solver_integrate(sde_ode_solver *solver, sde_ode_rhs_fn rhs, void *user_data,
                             double t0, double t1, double *y, size_t batch, size_t dim)
{
    return sde__ode_integrate(solver, rhs, user_data, t0, t1, y, 0, NULL, NULL, batch, dim, -1,
                              __func__);
}

int sde_ode_solver_integrate_times(sde_ode_solver *solver, sde_ode_rhs_fn rhs, void *user_data,
                                   double t0, double t1, double *y, size_t n_out,
                                   const double *t_out, double *y_out, size_t batch, size_t dim)
{
    const char *func = __func__;
    SDE__CHECK(check_idle(solver, func));
    if (n_out == 0)
        return sde__fail(SDE_E_DIM, func, "n_out is 0 (must be >= 1)");
    SDE__CHECK(sde__check_ptr(t_out, func, "t_out"));
    SDE__CHECK(sde__check_ptr(y_out, func, "y_out"));
    return sde__ode_integrate(solver, rhs, user_data, t0, t1, y, n_out, t_out, y_out, batch, dim,
                              -1, func);
}

int sde__ode_driver_args(sde_model *model, int method, size_t max_batch, size_t row_doubles,
                         const char *func)
{
    SDE__CHECK(sde__check_ptr(model, func, "model"));
    if (sde__ode_method_find(method) == NULL)
        return sde__fail(SDE_E_INVALID, func, "method (%d) is not an sde_ode_method", method);
    if (max_batch == 0)
        return sde__fail(SDE_E_DIM, func, "max_batch is 0 (must be >= 1)");
    if (max_batch > SIZE_MAX / sizeof(double) / row_doubles)
        return sde__fail(SDE_E_DIM, func, "max_batch (%zu) x dim (%zu) is too large", max_batch,
                         sde_model_dim(model));
    return sde_model_reserve(model, max_batch);
}
