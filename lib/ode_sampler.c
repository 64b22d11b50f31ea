/* The probability-flow ODE sampler: sample, decode (latent -> data, optional denoising step)
 * and encode (data -> latent), all through an sde_ode_solver whose right-hand side is
 * sde_process_reverse(probability_flow = 1) of sde_model_score(). */
#include <math.h>
#include <string.h>

#include "model_impl.h"
#include "ode_impl.h"

struct sde_ode_sampler {
    sde_model *model; /* borrowed */
    const sde_process *process; /* the model's own copy */
    sde_ode_solver *solver;
    size_t max_batch, dim;
    int denoise, reference;
    double eps, T;
    double *block; /* x | score | work (max_batch * dim each) | t (max_batch) */
    double *x, *score, *work, *t;
    uint64_t nfe;
    int busy;
    sde_ode_projection_fn project; /* optional, with its segment count and user data */
    size_t segments;
    void *project_user;
    /* during a run */
    int status;          /* a library status met inside the RHS, passed on instead of CALLBACK */
};

enum { RUN_SAMPLE = 1, RUN_DECODE = 2, RUN_ENCODE = 3 };

/* ---- creation and options -------------------------------------------------------------- */

void sde_ode_sampler_free(sde_ode_sampler *sampler)
{
    if (sampler == NULL)
        return;
    sde_ode_solver_free(sampler->solver);
    sde__free(sampler->block);
    sde__free(sampler);
}

int sde_ode_sampler_new(sde_ode_sampler **out, sde_model *model, int method, size_t max_batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(out, func, "out"));
    *out = NULL;
    /* rows of the scratch block: 3 state rows and a time */
    size_t dim = model != NULL ? sde_model_dim(model) : 0;
    SDE__CHECK(sde__ode_driver_args(model, method, max_batch, 3 * dim + 1, func));

    sde_ode_sampler *s = sde__calloc(1, sizeof *s);
    if (s == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the sampler");
    int rc = sde_ode_solver_new(&s->solver, method, max_batch, dim);
    if (rc != SDE_OK) {
        sde__free(s);
        return rc;
    }
    size_t n = max_batch * dim;
    s->block = sde__malloc_array(3 * n + max_batch, sizeof(double));
    if (s->block == NULL) {
        sde_ode_sampler_free(s);
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate 3 buffers of %zu x %zu doubles",
                         max_batch, dim);
    }
    s->x = s->block;
    s->score = s->x + n;
    s->work = s->score + n;
    s->t = s->work + n;
    s->model = model;
    s->process = sde_model_process(model);
    s->max_batch = max_batch;
    s->dim = dim;
    s->T = sde_process_t_end(s->process);
    s->eps = 1e-3 < s->T ? 1e-3 : 1e-3 * s->T;
    *out = s;
    return SDE_OK;
}

static int check_idle(const sde_ode_sampler *s, const char *func)
{
    SDE__CHECK(sde__check_ptr(s, func, "sampler"));
    if (s->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the sampler is busy: the network must not call back into it");
    return SDE_OK;
}

static int not_for_sampler(int option, const char *func)
{
    const char *name = sde_option_name(option);
    if (name == NULL)
        return sde__fail(SDE_E_INVALID, func, "option (%d) is not a known option", option);
    return sde__fail(SDE_E_INVALID, func, "option %s (%d) does not apply to the ODE sampler",
                     name, option);
}

int sde_ode_sampler_set_int(sde_ode_sampler *sampler, int option, int64_t value)
{
    const char *func = __func__;
    SDE__CHECK(check_idle(sampler, func));
    if (option == SDE_OPT_ODE_DENOISE || option == SDE_OPT_ODE_REFERENCE_MODE) {
        SDE__CHECK(sde__ode_option_check(option, SDE_OPTION_INT, (double)value, func));
        if (option == SDE_OPT_ODE_DENOISE)
            sampler->denoise = (int)value;
        else
            sampler->reference = (int)value;
        return SDE_OK;
    }
    if (option == SDE_OPT_ODE_EPS)
        return sde__ode_option_check(option, SDE_OPTION_INT, (double)value, func);
    if (!sde__ode_solver_option(option))
        return not_for_sampler(option, func);
    return sde__ode_set_int(sampler->solver, option, value, func);
}

int sde_ode_sampler_set_real(sde_ode_sampler *sampler, int option, double value)
{
    const char *func = __func__;
    SDE__CHECK(check_idle(sampler, func));
    if (option == SDE_OPT_ODE_EPS) {
        SDE__CHECK(sde__ode_option_check(option, SDE_OPTION_REAL, value, func));
        if (!(value < sampler->T))
            return sde__fail(SDE_E_INVALID, func,
                             "SDE_OPT_ODE_EPS (%.17g) must be below the process's T (%.17g)",
                             value, sampler->T);
        sampler->eps = value;
        return SDE_OK;
    }
    if (option == SDE_OPT_ODE_DENOISE || option == SDE_OPT_ODE_REFERENCE_MODE)
        return sde__ode_option_check(option, SDE_OPTION_REAL, value, func);
    if (!sde__ode_solver_option(option))
        return not_for_sampler(option, func);
    return sde__ode_set_real(sampler->solver, option, value, func);
}

int sde_ode_sampler_get_int(const sde_ode_sampler *sampler, int option, int64_t *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(sampler, func, "sampler"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    if (option == SDE_OPT_ODE_DENOISE) {
        *value = sampler->denoise;
        return SDE_OK;
    }
    if (option == SDE_OPT_ODE_REFERENCE_MODE) {
        *value = sampler->reference;
        return SDE_OK;
    }
    if (option == SDE_OPT_ODE_EPS)
        return sde__ode_option_check(option, SDE_OPTION_INT, 0.0, func);
    if (!sde__ode_solver_option(option))
        return not_for_sampler(option, func);
    return sde__ode_get_int(sampler->solver, option, value, func);
}

int sde_ode_sampler_get_real(const sde_ode_sampler *sampler, int option, double *value)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(sampler, func, "sampler"));
    SDE__CHECK(sde__check_ptr(value, func, "value"));
    if (option == SDE_OPT_ODE_EPS) {
        *value = sampler->eps;
        return SDE_OK;
    }
    if (option == SDE_OPT_ODE_DENOISE || option == SDE_OPT_ODE_REFERENCE_MODE)
        return sde__ode_option_check(option, SDE_OPTION_REAL, 0.0, func);
    if (!sde__ode_solver_option(option))
        return not_for_sampler(option, func);
    return sde__ode_get_real(sampler->solver, option, value, func);
}

int sde_ode_sampler_get_nfe(const sde_ode_sampler *sampler, uint64_t *nfe)
{
    SDE__CHECK(sde__check_ptr(sampler, __func__, "sampler"));
    SDE__CHECK(sde__check_ptr(nfe, __func__, "nfe"));
    *nfe = sampler->nfe;
    return SDE_OK;
}

int sde_ode_sampler_set_projection(sde_ode_sampler *sampler, sde_ode_projection_fn fn,
                                   void *user_data, size_t segments)
{
    const char *func = __func__;
    SDE__CHECK(check_idle(sampler, func));
    if (fn != NULL && (segments < 1 || segments > 1000000))
        return sde__fail(SDE_E_INVALID, func, "segments (%zu) is not in [1, 1000000]",
                         segments);
    sampler->project = fn;
    sampler->segments = fn != NULL ? segments : 0;
    sampler->project_user = fn != NULL ? user_data : NULL;
    return SDE_OK;
}

const sde_ode_solver *sde_ode_sampler_solver(const sde_ode_sampler *sampler)
{
    return sampler ? sampler->solver : NULL;
}

/* ---- the probability-flow right-hand side ---------------------------------------------- */

/* A library status inside the RHS: keep it for the sampler to return, and hand its message
 * to the solver, which reports "right-hand side returned -1: <message>". */
static int rhs_failed(sde_ode_sampler *s, int status)
{
    s->status = status;
    sde_set_error_message(sde_last_error());
    return -1;
}

static int pf_rhs(const double *t, const double *y, double *dydt, size_t batch, size_t dim,
                  void *user_data)
{
    sde_ode_sampler *s = user_data;
    int rc = sde__model_score_into(s->model, t, y, s->score, batch, dim, "sde_model_score");
    if (rc != SDE_OK) {
        /* sde_model_score() folds the network's status into SDE_E_CALLBACK; a positive one is
         * recoverable, and the solver retries with a smaller step */
        if (rc == SDE_E_CALLBACK && s->model->last_net_rc > 0)
            return s->model->last_net_rc;
        return rhs_failed(s, rc);
    }
    rc = sde_process_reverse(s->process, t, y, s->score, 1, dydt, NULL, batch, dim);
    return rc == SDE_OK ? 0 : rhs_failed(s, rc);
}

/* ---- runs ------------------------------------------------------------------------------ */

/* One reverse-diffusion predictor step at eps (probability flow off), keeping its mean:
 * x <- x - rev_f. In reference mode the step draws its unused normal array first (R22). */
static int denoise(sde_ode_sampler *s, sde_noise *noise, size_t batch, size_t offset)
{
    size_t n = batch * s->dim;
    for (size_t b = 0; b < batch; b++)
        s->t[b] = s->eps;
    SDE__CHECK(sde__model_score_into(s->model, s->t, s->x, s->score, batch, s->dim,
                                     "sde_model_score"));
    s->nfe++;
    if (s->reference)
        SDE__CHECK(sde_noise_normal(noise, s->work, batch, s->dim, offset));
    SDE__CHECK(sde_process_reverse_discretize(s->process, s->t, s->x, s->score, 0, s->work, NULL,
                                              batch, s->dim));
    for (size_t i = 0; i < n; i++)
        s->x[i] -= s->work[i];
    return SDE_OK;
}

static int call_projection(sde_ode_sampler *s, double t, size_t batch, const char *func)
{
    sde__callback_message_reset();
    int rc = s->project(t, s->x, batch, s->dim, s->project_user);
    if (rc != 0)
        return sde__callback_failed(func, "the projection callback", rc);
    size_t bad = sde__find_nonfinite(batch * s->dim, s->x);
    if (bad < batch * s->dim)
        return sde__fail(SDE_E_NUMERIC, func, "the projection callback gave %g at sample %zu, "
                         "element %zu (t = %.17g)", s->x[bad], bad / s->dim, bad % s->dim, t);
    return SDE_OK;
}

/* Integrate s->x from t0 to t1, in projected segments when a projection is installed (decode
 * direction only); s->nfe sums the pieces. */
static int integrate(sde_ode_sampler *s, int mode, double t0, double t1, size_t batch,
                     const char *func)
{
    int per_sample = s->reference ? 0 : -1;
    if (s->project == NULL || mode == RUN_ENCODE) {
        int rc = sde__ode_integrate(s->solver, pf_rhs, s, t0, t1, s->x, 0, NULL, NULL, batch,
                                    s->dim, per_sample, func);
        sde_ode_solver_get_nfe(s->solver, &s->nfe);
        return rc;
    }
    SDE__CHECK(call_projection(s, t0, batch, func));
    for (size_t j = 0; j < s->segments; j++) {
        double span = (t1 - t0) / (double)s->segments, a = t0 + span * (double)j;
        double b = j + 1 == s->segments ? t1 : t0 + span * (double)(j + 1);
        uint64_t nfe = 0;
        int rc = sde__ode_integrate(s->solver, pf_rhs, s, a, b, s->x, 0, NULL, NULL, batch,
                                    s->dim, per_sample, func);
        sde_ode_solver_get_nfe(s->solver, &nfe);
        s->nfe += nfe;
        if (rc != SDE_OK)
            return rc;
        SDE__CHECK(call_projection(s, b, batch, func));
    }
    return SDE_OK;
}

static int run_checks(const sde_ode_sampler *s, int mode, sde_noise *noise, const double *in,
                      const char *in_name, const double *out, const char *out_name, size_t batch,
                      size_t dim, const char *func)
{
    SDE__CHECK(check_idle(s, func));
    if (mode != RUN_SAMPLE)
        SDE__CHECK(sde__check_ptr(in, func, in_name));
    SDE__CHECK(sde__check_ptr(out, func, out_name));
    if (batch == 0 || batch > s->max_batch)
        return sde__fail(SDE_E_DIM, func, "batch (%zu) must be in [1, max_batch = %zu]", batch,
                         s->max_batch);
    if (dim != s->dim)
        return sde__fail(SDE_E_DIM, func, "dim (%zu) differs from the model's dim (%zu)", dim,
                         s->dim);
    if (mode == RUN_SAMPLE && noise == NULL)
        return sde__fail(SDE_E_INVALID, func, "noise is NULL (the prior draw needs it)");
    if (mode != RUN_ENCODE && s->denoise && s->reference && noise == NULL)
        return sde__fail(SDE_E_INVALID, func,
                         "noise is NULL, but the reference-mode denoising step draws one "
                         "normal array from it");
    if (in != NULL) {
        size_t bad = sde__find_nonfinite(batch * dim, in);
        if (bad < batch * dim)
            return sde__fail(SDE_E_INVALID, func, "%s[%zu] (sample %zu, element %zu) is %g",
                             in_name, bad, bad / dim, bad % dim, in[bad]);
    }
    return SDE_OK;
}

static int run(sde_ode_sampler *s, int mode, sde_noise *noise, const double *in, double *out,
               size_t batch, size_t dim, size_t offset, const char *func)
{
    size_t n = batch * dim;
    s->busy = 1;
    s->status = SDE_OK;
    s->nfe = 0;
    int rc = SDE_OK;
    if (mode == RUN_SAMPLE)
        rc = sde_process_prior_sample(s->process, noise, s->x, batch, dim, offset);
    else
        memcpy(s->x, in, n * sizeof *in);
    if (rc == SDE_OK) {
        double t0 = mode == RUN_ENCODE ? s->eps : s->T, t1 = mode == RUN_ENCODE ? s->T : s->eps;
        rc = integrate(s, mode, t0, t1, batch, func);
        if (rc == SDE_E_CALLBACK && s->status != SDE_OK)
            rc = s->status; /* e.g. SDE_E_NUMERIC from the model; the message says where */
    }
    if (rc == SDE_OK && mode != RUN_ENCODE && s->denoise)
        rc = denoise(s, noise, batch, offset);
    if (rc == SDE_OK)
        memcpy(out, s->x, n * sizeof *out);
    s->busy = 0;
    return rc;
}

int sde_ode_sampler_sample(sde_ode_sampler *sampler, sde_noise *noise, double *x_out,
                           size_t batch, size_t dim, size_t sample_offset)
{
    const char *func = __func__;
    SDE__CHECK(run_checks(sampler, RUN_SAMPLE, noise, NULL, NULL, x_out, "x_out", batch, dim,
                          func));
    return run(sampler, RUN_SAMPLE, noise, NULL, x_out, batch, dim, sample_offset, func);
}

int sde_ode_sampler_decode(sde_ode_sampler *sampler, sde_noise *noise, const double *z,
                           double *x_out, size_t batch, size_t dim, size_t sample_offset)
{
    const char *func = __func__;
    SDE__CHECK(run_checks(sampler, RUN_DECODE, noise, z, "z", x_out, "x_out", batch, dim, func));
    return run(sampler, RUN_DECODE, noise, z, x_out, batch, dim, sample_offset, func);
}

int sde_ode_sampler_encode(sde_ode_sampler *sampler, const double *x, double *z_out,
                           size_t batch, size_t dim)
{
    const char *func = __func__;
    SDE__CHECK(run_checks(sampler, RUN_ENCODE, NULL, x, "x", z_out, "z_out", batch, dim, func));
    return run(sampler, RUN_ENCODE, NULL, x, z_out, batch, dim, 0, func);
}
