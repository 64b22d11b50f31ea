/* The score-model adapter: time labels for the host network, and the conversion of its output
 * (score, epsilon, x0 or v) into the score and the x0 / epsilon estimates. */
#include <math.h>
#include <string.h>

#include "model_impl.h"
#include "noise_private.h" /* SDE__CLONES */

/* ---- construction ------------------------------------------------------------------- */

static int check_modes(const sde_process *p, int output, int time_input, const char *func)
{
    if (output < SDE_OUTPUT_SCORE || output > SDE_OUTPUT_V)
        return sde__fail(SDE_E_INVALID, func, "output (%d) is not an sde_model_output", output);
    if (time_input < SDE_TIME_CONTINUOUS || time_input > SDE_TIME_SIGMA)
        return sde__fail(SDE_E_INVALID, func, "time_input (%d) is not an sde_time_input",
                         time_input);
    int kind = sde_process_kind(p);
    int reference = time_input == SDE_TIME_REFERENCE_CONTINUOUS ||
                    time_input == SDE_TIME_REFERENCE_DISCRETE;
    if (kind == SDE_PROCESS_CUSTOM && reference)
        return sde__fail(SDE_E_UNSUPPORTED, func,
                         "time_input %d (a reference label convention) is defined for VP, "
                         "sub-VP and VE processes only", time_input);
    if (kind == SDE_PROCESS_VP && time_input == SDE_TIME_REFERENCE_DISCRETE)
        SDE__CHECK(sde__process_require_tables(p, func));
    return SDE_OK;
}

int sde__model_new_owned(sde_model **out, const sde_process *process, size_t dim,
                         sde_net_fn net, void *user_data, int output, int time_input,
                         void *owned, void (*owned_free)(void *), const char *func)
{
    int rc = sde__check_ptr(out, func, "out");
    if (rc == SDE_OK) {
        *out = NULL;
        rc = sde__check_ptr(process, func, "process");
    }
    if (rc == SDE_OK)
        rc = sde__check_size(dim, func, "dim");
    if (rc == SDE_OK && net == NULL)
        rc = sde__fail(SDE_E_INVALID, func, "net is NULL");
    if (rc == SDE_OK)
        rc = check_modes(process, output, time_input, func);
    sde_model *m = NULL;
    if (rc == SDE_OK) {
        m = sde__calloc(1, sizeof *m);
        if (m == NULL)
            rc = sde__fail(SDE_E_NOMEM, func, "cannot allocate the model");
    }
    if (rc == SDE_OK)
        rc = sde__process_clone(process, &m->process);
    if (rc != SDE_OK) {
        sde__free(m);
        if (owned_free != NULL)
            owned_free(owned); /* ownership passed in: release it on every failure */
        return rc;
    }
    m->dim = dim;
    m->net = net;
    m->user_data = user_data;
    m->output = output;
    m->time_input = time_input;
    m->owned = owned;
    m->owned_free = owned_free;
    *out = m;
    return SDE_OK;
}

int sde_model_new(sde_model **out, const sde_process *process, size_t dim, sde_net_fn net,
                  void *user_data, int output, int time_input)
{
    return sde__model_new_owned(out, process, dim, net, user_data, output, time_input, NULL,
                                NULL, __func__);
}

void sde_model_free(sde_model *model)
{
    if (model == NULL)
        return;
    if (model->owned_free != NULL)
        model->owned_free(model->owned);
    sde_process_free(model->process);
    sde__free(model->scratch);
    sde__free(model->jv);
    sde__free(model);
}

int sde_model_set_jvp(sde_model *model, sde_jvp_fn jvp)
{
    SDE__CHECK(sde__check_ptr(model, __func__, "model"));
    if (model->busy)
        return sde__fail(SDE_E_STATE, __func__, "the model is busy (called from its callback)");
    model->jvp = jvp;
    return SDE_OK;
}

int sde_model_has_jvp(const sde_model *model) { return model != NULL && model->jvp != NULL; }

const sde_process *sde_model_process(const sde_model *model)
{
    return model ? model->process : NULL;
}

size_t sde_model_dim(const sde_model *model) { return model ? model->dim : 0; }

int sde_model_output_kind(const sde_model *model) { return model ? model->output : 0; }

int sde_model_time_input_kind(const sde_model *model) { return model ? model->time_input : 0; }

uint64_t sde_model_num_calls(const sde_model *model) { return model ? model->calls : 0; }

/* Scratch layout: labels[cap] | a[cap] | s[cap] | raw[cap*dim]. */
static int reserve(sde_model *m, size_t batch, const char *func)
{
    if (batch <= m->cap)
        return SDE_OK;
    if (m->reserve_hook != NULL) /* model wrappers (issue 6) */
        SDE__CHECK(m->reserve_hook(m->owned, batch, func));
    if (batch > SIZE_MAX / sizeof(double) / (m->dim + 3))
        return sde__fail(SDE_E_DIM, func, "batch (%zu) is too large", batch);
    double *buf = sde__malloc_array(batch * (m->dim + 3), sizeof *buf);
    if (buf == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate scratch for batch %zu x dim %zu",
                         batch, m->dim);
    sde__free(m->scratch);
    m->scratch = buf;
    m->cap = batch;
    return SDE_OK;
}

int sde_model_reserve(sde_model *model, size_t max_batch)
{
    SDE__CHECK(sde__check_ptr(model, __func__, "model"));
    SDE__CHECK(sde__check_size(max_batch, __func__, "max_batch"));
    if (model->busy)
        return sde__fail(SDE_E_STATE, __func__, "the model is busy (called from its callback)");
    return reserve(model, max_batch, __func__);
}

/* ---- time labels and conversion coefficients ----------------------------------------- */

void sde__time_label1(const sde_process *p, int time_input, double t, double *label,
                      double *a, double *s)
{
    int kind = sde_process_kind(p);
    int64_t N = sde_process_num_steps(p);
    double T = sde_process_t_end(p);
    switch (time_input) {
    case SDE_TIME_CONTINUOUS:
        *label = t;
        return;
    case SDE_TIME_SIGMA:
        *label = *s;
        return;
    case SDE_TIME_REFERENCE_DISCRETE:
        if (kind == SDE_PROCESS_VP) {
            /* unrounded label (R2); the output is converted with the table's a and s at the
             * truncated label. Scaled by T like sde_process_discrete_index() (the reference
             * has T = 1). */
            *label = t * (double)(N - 1) / T;
            int64_t i = (int64_t)*label;
            if (i > N - 1)
                i = N - 1;
            *a = sde__process_table_ptr(p, SDE_TABLE_SQRT_ALPHAS_CUMPROD)[i];
            *s = sde__process_table_ptr(p, SDE_TABLE_SQRT_1M_ALPHAS_CUMPROD)[i];
            return;
        }
        if (kind == SDE_PROCESS_VE) {
            /* counted from sigma_max, rounded half to even (nearbyint in the default mode) */
            *label = nearbyint((T - t) * (double)(N - 1) / T);
            return;
        }
        /* sub-VP: the reference uses its continuous labels (R3) */
        /* fall through */
    default: /* SDE_TIME_REFERENCE_CONTINUOUS */
        *label = kind == SDE_PROCESS_VE ? *s : 999.0 * t;
        return;
    }
}

/* Labels and the (a, s) used to convert the output, per sample. */
static int labels_and_coeffs(const sde_model *m, const double *t, double *labels, double *a,
                             double *s, size_t batch)
{
    SDE__CHECK(sde_process_marginal(m->process, t, a, s, batch));
    for (size_t b = 0; b < batch; b++) {
        double label;
        sde__time_label1(m->process, m->time_input, t[b], &label, &a[b], &s[b]);
        if (labels != NULL)
            labels[b] = label;
    }
    return SDE_OK;
}

static int check_call(const sde_model *m, const double *t, const double *x, size_t batch,
                      size_t dim, const char *func)
{
    SDE__CHECK(sde__check_ptr(m, func, "model"));
    SDE__CHECK(sde__check_ptr(t, func, "t"));
    SDE__CHECK(sde__check_ptr(x, func, "x"));
    SDE__CHECK(sde__check_shape(batch, dim, func));
    if (dim != m->dim)
        return sde__fail(SDE_E_DIM, func, "dim (%zu) differs from the model's dim (%zu)", dim,
                         m->dim);
    if (m->busy)
        return sde__fail(SDE_E_STATE, func,
                         "the model is busy: its callback must not call back into it");
    return sde__check_times(t, batch, sde_process_t_end(m->process), func);
}

int sde_model_time_labels(const sde_model *model, const double *t, double *labels_out,
                          size_t batch)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(model, func, "model"));
    SDE__CHECK(sde__check_ptr(t, func, "t"));
    SDE__CHECK(sde__check_ptr(labels_out, func, "labels_out"));
    SDE__CHECK(sde__check_size(batch, func, "batch"));
    SDE__CHECK(sde__check_times(t, batch, sde_process_t_end(model->process), func));
    double *buf = sde__malloc_array(batch, 3 * sizeof *buf);
    if (buf == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate %zu doubles", 3 * batch);
    int rc = labels_and_coeffs(model, t, buf, buf + batch, buf + 2 * batch, batch);
    if (rc == SDE_OK)
        memcpy(labels_out, buf, batch * sizeof *buf);
    sde__free(buf);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------------- */

enum { NEED_A = 1, NEED_S = 2 };

/* Which coefficients must be non-zero for each requested output (see the table in model.h). */
static int needs(int output, int want_score, int want_x0, int want_eps)
{
    int n = 0;
    switch (output) {
    case SDE_OUTPUT_SCORE:
        if (want_x0) n |= NEED_A;
        break;
    case SDE_OUTPUT_EPSILON:
        if (want_score) n |= NEED_S;
        if (want_x0) n |= NEED_A;
        break;
    case SDE_OUTPUT_X0:
        if (want_score || want_eps) n |= NEED_S;
        break;
    default: /* V: a^2 + s^2 > 0 always holds when s > 0 or a != 0 */
        if (want_score) n |= NEED_S;
        break;
    }
    return n;
}

static void convert_row(int output, double a, double s, const double *x, const double *o,
                        double *score, double *x0, double *eps, size_t dim)
{
    for (size_t k = 0; k < dim; k++) {
        double sc, x0v, ev;
        switch (output) {
        case SDE_OUTPUT_SCORE:
            sc = o[k];
            x0v = (x[k] + s * s * sc) / a; /* Tweedie */
            ev = -s * sc;
            break;
        case SDE_OUTPUT_EPSILON:
            ev = o[k];
            sc = -ev / s;
            x0v = (x[k] - s * ev) / a;
            break;
        case SDE_OUTPUT_X0:
            x0v = o[k];
            ev = (x[k] - a * x0v) / s;
            sc = -ev / s;
            break;
        default: { /* V */
            double n = a * a + s * s;
            x0v = (a * x[k] - s * o[k]) / n;
            ev = (s * x[k] + a * o[k]) / n;
            sc = -ev / s;
            break;
        }
        }
        if (score != NULL) score[k] = sc;
        if (x0 != NULL) x0[k] = x0v;
        if (eps != NULL) eps[k] = ev;
    }
}

/* Checks, labels and coefficients, then one network call writing into `out` (the model's
 * scratch or a driver's). On success the per-sample (a, s) the output converts with are in the
 * model's scratch. */
static int call_net(sde_model *m, const double *t, const double *x, double *out, int need,
                    size_t batch, size_t dim, const char *func)
{
    SDE__CHECK(check_call(m, t, x, batch, dim, func));
    if (out == x)
        return sde__fail(SDE_E_INVALID, func, "an output array aliases x");
    SDE__CHECK(reserve(m, batch, func));
    double *labels = m->scratch, *a = labels + m->cap, *s = a + m->cap;
    SDE__CHECK(labels_and_coeffs(m, t, labels, a, s, batch));
    for (size_t b = 0; b < batch; b++) {
        if ((need & NEED_S) && !(s[b] > 0.0))
            return sde__fail(SDE_E_NUMERIC, func,
                             "the marginal std is %.17g at t[%zu] = %.17g: cannot convert the "
                             "network output (kind %d) there; use t > 0", s[b], b, t[b],
                             m->output);
        if ((need & NEED_A) && !(a[b] != 0.0))
            return sde__fail(SDE_E_NUMERIC, func,
                             "the mean coefficient is 0 at t[%zu] = %.17g: no x0 estimate", b,
                             t[b]);
    }
    m->busy = 1;
    sde__callback_message_reset();
    int rc = m->net(labels, x, out, batch, dim, m->user_data);
    m->busy = 0;
    m->calls++;
    m->last_net_rc = rc;
    if (rc != 0)
        return sde__callback_failed(func, "score network callback", rc);
    return SDE_OK;
}

/* score = c1 out + c2 x for each output kind (the table in model.h). */
static void score_coeffs(int output, double a, double s, double *c1, double *c2)
{
    switch (output) {
    case SDE_OUTPUT_SCORE: *c1 = 1.0; *c2 = 0.0; break;
    case SDE_OUTPUT_EPSILON: *c1 = -1.0 / s; *c2 = 0.0; break;
    case SDE_OUTPUT_X0: *c1 = a / (s * s); *c2 = -1.0 / (s * s); break;
    default: { /* V */
        double n = a * a + s * s;
        *c1 = -a / (s * n);
        *c2 = -1.0 / n;
        break;
    }
    }
}

/* o[k] <- c1 o[k] + c2 x[k] in place for k < n. Returns the OR of the results' finiteness
 * flags (sde__nonfinite_flag), an integer reduction, so the loop vectorises; a floating-point
 * probe accumulated in one variable would keep it scalar. Cloned for AVX2 and AVX-512: with
 * SSE2 the OR chain moves 16 bytes a cycle, a third of what the cache delivers. The results
 * are the same in every clone (one rounding per operation, no contraction). */
SDE__CLONES
static uint64_t score_part_inplace(double c1, double c2, const double *restrict x,
                                   double *restrict o, size_t n)
{
    uint64_t flags = 0;
    if (c1 == 1.0 && c2 == 0.0) {
        for (size_t k = 0; k < n; k++)
            flags |= sde__nonfinite_flag(o[k]);
    } else if (c2 == 0.0) {
        for (size_t k = 0; k < n; k++) {
            double v = c1 * o[k];
            o[k] = v;
            flags |= sde__nonfinite_flag(v);
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            double v = c1 * o[k] + c2 * x[k];
            o[k] = v;
            flags |= sde__nonfinite_flag(v);
        }
    }
    return flags;
}

int sde__model_score_call(sde_model *m, const double *t, const double *x, double *work,
                          size_t batch, size_t dim, const char *func)
{
    return call_net(m, t, x, work, needs(m->output, 1, 0, 0), batch, dim, func);
}

uint64_t sde__model_score_convert(const sde_model *m, const double *x, double *work, size_t b,
                                  size_t k0, size_t k1)
{
    const double *a = m->scratch + m->cap, *s = a + m->cap;
    double c1, c2;
    score_coeffs(m->output, a[b], s[b], &c1, &c2);
    size_t off = b * m->dim + k0;
    return score_part_inplace(c1, c2, x + off, work + off, k1 - k0);
}

int sde__model_score_failed(const double *t, const double *work, size_t batch, size_t dim,
                            const char *func)
{
    size_t n = batch * dim, bad = sde__find_nonfinite(n, work);
    if (bad >= n)
        bad = 0;
    return sde__fail(SDE_E_NUMERIC, func,
                     "the network output is %g (converted to a score) at sample %zu, "
                     "element %zu (t = %.17g)",
                     work[bad], bad / dim, bad % dim, t[bad / dim]);
}

int sde__model_score_into(sde_model *m, const double *t, const double *x, double *work,
                          size_t batch, size_t dim, const char *func)
{
    SDE__CHECK(sde__model_score_call(m, t, x, work, batch, dim, func));
    uint64_t flags = 0;
    for (size_t b = 0; b < batch; b++)
        flags |= sde__model_score_convert(m, x, work, b, 0, dim);
    if (sde__nonfinite_seen(flags))
        return sde__model_score_failed(t, work, batch, dim, func);
    return SDE_OK;
}

int sde__model_eval(sde_model *m, const double *t, const double *x, double *raw_out,
                    double *score_out, double *x0_out, double *eps_out, size_t batch,
                    size_t dim, const char *func)
{
    SDE__CHECK(check_call(m, t, x, batch, dim, func));
    if (score_out == x || x0_out == x || eps_out == x || raw_out == x)
        return sde__fail(SDE_E_INVALID, func, "an output array aliases x");
    /* the network writes into the model's scratch, so the outputs stay untouched on failure */
    SDE__CHECK(reserve(m, batch, func));
    double *raw = m->scratch + 3 * m->cap;
    int need = needs(m->output, score_out != NULL, x0_out != NULL, eps_out != NULL);
    SDE__CHECK(call_net(m, t, x, raw, need, batch, dim, func));
    const double *a = m->scratch + m->cap, *s = a + m->cap;
    size_t bad = sde__find_nonfinite(batch * dim, raw);
    if (bad < batch * dim)
        return sde__fail(SDE_E_NUMERIC, func,
                         "the network output is %g at sample %zu, element %zu (t = %.17g)",
                         raw[bad], bad / dim, bad % dim, t[bad / dim]);
    for (size_t b = 0; b < batch; b++) {
        size_t off = b * dim;
        convert_row(m->output, a[b], s[b], x + off, raw + off, score_out ? score_out + off : NULL,
                    x0_out ? x0_out + off : NULL, eps_out ? eps_out + off : NULL, dim);
    }
    if (raw_out != NULL)
        memcpy(raw_out, raw, batch * dim * sizeof *raw);
    return SDE_OK;
}

int sde_model_score(sde_model *model, const double *t, const double *x, double *score_out,
                    size_t batch, size_t dim)
{
    const char *func = __func__;
    SDE__CHECK(sde__check_ptr(score_out, func, "score_out"));
    SDE__CHECK(check_call(model, t, x, batch, dim, func));
    if (score_out == x)
        return sde__fail(SDE_E_INVALID, func, "an output array aliases x");
    /* convert in the model's scratch and publish only a finished score */
    SDE__CHECK(reserve(model, batch, func));
    double *raw = model->scratch + 3 * model->cap;
    SDE__CHECK(sde__model_score_into(model, t, x, raw, batch, dim, func));
    memcpy(score_out, raw, batch * dim * sizeof *raw);
    return SDE_OK;
}

int sde_model_eval(sde_model *model, const double *t, const double *x, double *raw_out,
                   double *score_out, double *x0_out, double *eps_out, size_t batch, size_t dim)
{
    return sde__model_eval(model, t, x, raw_out, score_out, x0_out, eps_out, batch, dim,
                           __func__);
}

int sde_model_score_jvp(sde_model *model, const double *t, const double *x, const double *v,
                        double *jv_out, size_t batch, size_t dim)
{
    const char *func = __func__;
    SDE__CHECK(check_call(model, t, x, batch, dim, func));
    SDE__CHECK(sde__check_ptr(v, func, "v"));
    SDE__CHECK(sde__check_ptr(jv_out, func, "jv_out"));
    if (model->jvp == NULL)
        return sde__fail(SDE_E_UNSUPPORTED, func, "no JVP callback is attached to the model");
    SDE__CHECK(reserve(model, batch, func));
    if (model->jv_cap < batch) {
        double *jv = sde__malloc_array(batch * dim, sizeof *jv);
        if (jv == NULL)
            return sde__fail(SDE_E_NOMEM, func, "cannot allocate %zu x %zu doubles", batch, dim);
        sde__free(model->jv);
        model->jv = jv;
        model->jv_cap = batch;
    }
    double *labels = model->scratch, *a = labels + model->cap, *s = a + model->cap;
    SDE__CHECK(labels_and_coeffs(model, t, labels, a, s, batch));
    for (size_t b = 0; b < batch; b++)
        if (model->output != SDE_OUTPUT_SCORE && !(s[b] > 0.0))
            return sde__fail(SDE_E_NUMERIC, func, "the marginal std is %.17g at t[%zu] = %.17g",
                             s[b], b, t[b]);
    model->busy = 1;
    sde__callback_message_reset();
    int rc = model->jvp(labels, x, v, model->jv, batch, dim, model->user_data);
    model->busy = 0;
    if (rc != 0)
        return sde__callback_failed(func, "JVP callback", rc);
    size_t bad = sde__find_nonfinite(batch * dim, model->jv);
    if (bad < batch * dim)
        return sde__fail(SDE_E_NUMERIC, func, "the JVP is %g at sample %zu, element %zu",
                         model->jv[bad], bad / dim, bad % dim);
    /* score = c1 out + c2 x, so d score . v = c1 (J_out v) + c2 v */
    for (size_t b = 0; b < batch; b++) {
        double c1, c2;
        score_coeffs(model->output, a[b], s[b], &c1, &c2);
        const double *jb = model->jv + b * dim, *vb = v + b * dim;
        double *ob = jv_out + b * dim;
        for (size_t k = 0; k < dim; k++)
            ob[k] = c1 * jb[k] + c2 * vb[k];
    }
    return SDE_OK;
}
