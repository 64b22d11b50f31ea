/* The embedded Runge-Kutta driver (DOPRI5, BS3) with scipy's step-size control, for groups of
 * rows: a group is one row in per-sample mode (each row its own ODE, step and error norm) or
 * the whole batch (one ODE). All groups advance together, one whole-batch RHS call per stage,
 * each row at its own time; a finished group keeps being passed at (t1, y_final).
 *
 * Buffers: buf[0] = y, buf[1] = stage input / new state, buf[2 + j] = K_j (j = 0..stages, the
 * last one being the FSAL derivative at the new point). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ode_impl.h"

#define SAFETY 0.9
#define MIN_FACTOR 0.2
#define MAX_FACTOR 10.0
#define RETRY_FACTOR 0.5 /* step reduction after a recoverable RHS failure */

typedef struct ctx {
    sde__ode_run *r;
    const sde__ode_method *m;
    double *y, *yn;
    double *K[SDE__ODE_MAX_STAGES];
    double exponent; /* -1 / (err_order + 1) */
    size_t n_active;
} ctx;

static void group_times(ctx *c, size_t g, double t)
{
    size_t b0 = g * c->r->rows_per_group;
    for (size_t b = b0; b < b0 + c->r->rows_per_group; b++)
        c->r->s->trow[b] = t;
}

/* ---- element-wise kernels --------------------------------------------------------------
 * Every per-element pass of a step works on a list of terms: the nonzero coefficients of a
 * tableau row, times h, and their stage derivatives (a zero coefficient costs no read: DOPRI5's
 * b_2 and e_2 are 0). The kernels are instantiated for each fixed number of terms, so that the
 * sum over the terms is straight-line code and the loop over the elements vectorises; with a
 * runtime number of terms inside the element loop it runs scalar. Reductions keep SDE__LANES
 * partial sums (element k of a group goes to lane k % SDE__LANES), so they vectorise without
 * reordering an addition: a group's norm depends only on its own elements, never on the build
 * or on the batch around it. */

#if defined(__GNUC__)
#  define ODE_INLINE static inline __attribute__((always_inline))
#else
#  define ODE_INLINE static inline
#endif

enum { MAX_TERMS = SDE__ODE_MAX_STAGES + 1 };

typedef struct terms {
    int n;
    double w[MAX_TERMS];
    const double *k[MAX_TERMS];
} terms;

/* The terms h coef[j] K_j of the nonzero coef[j], j < count. */
static void make_terms(terms *t, double *const *K, const double *coef, int count, double h)
{
    t->n = 0;
    for (int j = 0; j < count; j++) {
        if (coef[j] != 0.0) {
            t->w[t->n] = h * coef[j];
            t->k[t->n] = K[j];
            t->n++;
        }
    }
}

/* sum_j w_j k_j[i], added in term order; nt >= 1 is a constant after inlining */
ODE_INLINE double terms_at(int nt, const double *w, const double *const *k, size_t i)
{
    double acc = w[0] * k[0][i];
    for (int j = 1; j < nt; j++)
        acc += w[j] * k[j][i];
    return acc;
}

/* out[i] = y[i] + sum_j w_j k_j[i] for i in [lo, hi) */
ODE_INLINE void combine_n(int nt, const terms *t, const double *restrict y,
                          double *restrict out, size_t lo, size_t hi)
{
    const double *k[MAX_TERMS];
    double w[MAX_TERMS];
    for (int j = 0; j < nt; j++) {
        k[j] = t->k[j];
        w[j] = t->w[j];
    }
    for (size_t i = lo; i < hi; i++)
        out[i] = y[i] + terms_at(nt, w, k, i);
}

static void combine(const terms *t, const double *restrict y, double *restrict out, size_t lo,
                    size_t hi)
{
    switch (t->n) {
    case 0: memcpy(out + lo, y + lo, (hi - lo) * sizeof *out); break;
    case 1: combine_n(1, t, y, out, lo, hi); break;
    case 2: combine_n(2, t, y, out, lo, hi); break;
    case 3: combine_n(3, t, y, out, lo, hi); break;
    case 4: combine_n(4, t, y, out, lo, hi); break;
    case 5: combine_n(5, t, y, out, lo, hi); break;
    case 6: combine_n(6, t, y, out, lo, hi); break;
    case 7: combine_n(7, t, y, out, lo, hi); break;
    default: combine_n(MAX_TERMS, t, y, out, lo, hi); break;
    }
}

/* The squared error of element i over its scale, err_i / (atol + max(|y_i|, |yn_i|) rtol).
 * The comparison gives fmax's value (y is finite) but compiles to a max instruction, where
 * fmax is a library call. */
ODE_INLINE double err_sq(int nt, const double *w, const double *const *k,
                         const double *restrict y, const double *restrict yn, double atol,
                         double rtol, size_t i)
{
    double ay = fabs(y[i]), an = fabs(yn[i]);
    double q = terms_at(nt, w, k, i) / (atol + (an > ay ? an : ay) * rtol);
    return q * q;
}

/* sum over [lo, hi) of err_sq, in SDE__LANES partial sums */
ODE_INLINE double err_sumsq_n(int nt, const terms *t, const double *restrict y,
                              const double *restrict yn, double atol, double rtol, size_t lo,
                              size_t hi)
{
    const double *k[MAX_TERMS];
    double w[MAX_TERMS];
    for (int j = 0; j < nt; j++) {
        k[j] = t->k[j];
        w[j] = t->w[j];
    }
    double p[SDE__LANES] = {0.0};
    size_t i = lo;
    for (; hi - i >= SDE__LANES; i += SDE__LANES)
        for (int l = 0; l < SDE__LANES; l++)
            p[l] += err_sq(nt, w, k, y, yn, atol, rtol, i + (size_t)l);
    for (int l = 0; i < hi; i++, l++)
        p[l] += err_sq(nt, w, k, y, yn, atol, rtol, i);
    return sde__lanes_sum(p);
}

static double err_sumsq(const terms *t, const double *y, const double *yn, double atol,
                        double rtol, size_t lo, size_t hi)
{
    switch (t->n) {
    case 0: return 0.0;
    case 1: return err_sumsq_n(1, t, y, yn, atol, rtol, lo, hi);
    case 2: return err_sumsq_n(2, t, y, yn, atol, rtol, lo, hi);
    case 3: return err_sumsq_n(3, t, y, yn, atol, rtol, lo, hi);
    case 4: return err_sumsq_n(4, t, y, yn, atol, rtol, lo, hi);
    case 5: return err_sumsq_n(5, t, y, yn, atol, rtol, lo, hi);
    case 6: return err_sumsq_n(6, t, y, yn, atol, rtol, lo, hi);
    case 7: return err_sumsq_n(7, t, y, yn, atol, rtol, lo, hi);
    default: return err_sumsq_n(MAX_TERMS, t, y, yn, atol, rtol, lo, hi);
    }
}

/* ((v - u) / (atol + |y| rtol))^2 of element i; v = NULL stands for y, u = NULL for 0 */
static inline double scaled_sq(const double *v, const double *u, const double *y, double atol,
                               double rtol, size_t i)
{
    double d = (v ? v[i] : y[i]) - (u ? u[i] : 0.0);
    double q = d / (atol + fabs(y[i]) * rtol);
    return q * q;
}

/* RMS norm of (v - u) / (atol + rtol |y|) over group g (the first-step selection) */
static double rms_scaled(const ctx *c, size_t g, const double *v, const double *u,
                         const double *y)
{
    const sde__ode_run *r = c->r;
    double rtol = r->s->rtol, atol = r->s->atol, p[SDE__LANES] = {0.0};
    size_t lo = g * r->glen, hi = lo + r->glen, i = lo;
    for (; hi - i >= SDE__LANES; i += SDE__LANES)
        for (int l = 0; l < SDE__LANES; l++)
            p[l] += scaled_sq(v, u, y, atol, rtol, i + (size_t)l);
    for (int l = 0; i < hi; i++, l++)
        p[l] += scaled_sq(v, u, y, atol, rtol, i);
    return sqrt(sde__lanes_sum(p) / (double)r->glen);
}

/* Stop with SDE_E_NOT_CONVERGED for group g: its step fell below the minimum (max_steps = 0,
 * `habs` the step) or it used up its step attempts (max_steps = 1). */
static int fail_row(ctx *c, size_t g, int max_steps, double habs)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    s->t_reached = s->gt[g];
    char row[48] = "";
    if (r->per_sample && r->batch > 1)
        snprintf(row, sizeof row, "row %zu: ", g);
    if (max_steps)
        return sde__fail(SDE_E_NOT_CONVERGED, r->func,
                         "%sthe maximum number of steps (%lld) was reached at t = %.17g "
                         "(integrating from %.17g to %.17g; %llu accepted, %llu rejected)",
                         row, (long long)s->max_steps, s->gt[g], r->t0, r->t1,
                         (unsigned long long)s->gacc[g], (unsigned long long)s->grej[g]);
    return sde__fail(SDE_E_NOT_CONVERGED, r->func,
                     "%sthe step size %.3g fell below the minimum step %.3g at t = %.17g "
                     "(integrating from %.17g to %.17g; %llu accepted, %llu rejected)",
                     row, habs, s->gmin[g], s->gt[g], r->t0, r->t1,
                     (unsigned long long)s->gacc[g], (unsigned long long)s->grej[g]);
}

/* The first step of every group: scipy's select_initial_step (one RHS call), or the option. */
static int initial_steps(ctx *c)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    double interval = fabs(r->t1 - r->t0);
    double hmax = s->max_step > 0.0 ? s->max_step : INFINITY;
    if (s->first_step > 0.0) {
        for (size_t g = 0; g < r->n_groups; g++)
            s->ghabs[g] = fmin(s->first_step, interval);
        return SDE_OK;
    }
    double *y = c->y, *f0 = c->K[0], *y1 = c->yn, *f1 = c->K[1];
    for (size_t g = 0; g < r->n_groups; g++) {
        double d0 = rms_scaled(c, g, NULL, NULL, y), d1 = rms_scaled(c, g, f0, NULL, y);
        double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
        h0 = fmin(h0, interval);
        s->gh[g] = h0;
        s->gtmp[g] = d1;
        size_t off = g * r->glen;
        for (size_t i = off; i < off + r->glen; i++)
            y1[i] = y[i] + h0 * r->dir * f0[i];
        double tp = r->t0 + h0 * r->dir;
        group_times(c, g, r->dir * (tp - r->t1) > 0.0 ? r->t1 : tp);
    }
    int rc = sde__ode_call(r, y1, f1, 1);
    if (rc < 0)
        return rc;
    for (size_t g = 0; g < r->n_groups; g++) {
        double h0 = s->gh[g];
        if (rc == SDE__ODE_RECOVERABLE) { /* the probe failed: start with the small step */
            s->ghabs[g] = h0;
            continue;
        }
        double d1 = s->gtmp[g], d2 = rms_scaled(c, g, f1, f0, y) / h0;
        double h1 = (d1 <= 1e-15 && d2 <= 1e-15)
                        ? fmax(1e-6, h0 * 1e-3)
                        : pow(0.01 / fmax(d1, d2), 1.0 / (c->m->err_order + 1));
        s->ghabs[g] = fmin(fmin(100.0 * h0, h1), fmin(interval, hmax));
    }
    return SDE_OK;
}

/* Prepare the next attempt of every active group: clamp the step, check the limits, clip to
 * t1 (and to the next output time without dense output). */
static int plan_steps(ctx *c)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    for (size_t g = 0; g < r->n_groups; g++) {
        if (s->gflag[g] & SDE__ODE_G_DONE)
            continue;
        double t = s->gt[g], habs = s->ghabs[g];
        if (!(s->gflag[g] & SDE__ODE_G_RETRY)) {
            double ulp10 = 10.0 * fabs(nextafter(t, r->dir * INFINITY) - t);
            s->gmin[g] = fmax(s->min_step, ulp10);
            if (s->max_step > 0.0 && habs > s->max_step)
                habs = s->max_step;
            else if (habs < s->gmin[g])
                habs = s->gmin[g];
        } else if (habs < s->gmin[g]) {
            return fail_row(c, g, 0, habs);
        }
        if (s->gacc[g] + s->grej[g] >= (uint64_t)s->max_steps)
            return fail_row(c, g, 1, 0.0);
        double t_new = t + habs * r->dir;
        if (r->dir * (t_new - r->t1) > 0.0)
            t_new = r->t1;
        size_t k = s->gnext[g];
        if (!s->dense && k < r->n_out && r->dir * (t_new - r->t_out[k]) > 0.0)
            t_new = r->t_out[k];
        s->gh[g] = t_new - t;
        s->ghabs[g] = fabs(s->gh[g]);
        s->gtmp[g] = t_new; /* exact, so that the last stage is evaluated at t1 itself */
    }
    return SDE_OK;
}

/* yn = y + h sum_{j < nk} w[j] K_j over the active groups (nk <= stages). */
static void stage_input(ctx *c, const double *w, int nk)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    for (size_t g = 0; g < r->n_groups; g++) {
        if (s->gflag[g] & SDE__ODE_G_DONE)
            continue;
        terms t;
        make_terms(&t, c->K, w, nk, s->gh[g]);
        combine(&t, c->y, c->yn, g * r->glen, (g + 1) * r->glen);
    }
}

static void stage_times(ctx *c, double cs)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    for (size_t g = 0; g < r->n_groups; g++)
        if (!(s->gflag[g] & SDE__ODE_G_DONE))
            group_times(c, g, cs == 1.0 ? s->gtmp[g] : s->gt[g] + cs * s->gh[g]);
}

/* Outputs of group g passed by its accepted step from gt to gt + gh (y and K not yet
 * advanced; yn holds the new state). */
static void dense_outputs(ctx *c, size_t g)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    const sde__ode_method *m = c->m;
    double t = s->gt[g], h = s->gh[g], t_new = s->gtmp[g];
    size_t k = s->gnext[g];
    size_t lo = g * r->glen, hi = lo + r->glen;
    int nK = m->stages + 1;
    for (; k < r->n_out && r->dir * (r->t_out[k] - t_new) <= 0.0; k++) {
        if (r->t_out[k] == t_new) {
            sde__ode_emit(r, k, g, c->yn);
            continue;
        }
        double x = (r->t_out[k] - t) / h, w[MAX_TERMS];
        for (int j = 0; j < nK; j++) {
            double xp = x, acc = 0.0;
            for (int q = 0; q < m->n_dense; q++) {
                acc += m->p[j * m->n_dense + q] * xp;
                xp *= x;
            }
            w[j] = acc;
        }
        terms tm;
        make_terms(&tm, c->K, w, nK, h);
        combine(&tm, c->y, r->y_out + k * r->n, lo, hi);
    }
    s->gnext[g] = k;
}

/* Accept or reject each active group's attempt from its error estimate. */
static void decide(ctx *c)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    const sde__ode_method *m = c->m;
    int S = m->stages;
    for (size_t g = 0; g < r->n_groups; g++) {
        if (s->gflag[g] & SDE__ODE_G_DONE)
            continue;
        size_t lo = g * r->glen, hi = lo + r->glen;
        terms t;
        make_terms(&t, c->K, m->e, S + 1, s->gh[g]);
        double acc = err_sumsq(&t, c->y, c->yn, s->atol, s->rtol, lo, hi);
        double norm = sqrt(acc / (double)r->glen);
        if (norm < 1.0) {
            double factor = norm == 0.0 ? MAX_FACTOR
                                        : fmin(MAX_FACTOR, SAFETY * pow(norm, c->exponent));
            if (s->gflag[g] & SDE__ODE_G_RETRY)
                factor = fmin(1.0, factor);
            s->ghabs[g] *= factor;
            dense_outputs(c, g);
            double t_new = s->gtmp[g];
            if (r->n_groups > 1) {
                memcpy(c->y + lo, c->yn + lo, r->glen * sizeof(double));
                memcpy(c->K[0] + lo, c->K[S] + lo, r->glen * sizeof(double));
            } else { /* one group: swap the buffers instead of copying */
                double *tmp = c->y;
                c->y = c->yn;
                c->yn = tmp;
                tmp = c->K[0];
                c->K[0] = c->K[S];
                c->K[S] = tmp;
            }
            s->gt[g] = t_new;
            s->gacc[g]++;
            s->gflag[g] &= (unsigned char)~SDE__ODE_G_RETRY;
            if (t_new == r->t1) {
                s->gflag[g] |= SDE__ODE_G_DONE;
                group_times(c, g, r->t1); /* its rows stay at (t1, y_final) from now on */
                c->n_active--;
            }
        } else {
            double f = SAFETY * pow(norm, c->exponent);
            s->ghabs[g] *= f > MIN_FACTOR ? f : MIN_FACTOR; /* NaN norm -> MIN_FACTOR */
            s->gflag[g] |= SDE__ODE_G_RETRY;
            s->grej[g]++;
        }
    }
}

/* A recoverable RHS failure: every active group rejects its attempt and halves its step. */
static void retry_all(ctx *c)
{
    sde__ode_run *r = c->r;
    sde_ode_solver *s = r->s;
    for (size_t g = 0; g < r->n_groups; g++) {
        if (s->gflag[g] & SDE__ODE_G_DONE)
            continue;
        s->ghabs[g] *= RETRY_FACTOR;
        s->gflag[g] |= SDE__ODE_G_RETRY;
        s->grej[g]++;
    }
}

int sde__ode_adaptive(sde__ode_run *r)
{
    sde_ode_solver *s = r->s;
    ctx c;
    c.r = r;
    c.m = s->m;
    c.y = s->buf[0];
    c.yn = s->buf[1];
    for (int j = 0; j <= c.m->stages; j++)
        c.K[j] = s->buf[2 + j];
    c.exponent = -1.0 / (c.m->err_order + 1);
    c.n_active = r->n_groups;

    /* outputs requested at t0 */
    size_t k0 = 0;
    while (k0 < r->n_out && r->t_out[k0] == r->t0) {
        for (size_t g = 0; g < r->n_groups; g++)
            sde__ode_emit(r, k0, g, c.y);
        k0++;
    }
    for (size_t g = 0; g < r->n_groups; g++)
        s->gnext[g] = k0;

    for (size_t b = 0; b < r->batch; b++)
        s->trow[b] = r->t0;
    int rc = sde__ode_call(r, c.y, c.K[0], 1);
    if (rc == SDE__ODE_RECOVERABLE)
        return sde__fail(SDE_E_CALLBACK, r->func,
                         "the ODE right-hand side returned a recoverable status at the initial "
                         "point t0 = %.17g, where no smaller step can help",
                         r->t0);
    if (rc != SDE_OK)
        return rc;
    SDE__CHECK(initial_steps(&c));

    int S = c.m->stages;
    while (c.n_active > 0) {
        SDE__CHECK(plan_steps(&c));
        int recoverable = 0;
        for (int st = 1; st <= S && !recoverable; st++) {
            /* stage st < S uses row st of a; stage S forms the new state with b */
            const double *w = st < S ? c.m->a + st * S : c.m->b;
            stage_input(&c, w, st < S ? st : S);
            stage_times(&c, st < S ? c.m->c[st] : 1.0);
            rc = sde__ode_call(r, c.yn, c.K[st], 1);
            if (rc < 0)
                return rc;
            recoverable = rc == SDE__ODE_RECOVERABLE;
        }
        if (recoverable)
            retry_all(&c);
        else
            decide(&c);
    }
    /* the result must be in buf[0] */
    if (c.y != s->buf[0])
        memcpy(s->buf[0], c.y, r->n * sizeof(double));
    return SDE_OK;
}
