/* ODE solvers and the probability-flow ODE sampler: convergence orders, tolerance, scipy's
 * step sequence, per-sample independence, outputs at requested times, failure modes
 * (blow-up, stiffness, failing / NaN / recoverable callbacks), options; the sampler against
 * the closed-form probability-flow solution of a Gaussian, encode/decode round trips. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sde_private.h"
#include "testutil.h"

/* ---- test problems -------------------------------------------------------------------- */

/* y' = cos(t) y, y(t0) = y0  ->  y(t) = y0 exp(sin t - sin t0), every value of every row. */
static int cos_rhs(const double *t, const double *y, double *dy, size_t batch, size_t dim,
                   void *u)
{
    (void)u;
    for (size_t b = 0; b < batch; b++)
        for (size_t k = 0; k < dim; k++)
            dy[b * dim + k] = cos(t[b]) * y[b * dim + k];
    return 0;
}

static double cos_exact(double y0, double t0, double t) { return y0 * exp(sin(t) - sin(t0)); }

static sde_ode_solver *make_solver(int method, size_t max_batch, size_t dim)
{
    sde_ode_solver *s = NULL;
    ck_assert_int_eq(sde_ode_solver_new(&s, method, max_batch, dim), SDE_OK);
    ck_assert_ptr_nonnull(s);
    return s;
}

static double cos_error(sde_ode_solver *s, double t0, double t1)
{
    double y0[4] = {1.0, -0.5, 2.0, 0.25}, y[4];
    memcpy(y, y0, sizeof y);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cos_rhs, NULL, t0, t1, y, 2, 2), SDE_OK);
    double err = 0.0;
    for (int i = 0; i < 4; i++)
        err = fmax(err, fabs(y[i] - cos_exact(y0[i], t0, t1)));
    return err;
}

/* Least-squares slope of log(err) against log(h). */
static double slope(const double *h, const double *e, int n)
{
    double mx = 0, my = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        mx += log(h[i]) / n;
        my += log(e[i]) / n;
    }
    for (int i = 0; i < n; i++) {
        sxx += (log(h[i]) - mx) * (log(h[i]) - mx);
        sxy += (log(h[i]) - mx) * (log(e[i]) - my);
    }
    return sxy / sxx;
}

/* ---- fixed-step orders ----------------------------------------------------------------- */

START_TEST(fixed_step_orders)
{
    static const int methods[3] = {SDE_ODE_EULER, SDE_ODE_HEUN, SDE_ODE_RK4};
    int method = methods[_i % 3], backwards = _i / 3;
    int order = sde_ode_method_order(method);
    sde_ode_solver *s = make_solver(method, 2, 2);
    double t0 = backwards ? 2.0 : 0.0, t1 = backwards ? 0.0 : 2.0;
    double h[4], e[4];
    for (int k = 0; k < 4; k++) {
        int64_t N = 16 << k;
        ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_NUM_STEPS, N), SDE_OK);
        h[k] = fabs(t1 - t0) / (double)N;
        e[k] = cos_error(s, t0, t1);
        uint64_t nfe, acc, rej;
        ck_assert_int_eq(sde_ode_solver_get_nfe(s, &nfe), SDE_OK);
        ck_assert_int_eq(sde_ode_solver_get_accepted_steps(s, &acc), SDE_OK);
        ck_assert_int_eq(sde_ode_solver_get_rejected_steps(s, &rej), SDE_OK);
        /* calls per step: 1, 2, 4 (= the order for these three) */
        ck_assert_uint_eq(nfe, (uint64_t)N * (uint64_t)(order == 4 ? 4 : order));
        ck_assert_uint_eq(rej, 0);
        ck_assert_uint_eq(acc, (uint64_t)N * 2); /* summed over the two rows */
    }
    double p = slope(h, e, 4);
    ck_assert_msg(fabs(p - order) < 0.15, "%s: observed order %.3f, expected %d (errors %g .. %g)",
                  sde_ode_method_name(method), p, order, e[0], e[3]);
    sde_ode_solver_free(s);
}
END_TEST

/* ---- adaptive methods ------------------------------------------------------------------ */

START_TEST(adaptive_meets_tolerance)
{
    int method = _i < 2 ? SDE_ODE_DOPRI5 : SDE_ODE_BS3;
    int per_sample = _i % 2;
    sde_ode_solver *s = make_solver(method, 2, 2);
    ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_PER_SAMPLE, per_sample), SDE_OK);
    double prev_err = INFINITY;
    uint64_t prev_nfe = 0;
    for (int k = 0; k < 3; k++) {
        double tol = pow(10.0, -4 - 2 * k);
        ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, tol), SDE_OK);
        ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, tol), SDE_OK);
        double err = cos_error(s, 0.0, 6.0);
        /* The controller bounds the local error by atol + rtol |y| per step; the global error
         * at t = 6 (|y| <= 1.6 there) stays within a small multiple of it: measured 0.2-0.7x
         * for DOPRI5 and 3.5-6x for BS3, whose lower-order estimate is less sharp. */
        double allowed = (method == SDE_ODE_DOPRI5 ? 2.0 : 10.0) * tol * (1.0 + 1.6);
        ck_assert_msg(err < allowed, "%s tol %g: error %g > %g", sde_ode_method_name(method),
                      tol, err, allowed);
        ck_assert_msg(err < prev_err, "tighter tolerance, larger error (%g >= %g)", err, prev_err);
        uint64_t nfe;
        ck_assert_int_eq(sde_ode_solver_get_nfe(s, &nfe), SDE_OK);
        ck_assert_uint_gt(nfe, prev_nfe);
        prev_err = err;
        prev_nfe = nfe;
        double tr;
        ck_assert_int_eq(sde_ode_solver_get_t_reached(s, &tr), SDE_OK);
        ck_assert_double_eq(tr, 6.0);
    }
    sde_ode_solver_free(s);
}
END_TEST

/* scipy's documented example, solve_ivp(lambda t, y: -0.5 y, [0, 10], [2, 4, 8]) with RK45 at
 * its default rtol 1e-3, atol 1e-6: the same steps (sol.t), the same end state, and
 * nfev = 2 + 6 x 7 = 44. */
static double seen_t[4096];
static size_t n_seen;

static int decay_rhs(const double *t, const double *y, double *dy, size_t batch, size_t dim,
                     void *u)
{
    (void)u;
    if (n_seen < 4096)
        seen_t[n_seen++] = t[0];
    for (size_t i = 0; i < batch * dim; i++)
        dy[i] = -0.5 * y[i];
    return 0;
}

START_TEST(dopri5_takes_scipys_steps)
{
    static const double scipy_t[7] = {0.11487653, 1.26364188, 3.06061781, 4.81611105,
                                      6.57445806, 8.33328988, 10.0};
    static const double scipy_y[3] = {0.01350781, 0.02701561, 0.05403123};
    sde_ode_solver *s = make_solver(SDE_ODE_DOPRI5, 1, 3);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, 1e-3), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, 1e-6), SDE_OK);
    double y[3] = {2, 4, 8};
    n_seen = 0;
    ck_assert_int_eq(sde_ode_solver_integrate(s, decay_rhs, NULL, 0, 10, y, 1, 3), SDE_OK);
    uint64_t nfe, acc, rej;
    sde_ode_solver_get_nfe(s, &nfe);
    sde_ode_solver_get_accepted_steps(s, &acc);
    sde_ode_solver_get_rejected_steps(s, &rej);
    ck_assert_uint_eq(nfe, 44);
    ck_assert_uint_eq(acc, 7);
    ck_assert_uint_eq(rej, 0);
    ck_assert_uint_eq(n_seen, 44);
    /* call 1 is f(t0), call 2 the step-size probe, then six per step, the last at t_new */
    for (int k = 0; k < 7; k++)
        ck_assert_double_eq_tol(seen_t[7 + 6 * k], scipy_t[k], 6e-9);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(y[i], scipy_y[i], 6e-9);
    sde_ode_solver_free(s);
}
END_TEST

/* Each row of a per-sample batch gets exactly the result it gets alone; in whole-batch mode
 * the batch-mates change it. */
static int cubic_rhs(const double *t, const double *y, double *dy, size_t batch, size_t dim,
                     void *u)
{
    (void)u;
    for (size_t b = 0; b < batch; b++)
        for (size_t k = 0; k < dim; k++) {
            double v = y[b * dim + k];
            dy[b * dim + k] = -v * v * v + cos(3.0 * t[b] + (double)k);
        }
    return 0;
}

/* The same with rows long enough for the vectorised passes (two blocks of 8 plus a tail of 3,
 * the error norm's 8 partial sums) and starting at offsets that are not multiples of a vector:
 * a row's bits must not depend on where in the batch it sits. */
START_TEST(per_sample_long_rows_are_independent)
{
    int method = _i == 0 ? SDE_ODE_DOPRI5 : SDE_ODE_BS3;
    enum { B = 3, DIM = 19 };
    double y0[B * DIM], fwd[B * DIM], rev[B * DIM];
    for (int i = 0; i < B * DIM; i++)
        y0[i] = 0.3 * sin(1.7 * i) + 0.5 * (i / DIM);
    for (int b = 0; b < B; b++) /* rev holds the rows in reverse order */
        memcpy(rev + (B - 1 - b) * DIM, y0 + b * DIM, DIM * sizeof(double));
    memcpy(fwd, y0, sizeof fwd);
    sde_ode_solver *s = make_solver(method, B, DIM);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, 1e-7), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, 1e-9), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 1.5, fwd, B, DIM),
                     SDE_OK);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 1.5, rev, B, DIM),
                     SDE_OK);
    for (int b = 0; b < B; b++) {
        double alone[DIM];
        memcpy(alone, y0 + b * DIM, sizeof alone);
        ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 1.5, alone, 1, DIM),
                         SDE_OK);
        for (int k = 0; k < DIM; k++) {
            ck_assert_msg(alone[k] == fwd[b * DIM + k], "row %d value %d", b, k);
            ck_assert_msg(alone[k] == rev[(B - 1 - b) * DIM + k], "row %d value %d", b, k);
        }
    }
    sde_ode_solver_free(s);
}
END_TEST

START_TEST(per_sample_rows_are_independent)
{
    int method = _i == 0 ? SDE_ODE_DOPRI5 : SDE_ODE_BS3;
    enum { B = 4, DIM = 3 };
    const double y0[B * DIM] = {0.1, 0.2, -0.1, 4.0, -3.0, 2.0, -0.5, 0.0, 0.5, 8.0, 1.0, -6.0};
    sde_ode_solver *s = make_solver(method, B, DIM);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, 1e-6), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, 1e-8), SDE_OK);
    double batch_y[B * DIM];
    memcpy(batch_y, y0, sizeof batch_y);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 2.0, batch_y, B, DIM),
                     SDE_OK);
    uint64_t acc[B], total = 0, acc_sum;
    for (int b = 0; b < B; b++) {
        double tr;
        ck_assert_int_eq(sde_ode_solver_get_sample_stats(s, (size_t)b, &acc[b], NULL, &tr),
                         SDE_OK);
        ck_assert_double_eq(tr, 2.0);
        total += acc[b];
    }
    ck_assert_int_eq(sde_ode_solver_get_accepted_steps(s, &acc_sum), SDE_OK);
    ck_assert_uint_eq(acc_sum, total);
    ck_assert_uint_ne(acc[0], acc[3]); /* the stiff-ish row takes more steps */
    for (int b = 0; b < B; b++) {
        double alone[DIM];
        memcpy(alone, y0 + b * DIM, sizeof alone);
        ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 2.0, alone, 1, DIM),
                         SDE_OK);
        uint64_t a1;
        sde_ode_solver_get_accepted_steps(s, &a1);
        ck_assert_uint_eq(a1, acc[b]);
        for (int k = 0; k < DIM; k++)
            ck_assert_msg(alone[k] == batch_y[b * DIM + k], "row %d value %d: %.17g vs %.17g", b,
                          k, alone[k], batch_y[b * DIM + k]);
    }
    /* whole-batch (reference) mode: one step sequence, so row 0 differs from its lone run */
    ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_PER_SAMPLE, 0), SDE_OK);
    double whole[B * DIM], alone0[DIM];
    memcpy(whole, y0, sizeof whole);
    memcpy(alone0, y0, sizeof alone0);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 2.0, whole, B, DIM),
                     SDE_OK);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cubic_rhs, NULL, 0.0, 2.0, alone0, 1, DIM),
                     SDE_OK);
    int differs = 0;
    for (int k = 0; k < DIM; k++)
        differs |= whole[k] != alone0[k];
    ck_assert(differs);
    for (int i = 0; i < B * DIM; i++) /* but both are accurate */
        ck_assert_double_eq_tol(whole[i], batch_y[i], 1e-4);
    sde_ode_solver_free(s);
}
END_TEST

/* Outputs at requested times: dense output does not change the steps or the end state; both
 * interpolated and stepped-to outputs are accurate; fixed-step methods split their steps. */
START_TEST(outputs_at_requested_times)
{
    static const int methods[4] = {SDE_ODE_DOPRI5, SDE_ODE_BS3, SDE_ODE_RK4, SDE_ODE_HEUN};
    int method = methods[_i];
    enum { NOUT = 6 };
    const double t_out[NOUT] = {3.0, 2.5, 2.5, 1.234, 0.3, 0.0}; /* backwards, with a repeat */
    const double y0[4] = {1.0, -2.0, 0.5, 3.0};
    sde_ode_solver *s = make_solver(method, 2, 2);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, 1e-9), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, 1e-9), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_NUM_STEPS, 400), SDE_OK);
    double plain[4], with_out[4], out[NOUT * 4];
    memcpy(plain, y0, sizeof plain);
    memcpy(with_out, y0, sizeof with_out);
    ck_assert_int_eq(sde_ode_solver_integrate(s, cos_rhs, NULL, 3.0, 0.0, plain, 2, 2), SDE_OK);
    uint64_t nfe_plain;
    sde_ode_solver_get_nfe(s, &nfe_plain);
    int adaptive = sde_ode_method_is_adaptive(method);
    for (int dense = 1; dense >= (adaptive ? 0 : 1); dense--) {
        ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_DENSE_OUTPUT, dense), SDE_OK);
        memcpy(with_out, y0, sizeof with_out);
        ck_assert_int_eq(sde_ode_solver_integrate_times(s, cos_rhs, NULL, 3.0, 0.0, with_out,
                                                        NOUT, t_out, out, 2, 2), SDE_OK);
        uint64_t nfe;
        sde_ode_solver_get_nfe(s, &nfe);
        if (adaptive && dense) { /* interpolation leaves the integration itself alone */
            ck_assert_uint_eq(nfe, nfe_plain);
            for (int i = 0; i < 4; i++)
                ck_assert_double_eq(with_out[i], plain[i]);
        }
        double tol = method == SDE_ODE_HEUN ? 1e-4 : 1e-7;
        for (int k = 0; k < NOUT; k++)
            for (int i = 0; i < 4; i++) {
                double want = cos_exact(y0[i], 3.0, t_out[k]);
                ck_assert_msg(fabs(out[k * 4 + i] - want) < tol * (1 + fabs(want)),
                              "%s dense %d: t_out %g value %d: %.12g vs %.12g",
                              sde_ode_method_name(method), dense, t_out[k], i, out[k * 4 + i],
                              want);
            }
        for (int i = 0; i < 4; i++) {
            ck_assert_double_eq(out[i], y0[i]);                   /* t_out[0] = t0 */
            ck_assert_double_eq(out[(NOUT - 1) * 4 + i], with_out[i]); /* t_out[5] = t1 */
            ck_assert_double_eq(out[4 + i], out[8 + i]);          /* the repeat */
        }
    }
    sde_ode_solver_free(s);
}
END_TEST

/* ---- failures ------------------------------------------------------------------------- */

/* y' = y^2, y(0) = 1 blows up at t = 1. */
static int blowup_rhs(const double *t, const double *y, double *dy, size_t batch, size_t dim,
                      void *u)
{
    (void)t, (void)u;
    for (size_t i = 0; i < batch * dim; i++)
        dy[i] = y[i] * y[i];
    return 0;
}

/* y' = -1e6 (y - cos t): stiff; an explicit method needs ~1e6 steps on [0, 2]. */
static int stiff_rhs(const double *t, const double *y, double *dy, size_t batch, size_t dim,
                     void *u)
{
    (void)u;
    for (size_t b = 0; b < batch; b++)
        for (size_t k = 0; k < dim; k++)
            dy[b * dim + k] = -1e6 * (y[b * dim + k] - cos(t[b]));
    return 0;
}

START_TEST(blowup_and_stiffness_do_not_converge)
{
    int method = _i == 0 ? SDE_ODE_DOPRI5 : SDE_ODE_BS3;
    sde_ode_solver *s = make_solver(method, 3, 1);
    double y[3] = {1.0, 0.5, 0.25};
    long live = sde__alloc_live();
    tu_assert_fails_with(sde_ode_solver_integrate(s, blowup_rhs, NULL, 0.0, 2.0, y, 3, 1),
                         SDE_E_NOT_CONVERGED, "fell below the minimum step");
    ck_assert(strstr(sde_last_error(), "row 0") != NULL); /* the row that blows up first */
    double tr;
    char want[64];
    ck_assert_int_eq(sde_ode_solver_get_t_reached(s, &tr), SDE_OK);
    /* the numerical solution's singularity sits within the tolerance of t = 1 */
    ck_assert_msg(fabs(tr - 1.0) < 1e-3, "t reached %.17g", tr);
    snprintf(want, sizeof want, "t = %.17g", tr);
    ck_assert_msg(strstr(sde_last_error(), want) != NULL, "'%s' lacks '%s'", sde_last_error(),
                  want);
    ck_assert_double_eq(y[0], 1.0); /* untouched */
    ck_assert_double_eq(y[1], 0.5);
    /* a minimum step well above 10 ulp stops it earlier */
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_MIN_STEP, 1e-6), SDE_OK);
    tu_assert_fails_with(sde_ode_solver_integrate(s, blowup_rhs, NULL, 0.0, 2.0, y, 3, 1),
                         SDE_E_NOT_CONVERGED, "minimum step 1e-06");
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_MIN_STEP, 0.0), SDE_OK);

    /* stiffness: the step-attempt limit */
    ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_MAX_STEPS, 500), SDE_OK);
    double z[1] = {0.0};
    tu_assert_fails_with(sde_ode_solver_integrate(s, stiff_rhs, NULL, 0.0, 2.0, z, 1, 1),
                         SDE_E_NOT_CONVERGED, "maximum number of steps (500)");
    ck_assert_int_eq(sde_ode_solver_get_t_reached(s, &tr), SDE_OK);
    ck_assert(tr > 0.0 && tr < 2.0);
    snprintf(want, sizeof want, "t = %.17g", tr);
    ck_assert_msg(strstr(sde_last_error(), want) != NULL, "'%s' lacks '%s'", sde_last_error(),
                  want);
    ck_assert_double_eq(z[0], 0.0);
    uint64_t acc, rej;
    sde_ode_solver_get_accepted_steps(s, &acc);
    sde_ode_solver_get_rejected_steps(s, &rej);
    ck_assert_uint_eq(acc + rej, 500);
    ck_assert_int_eq(sde__alloc_live(), live);
    sde_ode_solver_free(s);
}
END_TEST

struct cb_state {
    int mode;       /* 0 ok, 1 fatal, 2 NaN, 3 recoverable in a window, 4 re-entrant */
    int fail_count; /* mode 3: how many recoverable failures to give */
    int calls;
    sde_ode_solver *self;
    int inner;
};

static int flaky_rhs(const double *t, const double *y, double *dy, size_t batch, size_t dim,
                     void *u)
{
    struct cb_state *st = u;
    st->calls++;
    cos_rhs(t, y, dy, batch, dim, NULL);
    switch (st->mode) {
    case 1:
        if (t[0] > 0.5) {
            sde_set_error_message("the network caught fire");
            return -42;
        }
        break;
    case 2:
        if (t[0] > 0.5)
            dy[batch * dim - 1] = NAN;
        break;
    case 3: /* recoverable whenever a stage reaches past t = 1 while failures are left */
        for (size_t b = 0; b < batch; b++)
            if (t[b] > 1.0 && st->fail_count > 0) {
                st->fail_count--;
                return 7;
            }
        break;
    case 4:
        st->inner = sde_ode_solver_set_real(st->self, SDE_OPT_ODE_RTOL, 1e-3);
        return -1;
    default:
        break;
    }
    return 0;
}

START_TEST(callback_failures)
{
    int method = _i == 0 ? SDE_ODE_DOPRI5 : SDE_ODE_RK4;
    int adaptive = sde_ode_method_is_adaptive(method);
    sde_ode_solver *s = make_solver(method, 2, 2);
    ck_assert_int_eq(sde_ode_solver_set_int(s, SDE_OPT_ODE_NUM_STEPS, 40), SDE_OK);
    const double y0[4] = {1, 2, 3, 4};
    double y[4];
    memcpy(y, y0, sizeof y);
    long live = sde__alloc_live();
    struct cb_state st = {1, 0, 0, s, 0};

    tu_assert_fails_with(sde_ode_solver_integrate(s, flaky_rhs, &st, 0, 2, y, 2, 2),
                         SDE_E_CALLBACK, "the network caught fire");
    ck_assert(strstr(sde_last_error(), "-42") != NULL);
    ck_assert(memcmp(y, y0, sizeof y) == 0);
    double tr;
    sde_ode_solver_get_t_reached(s, &tr);
    ck_assert(tr >= 0.0 && tr <= 0.5 + 1e-12);

    st.mode = 2;
    tu_assert_fails_with(sde_ode_solver_integrate(s, flaky_rhs, &st, 0, 2, y, 2, 2),
                         SDE_E_NUMERIC, "row 1, element 1");
    ck_assert(memcmp(y, y0, sizeof y) == 0);

    st.mode = 4;
    tu_assert_fails_with(sde_ode_solver_integrate(s, flaky_rhs, &st, 0, 2, y, 2, 2),
                         SDE_E_CALLBACK, "returned -1");
    ck_assert_int_eq(st.inner, SDE_E_STATE);
    ck_assert(memcmp(y, y0, sizeof y) == 0);

    /* recoverable statuses: an adaptive method retries with smaller steps and succeeds; a
     * fixed-step method treats them as fatal */
    st.mode = 3;
    st.fail_count = 3;
    int rc = sde_ode_solver_integrate(s, flaky_rhs, &st, 0, 2, y, 2, 2);
    if (adaptive) {
        ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
        uint64_t rej;
        sde_ode_solver_get_rejected_steps(s, &rej);
        ck_assert_uint_ge(rej, 3 * 2); /* both rows reject each failed attempt */
        ck_assert_int_eq(st.fail_count, 0);
        for (int i = 0; i < 4; i++)
            ck_assert_double_eq_tol(y[i], cos_exact(y0[i], 0, 2), 1e-4 * fabs(y0[i]));
    } else {
        ck_assert_int_eq(rc, SDE_E_CALLBACK);
        ck_assert(strstr(sde_last_error(), "recoverable status is fatal") != NULL);
        ck_assert(memcmp(y, y0, sizeof y) == 0);
    }
    ck_assert_int_eq(sde__alloc_live(), live);

    /* integrating never allocates */
    st.mode = 0;
    memcpy(y, y0, sizeof y);
    sde__alloc_fail_after(1);
    rc = sde_ode_solver_integrate(s, flaky_rhs, &st, 0, 2, y, 2, 2);
    sde__alloc_fail_after(0);
    ck_assert_int_eq(rc, SDE_OK);
    ck_assert_int_eq(sde__alloc_live(), live);
    sde_ode_solver_free(s);
}
END_TEST

static int always_recoverable(const double *t, const double *y, double *dy, size_t batch,
                              size_t dim, void *u)
{
    int *calls = u;
    (*calls)++;
    cos_rhs(t, y, dy, batch, dim, NULL);
    return *calls > 1 ? 1 : 0; /* the initial point works, nothing after it */
}

START_TEST(recoverable_forever_hits_min_step)
{
    sde_ode_solver *s = make_solver(SDE_ODE_DOPRI5, 1, 1);
    double y[1] = {1.0};
    int calls = 0;
    tu_assert_fails_with(sde_ode_solver_integrate(s, always_recoverable, &calls, 0, 1, y, 1, 1),
                         SDE_E_NOT_CONVERGED, "minimum step");
    ck_assert_double_eq(y[0], 1.0);
    /* a recoverable status at the initial point cannot be helped */
    calls = 1;
    tu_assert_fails_with(sde_ode_solver_integrate(s, always_recoverable, &calls, 0, 1, y, 1, 1),
                         SDE_E_CALLBACK, "initial point");
    sde_ode_solver_free(s);
}
END_TEST

/* ---- arguments and options ------------------------------------------------------------- */

START_TEST(argument_validation)
{
    sde_ode_solver *s = (sde_ode_solver *)&s;
    tu_assert_fails_with(sde_ode_solver_new(&s, 9, 1, 1), SDE_E_INVALID, "method (9)");
    ck_assert_ptr_null(s);
    tu_assert_fails_with(sde_ode_solver_new(&s, SDE_ODE_RK4, 0, 1), SDE_E_DIM, "max_batch");
    tu_assert_fails_with(sde_ode_solver_new(&s, SDE_ODE_RK4, 1, 0), SDE_E_DIM, "dim");
    tu_assert_fails_with(sde_ode_solver_new(&s, SDE_ODE_RK4, SIZE_MAX / 4, 4), SDE_E_DIM,
                         "too large");
    tu_assert_fails_with(sde_ode_solver_new(NULL, SDE_ODE_RK4, 1, 1), SDE_E_INVALID, "out");

    s = make_solver(SDE_ODE_DOPRI5, 2, 3);
    ck_assert_int_eq(sde_ode_solver_method(s), SDE_ODE_DOPRI5);
    ck_assert_uint_eq(sde_ode_solver_max_batch(s), 2);
    ck_assert_uint_eq(sde_ode_solver_dim(s), 3);
    double y[6] = {0}, out[12];
    tu_assert_fails_with(sde_ode_solver_integrate(s, NULL, NULL, 0, 1, y, 2, 3), SDE_E_INVALID,
                         "rhs");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, 1, NULL, 2, 3),
                         SDE_E_INVALID, "y is NULL");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, 1, y, 3, 3), SDE_E_DIM,
                         "batch (3)");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, 1, y, 0, 3), SDE_E_DIM,
                         "batch (0)");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, 1, y, 2, 2), SDE_E_DIM,
                         "dim (2)");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 1, 1, y, 2, 3),
                         SDE_E_INVALID, "empty");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, NAN, 1, y, 2, 3),
                         SDE_E_INVALID, "t0 (nan)");
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, INFINITY, y, 2, 3),
                         SDE_E_INVALID, "t1 (inf)");
    y[4] = NAN;
    tu_assert_fails_with(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, 1, y, 2, 3),
                         SDE_E_INVALID, "y[4] (row 1, element 1) is nan");
    y[4] = 0;
    double t_bad[2] = {0.5, 0.25};
    tu_assert_fails_with(sde_ode_solver_integrate_times(s, cos_rhs, NULL, 0, 1, y, 2, t_bad, out,
                                                        2, 3), SDE_E_INVALID, "t_out[1] (0.25)");
    double t_out_of_span[1] = {1.5};
    tu_assert_fails_with(sde_ode_solver_integrate_times(s, cos_rhs, NULL, 0, 1, y, 1,
                                                        t_out_of_span, out, 2, 3),
                         SDE_E_INVALID, "t_out[0] (1.5)");
    double t_ok[2] = {0.25, 0.5};
    tu_assert_fails_with(sde_ode_solver_integrate_times(s, cos_rhs, NULL, 0, 1, y, 2, t_ok, y, 2,
                                                        3), SDE_E_INVALID, "overlaps");
    tu_assert_fails_with(sde_ode_solver_integrate_times(s, cos_rhs, NULL, 0, 1, y, 0, t_ok, out,
                                                        2, 3), SDE_E_DIM, "n_out");
    tu_assert_fails_with(sde_ode_solver_integrate_times(s, cos_rhs, NULL, 0, 1, y, 2, NULL, out,
                                                        2, 3), SDE_E_INVALID, "t_out");

    /* options: bounds, types, applicability; the message names the option and the value */
    tu_assert_fails_with(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, 0.0), SDE_E_INVALID,
                         "SDE_OPT_ODE_RTOL (0)");
    tu_assert_fails_with(sde_ode_solver_set_real(s, SDE_OPT_ODE_RTOL, -1e-3), SDE_E_INVALID,
                         "SDE_OPT_ODE_RTOL (-0.001)");
    tu_assert_fails_with(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, 0.0), SDE_E_INVALID,
                         "SDE_OPT_ODE_ATOL (0)");
    tu_assert_fails_with(sde_ode_solver_set_real(s, SDE_OPT_ODE_ATOL, NAN), SDE_E_INVALID,
                         "SDE_OPT_ODE_ATOL (nan)");
    tu_assert_fails_with(sde_ode_solver_set_real(s, SDE_OPT_ODE_MIN_STEP, -1.0), SDE_E_INVALID,
                         "SDE_OPT_ODE_MIN_STEP (-1)");
    tu_assert_fails_with(sde_ode_solver_set_int(s, SDE_OPT_ODE_MAX_STEPS, 0), SDE_E_INVALID,
                         "SDE_OPT_ODE_MAX_STEPS (0)");
    tu_assert_fails_with(sde_ode_solver_set_int(s, SDE_OPT_ODE_PER_SAMPLE, 2), SDE_E_INVALID,
                         "SDE_OPT_ODE_PER_SAMPLE (2)");
    tu_assert_fails_with(sde_ode_solver_set_int(s, SDE_OPT_ODE_RTOL, 1), SDE_E_INVALID,
                         "real option");
    tu_assert_fails_with(sde_ode_solver_set_real(s, SDE_OPT_ODE_NUM_STEPS, 1.0), SDE_E_INVALID,
                         "integer option");
    tu_assert_fails_with(sde_ode_solver_set_int(s, SDE_OPT_ODE_DENOISE, 1), SDE_E_INVALID,
                         "does not apply to an ODE solver");
    tu_assert_fails_with(sde_ode_solver_set_int(s, 99999, 1), SDE_E_INVALID, "option (99999)");
    tu_assert_fails_with(sde_ode_solver_set_real(NULL, SDE_OPT_ODE_RTOL, 1e-3), SDE_E_INVALID,
                         "solver");
    double v;
    int64_t iv;
    ck_assert_int_eq(sde_ode_solver_get_real(s, SDE_OPT_ODE_RTOL, &v), SDE_OK);
    ck_assert_double_eq(v, 1e-5); /* unchanged by the failed calls */
    ck_assert_int_eq(sde_ode_solver_set_real(s, SDE_OPT_ODE_FIRST_STEP, 0.125), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_get_real(s, SDE_OPT_ODE_FIRST_STEP, &v), SDE_OK);
    ck_assert_double_eq(v, 0.125);
    ck_assert_int_eq(sde_ode_solver_get_int(s, SDE_OPT_ODE_PER_SAMPLE, &iv), SDE_OK);
    ck_assert_int_eq(iv, 1);
    tu_assert_fails_with(sde_ode_solver_get_int(s, SDE_OPT_ODE_ATOL, &iv), SDE_E_INVALID,
                         "real option");
    tu_assert_fails_with(sde_ode_solver_get_real(s, SDE_OPT_ODE_ATOL, NULL), SDE_E_INVALID,
                         "value");

    /* the option table knows the ODE options */
    double lo, hi;
    ck_assert_str_eq(sde_option_name(SDE_OPT_ODE_RTOL), "SDE_OPT_ODE_RTOL");
    ck_assert_int_eq(sde_option_type(SDE_OPT_ODE_MAX_STEPS), SDE_OPTION_INT);
    ck_assert_int_eq(sde_option_bounds(SDE_OPT_ODE_RTOL, &lo, &hi), SDE_OK);
    ck_assert_double_eq(lo, 100 * DBL_EPSILON);
    ck_assert_double_eq(hi, 1.0);
    ck_assert_int_eq(sde_option_bounds(SDE_OPT_ODE_ATOL, &lo, &hi), SDE_OK);
    ck_assert_double_eq(lo, DBL_MIN);
    ck_assert_int_eq(sde_option_type(SDE_OPT_ODE_EPS), SDE_OPTION_REAL);

    /* statistics arguments */
    uint64_t n;
    tu_assert_fails_with(sde_ode_solver_get_nfe(s, NULL), SDE_E_INVALID, "output pointer");
    tu_assert_fails_with(sde_ode_solver_get_sample_stats(s, 0, &n, NULL, NULL), SDE_E_STATE,
                         "not integrated");
    ck_assert_int_eq(sde_ode_solver_integrate(s, cos_rhs, NULL, 0, 1, y, 2, 3), SDE_OK);
    tu_assert_fails_with(sde_ode_solver_get_sample_stats(s, 2, &n, NULL, NULL), SDE_E_INVALID,
                         "sample (2)");

    /* method queries */
    ck_assert_str_eq(sde_ode_method_name(SDE_ODE_BS3), "BS3");
    ck_assert_ptr_null(sde_ode_method_name(0));
    ck_assert_int_eq(sde_ode_method_order(SDE_ODE_DOPRI5), 5);
    ck_assert_int_eq(sde_ode_method_order(77), 0);
    ck_assert_int_eq(sde_ode_method_is_adaptive(SDE_ODE_EULER), 0);
    ck_assert_int_eq(sde_ode_method_is_adaptive(SDE_ODE_BS3), 1);
    ck_assert_int_eq(sde_ode_method_num_buffers(SDE_ODE_DOPRI5), 9);
    ck_assert_int_eq(sde_ode_method_num_buffers(SDE_ODE_EULER), 2);
    ck_assert_int_eq(sde_ode_method_num_buffers(-1), 0);
    ck_assert_int_eq(sde_ode_solver_method(NULL), 0);
    sde_ode_solver_free(s);
    sde_ode_solver_free(NULL);

    /* allocation failure at every point of creation: NOMEM and no leak */
    long live = sde__alloc_live();
    for (long k = 1; k <= 6; k++) {
        sde__alloc_fail_after(k);
        int rc = sde_ode_solver_new(&s, SDE_ODE_DOPRI5, 4, 4);
        sde__alloc_fail_after(0);
        if (rc == SDE_OK)
            sde_ode_solver_free(s);
        else {
            ck_assert_int_eq(rc, SDE_E_NOMEM);
            ck_assert_ptr_null(s);
        }
        ck_assert_int_eq(sde__alloc_live(), live);
    }
}
END_TEST

/* ---- the ODE sampler ------------------------------------------------------------------- */

static sde_process *make_process(int which)
{
    sde_process *p = NULL;
    if (which == 0) ck_assert_int_eq(sde_process_new_vp(&p, 0.1, 20, 1, 1000), SDE_OK);
    if (which == 1) ck_assert_int_eq(sde_process_new_subvp(&p, 0.1, 20, 1, 1000), SDE_OK);
    if (which == 2) ck_assert_int_eq(sde_process_new_ve(&p, 0.01, 50, 1, 1000), SDE_OK);
    return p;
}

/* For data N(mu, v I), every linear process keeps x_t Gaussian with mean a mu and variance
 * S^2 = a^2 v + s^2, and the probability-flow ODE is linear: with u = x - a mu,
 * du/dt = (f'(t) + g^2/(2 S^2)) u = (dS/dt / S) u, so x_t = (S_t/S_T)(x_T - a_T mu) + a_t mu
 * per coordinate. */
START_TEST(sampler_matches_gaussian_closed_form)
{
    int which = _i % 3, reference = _i / 3;
    enum { B = 3, DIM = 4 };
    const double mu[DIM] = {0.5, -1.0, 2.0, 0.0}, v = 0.3, w = 1.0;
    sde_process *p = make_process(which);
    sde_gmm *g = NULL;
    sde_model *m = NULL;
    sde_ode_sampler *s = NULL;
    ck_assert_int_eq(sde_gmm_new(&g, 1, DIM, mu, &v, &w), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_new(&s, m, SDE_ODE_DOPRI5, B), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_real(s, SDE_OPT_ODE_RTOL, 1e-9), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_real(s, SDE_OPT_ODE_ATOL, 1e-9), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_int(s, SDE_OPT_ODE_REFERENCE_MODE, reference), SDE_OK);
    double eps;
    ck_assert_int_eq(sde_ode_sampler_get_real(s, SDE_OPT_ODE_EPS, &eps), SDE_OK);
    ck_assert_double_eq(eps, 1e-3);

    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&noise, 11), SDE_OK);
    double z[B * DIM], x[B * DIM], x2[B * DIM];
    ck_assert_int_eq(sde_process_prior_sample(p, noise, z, B, DIM, 0), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_decode(s, NULL, z, x, B, DIM, 0), SDE_OK);
    double te[2] = {eps, 1.0}, a[2], sd[2];
    ck_assert_int_eq(sde_process_marginal(p, te, a, sd, 2), SDE_OK);
    double S_eps = sqrt(a[0] * a[0] * v + sd[0] * sd[0]), S_T = sqrt(a[1] * a[1] * v + sd[1] * sd[1]);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < DIM; k++) {
            int i = b * DIM + k;
            double want = S_eps / S_T * (z[i] - a[1] * mu[k]) + a[0] * mu[k];
            ck_assert_msg(fabs(x[i] - want) < 5e-9 * (1 + fabs(want)), /* measured ~3e-10 */
                          "process %d: x[%d] = %.12g, closed form %.12g", which, i, x[i], want);
        }
    uint64_t nfe, solver_nfe;
    ck_assert_int_eq(sde_ode_sampler_get_nfe(s, &nfe), SDE_OK);
    ck_assert_int_eq(sde_ode_solver_get_nfe(sde_ode_sampler_solver(s), &solver_nfe), SDE_OK);
    ck_assert_uint_eq(nfe, solver_nfe);
    ck_assert_uint_eq(sde_model_num_calls(m), nfe);

    /* sample() is a prior draw followed by decode() */
    ck_assert_int_eq(sde_noise_set_counter(noise, 0), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_sample(s, noise, x2, B, DIM, 0), SDE_OK);
    for (int i = 0; i < B * DIM; i++)
        ck_assert_double_eq(x2[i], x[i]);
    /* encode inverts decode; encoding expands by S_T / S_eps (about 90 for VE), and so does
     * the error of the decoded point */
    ck_assert_int_eq(sde_ode_sampler_encode(s, x, x2, B, DIM), SDE_OK);
    for (int i = 0; i < B * DIM; i++)
        ck_assert_double_eq_tol(x2[i], z[i], 5e-9 * (S_T / S_eps) * (1 + fabs(z[i])));
    sde_noise_free(noise);
    sde_ode_sampler_free(s);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

enum { K3 = 3, D5 = 5 };
static const double means3[K3 * D5] = {1.0, -0.5, 0.25, 0.8, -1.2, -0.9, 0.7, -0.4,
                                       -0.2, 0.5, 0.2, 1.1, 0.9, -0.7, 0.1};
static const double vars3[K3] = {0.04, 0.09, 0.25};
static const double w3[K3] = {0.5, 0.3, 0.2};

/* Encode then decode through the exact mixture score returns the data to the solver
 * tolerance, per-sample and whole-batch, for each process. */
START_TEST(encode_decode_round_trip)
{
    int which = _i % 3, method = _i / 3 == 0 ? SDE_ODE_DOPRI5 : SDE_ODE_BS3;
    enum { B = 6 };
    sde_process *p = make_process(which);
    sde_gmm *g = NULL;
    sde_model *m = NULL;
    sde_ode_sampler *s = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_gmm_new(&g, K3, D5, means3, vars3, w3), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_new(&s, m, method, B), SDE_OK);
    double tol = method == SDE_ODE_DOPRI5 ? 1e-8 : 1e-7;
    ck_assert_int_eq(sde_ode_sampler_set_real(s, SDE_OPT_ODE_RTOL, tol), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_real(s, SDE_OPT_ODE_ATOL, tol), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, 5), SDE_OK);
    double x[B * D5], z[B * D5], back[B * D5];
    ck_assert_int_eq(sde_gmm_sample(g, noise, x, B, D5, 0), SDE_OK);
    double worst = 0.0;
    for (int per = 0; per <= 1; per++) {
        ck_assert_int_eq(sde_ode_sampler_set_int(s, SDE_OPT_ODE_PER_SAMPLE, per), SDE_OK);
        ck_assert_int_eq(sde_ode_sampler_encode(s, x, z, B, D5), SDE_OK);
        ck_assert_int_eq(sde_ode_sampler_decode(s, NULL, z, back, B, D5, 0), SDE_OK);
        for (int i = 0; i < B * D5; i++) {
            double e = fabs(back[i] - x[i]) / (1 + fabs(x[i]));
            worst = fmax(worst, e);
        }
    }
    /* measured: 0.2-2x tol for DOPRI5, 2-8x for BS3 */
    ck_assert_msg(worst < 20 * tol, "process %d %s: round-trip error %g at tolerance %g", which,
                  sde_ode_method_name(method), worst, tol);
    sde_noise_free(noise);
    sde_ode_sampler_free(s);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* Per-sample sampling: a sample alone equals the same sample inside a batch. */
START_TEST(sampler_per_sample_independence)
{
    enum { B = 5 };
    sde_process *p = make_process(2);
    sde_gmm *g = NULL;
    sde_model *m = NULL;
    sde_ode_sampler *s = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_gmm_new(&g, K3, D5, means3, vars3, w3), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_new(&s, m, SDE_ODE_DOPRI5, B), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_int(s, SDE_OPT_ODE_DENOISE, 1), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, 9), SDE_OK);
    double x[B * D5], one[D5];
    ck_assert_int_eq(sde_ode_sampler_sample(s, noise, x, B, D5, 0), SDE_OK);
    uint64_t nfe, solver_nfe;
    sde_ode_sampler_get_nfe(s, &nfe);
    sde_ode_solver_get_nfe(sde_ode_sampler_solver(s), &solver_nfe);
    ck_assert_uint_eq(nfe, solver_nfe + 1); /* the denoising call */
    ck_assert_uint_eq(sde_noise_counter(noise), 1); /* the prior only: no unused draw */
    for (size_t b = 0; b < B; b++) {
        ck_assert_int_eq(sde_noise_set_counter(noise, 0), SDE_OK);
        ck_assert_int_eq(sde_ode_sampler_sample(s, noise, one, 1, D5, b), SDE_OK);
        for (int k = 0; k < D5; k++)
            ck_assert_double_eq(one[k], x[b * D5 + k]);
    }
    /* reference mode: the denoising step draws one unused normal array (R22) and needs noise */
    ck_assert_int_eq(sde_ode_sampler_set_int(s, SDE_OPT_ODE_REFERENCE_MODE, 1), SDE_OK);
    tu_assert_fails_with(sde_ode_sampler_decode(s, NULL, x, one, 1, D5, 0), SDE_E_INVALID,
                         "noise is NULL");
    ck_assert_int_eq(sde_noise_set_counter(noise, 0), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_sample(s, noise, x, B, D5, 0), SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(noise), 2);
    sde_noise_free(noise);
    sde_ode_sampler_free(s);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* A host network for a VP process predicting epsilon for N(0, v I) data, with failure modes. */
struct net_state {
    const sde_process *p;
    int mode;   /* 0 ok, 1 fatal, 2 NaN, 3 recoverable a few times, 4 re-entrant */
    int left;
    sde_ode_sampler *self;
    int inner;
};

static int gauss_eps_net(const double *t, const double *x, double *out, size_t batch,
                         size_t dim, void *u)
{
    struct net_state *st = u;
    for (size_t b = 0; b < batch; b++) {
        double a, s;
        sde_process_marginal(st->p, &t[b], &a, &s, 1);
        for (size_t k = 0; k < dim; k++)
            out[b * dim + k] = s * x[b * dim + k] / (a * a * 0.25 + s * s);
    }
    switch (st->mode) {
    case 1:
        if (t[0] < 0.5) {
            sde_set_error_message("GPU fell off the bus");
            return -9;
        }
        break;
    case 2:
        if (t[0] < 0.5)
            out[0] = NAN;
        break;
    case 3:
        if (t[0] < 0.5 && st->left > 0) {
            st->left--;
            return 2;
        }
        break;
    case 4:
        st->inner = sde_ode_sampler_set_int(st->self, SDE_OPT_ODE_DENOISE, 1);
        break;
    default:
        break;
    }
    return 0;
}

START_TEST(sampler_failures_and_options)
{
    enum { B = 2, DIM = 3 };
    sde_process *p = make_process(0);
    struct net_state st = {p, 0, 0, NULL, 0};
    sde_model *m = NULL;
    sde_ode_sampler *s = (sde_ode_sampler *)&s;
    ck_assert_int_eq(sde_model_new(&m, p, DIM, gauss_eps_net, &st, SDE_OUTPUT_EPSILON,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    tu_assert_fails_with(sde_ode_sampler_new(&s, NULL, SDE_ODE_DOPRI5, B), SDE_E_INVALID,
                         "model");
    ck_assert_ptr_null(s);
    tu_assert_fails_with(sde_ode_sampler_new(&s, m, 0, B), SDE_E_INVALID, "method (0)");
    tu_assert_fails_with(sde_ode_sampler_new(&s, m, SDE_ODE_DOPRI5, 0), SDE_E_DIM, "max_batch");
    ck_assert_int_eq(sde_ode_sampler_new(&s, m, SDE_ODE_DOPRI5, B), SDE_OK);
    st.self = s;

    /* options */
    tu_assert_fails_with(sde_ode_sampler_set_real(s, SDE_OPT_ODE_EPS, 1.0), SDE_E_INVALID,
                         "below the process's T");
    tu_assert_fails_with(sde_ode_sampler_set_real(s, SDE_OPT_ODE_EPS, 0.0), SDE_E_INVALID,
                         "SDE_OPT_ODE_EPS (0)");
    tu_assert_fails_with(sde_ode_sampler_set_int(s, SDE_OPT_ODE_EPS, 1), SDE_E_INVALID,
                         "real option");
    tu_assert_fails_with(sde_ode_sampler_set_real(s, SDE_OPT_ODE_RTOL, -1.0), SDE_E_INVALID,
                         "SDE_OPT_ODE_RTOL (-1)");
    tu_assert_fails_with(sde_ode_sampler_set_int(s, SDE_OPT_ODE_DENOISE, 3), SDE_E_INVALID,
                         "SDE_OPT_ODE_DENOISE (3)");
    tu_assert_fails_with(sde_ode_sampler_set_int(s, 200, 3), SDE_E_INVALID,
                         "does not apply to the ODE sampler");
    ck_assert_int_eq(sde_ode_sampler_set_real(s, SDE_OPT_ODE_EPS, 1e-4), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_real(s, SDE_OPT_ODE_RTOL, 1e-7), SDE_OK);
    double v;
    int64_t iv;
    ck_assert_int_eq(sde_ode_sampler_get_real(s, SDE_OPT_ODE_RTOL, &v), SDE_OK);
    ck_assert_double_eq(v, 1e-7);
    ck_assert_int_eq(sde_ode_solver_get_real(sde_ode_sampler_solver(s), SDE_OPT_ODE_RTOL, &v),
                     SDE_OK);
    ck_assert_double_eq(v, 1e-7);
    ck_assert_int_eq(sde_ode_sampler_get_int(s, SDE_OPT_ODE_REFERENCE_MODE, &iv), SDE_OK);
    ck_assert_int_eq(iv, 0);

    const double z0[B * DIM] = {0.3, -1.2, 0.8, 2.0, 0.1, -0.4};
    double x[B * DIM];
    for (int i = 0; i < B * DIM; i++)
        x[i] = 42.0;
    tu_assert_fails_with(sde_ode_sampler_decode(s, NULL, z0, x, B, DIM + 1, 0), SDE_E_DIM,
                         "dim (4)");
    tu_assert_fails_with(sde_ode_sampler_decode(s, NULL, z0, x, B + 1, DIM, 0), SDE_E_DIM,
                         "batch (3)");
    tu_assert_fails_with(sde_ode_sampler_decode(s, NULL, NULL, x, B, DIM, 0), SDE_E_INVALID,
                         "z is NULL");
    tu_assert_fails_with(sde_ode_sampler_sample(s, NULL, x, B, DIM, 0), SDE_E_INVALID,
                         "noise is NULL");
    double znan[B * DIM] = {0, 0, 0, 0, NAN, 0};
    tu_assert_fails_with(sde_ode_sampler_encode(s, znan, x, B, DIM), SDE_E_INVALID,
                         "x[4] (sample 1, element 1) is nan");

    long live = sde__alloc_live();
    st.mode = 1;
    tu_assert_fails_with(sde_ode_sampler_decode(s, NULL, z0, x, B, DIM, 0), SDE_E_CALLBACK,
                         "GPU fell off the bus");
    ck_assert(strstr(sde_last_error(), "sde_ode_sampler_decode") == sde_last_error());
    st.mode = 2;
    tu_assert_fails_with(sde_ode_sampler_decode(s, NULL, z0, x, B, DIM, 0), SDE_E_NUMERIC,
                         "network output is nan");
    st.mode = 4;
    ck_assert_int_eq(sde_ode_sampler_decode(s, NULL, z0, x, B, DIM, 0), SDE_OK);
    ck_assert_int_eq(st.inner, SDE_E_STATE);
    for (int i = 0; i < B * DIM; i++)
        x[i] = 42.0;
    st.mode = 1;
    ck_assert_int_ne(sde_ode_sampler_encode(s, z0, x, B, DIM), SDE_OK);
    for (int i = 0; i < B * DIM; i++)
        ck_assert_double_eq(x[i], 42.0); /* untouched on every failure */
    ck_assert_int_eq(sde__alloc_live(), live);

    /* recoverable network statuses: the solver retries with smaller steps and succeeds */
    double clean[B * DIM];
    st.mode = 0;
    ck_assert_int_eq(sde_ode_sampler_decode(s, NULL, z0, clean, B, DIM, 0), SDE_OK);
    uint64_t rej_clean, rej;
    sde_ode_solver_get_rejected_steps(sde_ode_sampler_solver(s), &rej_clean);
    st.mode = 3;
    st.left = 4;
    ck_assert_msg(sde_ode_sampler_decode(s, NULL, z0, x, B, DIM, 0) == SDE_OK, "%s",
                  sde_last_error());
    ck_assert_int_eq(st.left, 0);
    sde_ode_solver_get_rejected_steps(sde_ode_sampler_solver(s), &rej);
    ck_assert_uint_ge(rej, rej_clean + 4);
    for (int i = 0; i < B * DIM; i++)
        ck_assert_double_eq_tol(x[i], clean[i], 1e-5 * (1 + fabs(clean[i])));
    /* the closed form for N(0, 0.25 I) data */
    double te[2] = {1e-4, 1.0}, a[2], sd[2];
    sde_process_marginal(p, te, a, sd, 2);
    double ratio = sqrt(a[0] * a[0] * 0.25 + sd[0] * sd[0]) / sqrt(a[1] * a[1] * 0.25 + sd[1] * sd[1]);
    for (int i = 0; i < B * DIM; i++)
        ck_assert_double_eq_tol(clean[i], ratio * z0[i], 1e-5);

    sde_ode_sampler_free(s);
    sde_ode_sampler_free(NULL);
    ck_assert_ptr_null(sde_ode_sampler_solver(NULL));

    /* allocation failure at every point of creation */
    live = sde__alloc_live();
    for (long k = 1; k <= 10; k++) {
        sde__alloc_fail_after(k);
        int rc = sde_ode_sampler_new(&s, m, SDE_ODE_BS3, 8);
        sde__alloc_fail_after(0);
        if (rc == SDE_OK)
            sde_ode_sampler_free(s);
        else
            ck_assert_int_eq(rc, SDE_E_NOMEM);
        ck_assert_int_eq(sde__alloc_live(), live);
    }
    sde_model_free(m);
    sde_process_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ode");
    TCase *tc = tcase_create("solvers");
    tcase_add_loop_test(tc, fixed_step_orders, 0, 6);
    tcase_add_loop_test(tc, adaptive_meets_tolerance, 0, 4);
    tcase_add_test(tc, dopri5_takes_scipys_steps);
    tcase_add_loop_test(tc, per_sample_rows_are_independent, 0, 2);
    tcase_add_loop_test(tc, per_sample_long_rows_are_independent, 0, 2);
    tcase_add_loop_test(tc, outputs_at_requested_times, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_loop_test(tc, blowup_and_stiffness_do_not_converge, 0, 2);
    tcase_add_loop_test(tc, callback_failures, 0, 2);
    tcase_add_test(tc, recoverable_forever_hits_min_step);
    tcase_add_test(tc, argument_validation);
    suite_add_tcase(s, tc);
    tc = tcase_create("sampler");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, sampler_matches_gaussian_closed_form, 0, 6);
    tcase_add_loop_test(tc, encode_decode_round_trip, 0, 6);
    tcase_add_test(tc, sampler_per_sample_independence);
    tcase_add_test(tc, sampler_failures_and_options);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
