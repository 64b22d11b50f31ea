/* Controllable generation (issue 6): inpainting draws from the exact conditional of a
 * Gaussian mixture; linear inverse problems with a selection operator reproduce inpainting;
 * classifier guidance with the exact class posterior samples the class's component;
 * classifier-free guidance at w = 0 is the conditional sampler bit for bit and sharpens with
 * w; colorization keeps the luminance; bad input and failing callbacks leave arrays untouched
 * and leak nothing. */
#include <math.h>
#include <stdlib.h>

#include "sde_private.h"
#include "testutil.h"

/* ---- inpainting: exact conditional of a mixture ---------------------------------------- */

/* Two isotropic components in 3-D; coordinate 0 is known (= C0), 1 and 2 are inpainted. */
enum { ID = 3 };
static const double imu[2 * ID] = {-1.0, -1.5, 0.5, 1.0, 1.5, -0.5};
static const double ivar[2] = {0.25, 0.36};
static const double iwts[2] = {0.6, 0.4};
static const double C0 = 0.2;

/*
 * The exact conditional p(x1, x2 | x0 = C0) is the mixture with weights
 *   pi_k ∝ w_k N(C0; mu_k0, v_k)
 * and components N((mu_k1, mu_k2), v_k I). The components are far apart in x1 (|mu_k1| =
 * 1.5, sd <= 0.6), so the sign of x1 classifies a sample (misassignment P < 0.7%).
 *
 * FINDING: projection ("replacement") inpainting, the reference's method, does NOT sample
 * this conditional: the known coordinate is re-noised independently at every level, so at
 * the noise levels where a sample commits to a component the known coordinate carries
 * almost no information about C0, and the component weights stay between the prior weights
 * and the exact posterior (measured at n = 2000: P(x1 > 0) = 0.51 against the exact 0.80
 * and the prior 0.40; more corrector steps do not close the gap). What the method does get
 * exactly, and what is asserted here with 5-SE bounds (false alarm ~6e-7 per statistic):
 *   - within each component (classified by the sign of x1, n_k samples): the mean of x1 and
 *     x2 (SE sqrt(v_k / n_k)) and the pooled variance (SE v_k sqrt(2 / (2 (n_k - 1)))),
 *   - the known coordinate equals C0 exactly in the default denoised output,
 *   - the weight of component 1 lies strictly between its prior weight and its exact
 *     conditional weight (ordering only: the size of the bias is a property of the method).
 * docs/controllable.md discusses the bias.
 */
static void check_conditional(const double *x, size_t n, const char *what)
{
    double pi[2], tot = 0;
    for (int k = 0; k < 2; k++) {
        double d = C0 - imu[k * ID];
        pi[k] = iwts[k] * exp(-d * d / (2 * ivar[k])) / sqrt(ivar[k]);
        tot += pi[k];
    }
    pi[1] /= tot;
    double cnt[2] = {0}, sum[2][ID] = {{0}}, ss[2] = {0};
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(x[i * ID] == C0, "%s: known coordinate changed: %.17g", what, x[i * ID]);
        int k = x[i * ID + 1] > 0;
        cnt[k]++;
        for (int d = 1; d < ID; d++)
            sum[k][d] += x[i * ID + d];
    }
    for (size_t i = 0; i < n; i++) {
        int k = x[i * ID + 1] > 0;
        for (int d = 1; d < ID; d++) {
            double e = x[i * ID + d] - sum[k][d] / cnt[k];
            ss[k] += e * e;
        }
    }
    double w1 = cnt[1] / n;
    ck_assert_msg(w1 > iwts[1] && w1 < pi[1], "%s: weight of component 1 = %.4f, not between "
                  "the prior %.4f and the exact conditional %.4f", what, w1, iwts[1], pi[1]);
    /* and it fails the exact-conditional bound (independent rows: SE sqrt(pi (1 - pi) / n))
     * that the SMC method meets (inpaint_smc_exact_conditional) */
    double se1 = sqrt(pi[1] * (1 - pi[1]) / (double)n);
    ck_assert_msg(w1 < pi[1] - 5 * se1, "%s: weight %.4f within 5 SE of the exact %.4f: the "
                  "documented bias is gone (update docs/controllable.md)", what, w1, pi[1]);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(cnt[k] > 50, "%s: component %d nearly empty", what, k);
        for (int d = 1; d < ID; d++) {
            double mh = sum[k][d] / cnt[k], se = sqrt(ivar[k] / cnt[k]);
            ck_assert_msg(fabs(mh - imu[k * ID + d]) <= 5 * se,
                          "%s: component %d mean x%d = %.4f, exact %.4f (SE %.4f)", what, k, d,
                          mh, imu[k * ID + d], se);
        }
        double dof = 2 * (cnt[k] - 1), vh = ss[k] / dof, se = ivar[k] * sqrt(2 / dof);
        ck_assert_msg(fabs(vh - ivar[k]) <= 5 * se,
                      "%s: component %d variance = %.4f, exact %.4f (SE %.4f)", what, k, vh,
                      ivar[k], se);
    }
}

enum { IN = 2000, ISTEPS = 200 };

struct ifix {
    sde_process *p;
    sde_gmm *g;
    sde_model *m;
    sde_noise *n;
    sde_inverse *inv;
    double *data, *mask, *out;
};

static struct ifix ifix_new(int pred, int corr)
{
    struct ifix f;
    ck_assert_int_eq(sde_process_new_vp(&f.p, 0.1, 20, 1, ISTEPS), SDE_OK);
    ck_assert_int_eq(sde_gmm_new(&f.g, 2, ID, imu, ivar, iwts), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&f.m, f.p, f.g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&f.n, 6), SDE_OK);
    ck_assert_int_eq(sde_inverse_new(&f.inv, f.p, pred, corr, ID, IN), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_int(f.inv, SDE_OPT_CTRL_BATCH_NORMS, 1), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_real(f.inv, SDE_OPT_CTRL_EPS, 1e-3), SDE_OK);
    f.data = calloc(IN * ID, sizeof *f.data);
    f.out = calloc(IN * ID, sizeof *f.out);
    f.mask = calloc(ID, sizeof *f.mask);
    ck_assert(f.data && f.out && f.mask);
    f.mask[0] = 1.0;
    for (size_t i = 0; i < IN; i++)
        f.data[i * ID] = C0;
    return f;
}

static void ifix_free(struct ifix *f)
{
    free(f->data);
    free(f->mask);
    free(f->out);
    sde_inverse_free(f->inv);
    sde_noise_free(f->n);
    sde_model_free(f->m);
    sde_gmm_free(f->g);
    sde_process_free(f->p);
}

START_TEST(inpaint_exact_conditional)
{
    struct ifix f = ifix_new(SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN);
    int rc = sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, IN, ID, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    check_conditional(f.out, IN, "reverse diffusion + Langevin");
    uint64_t calls = 0;
    ck_assert_int_eq(sde_inverse_get_model_calls(f.inv, &calls), SDE_OK);
    ck_assert_uint_eq(calls, 2 * ISTEPS);
    ifix_free(&f);
}
END_TEST

START_TEST(inpaint_ald_known_from_noise)
{
    struct ifix f = ifix_new(SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_ALD);
    ck_assert_int_eq(sde_inverse_set_int(f.inv, SDE_OPT_CTRL_KNOWN_FROM_NOISE, 1), SDE_OK);
    int rc = sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, IN, ID, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    check_conditional(f.out, IN, "reverse diffusion + ALD, known part from noise");
    ifix_free(&f);
}
END_TEST

/* ---- SMC: the exact conditional ---------------------------------------------------------- */

/*
 * The exact conditional of an isotropic mixture sum_k w_k N(mu_k, v_k I) given the known
 * coordinates K = y is the mixture over the unknown coordinates U with weights
 *   pi_k ∝ w_k N(y; mu_kK, v_k I)   and components N(mu_kU, v_k I).
 * Per sample we record pi-responsibility r_1(x_U) (its mean is exactly pi_1 under the exact
 * conditional, whatever the overlap), x_U and (x_U - m)^2 with m = sum_k pi_k mu_kU (whose
 * means are m and sum_k pi_k (v_k + (mu_kU - m)^2)). SMC rows of one group are dependent, so
 * each statistic is averaged per group and its SE is the between-group std / sqrt(groups)
 * (the groups are independent).
 */
struct cond {
    size_t D, K; /* dimension, number of known (leading) coordinates */
    const double *mu, *var, *w, *y;
    double pi[2];
};

static void cond_weights(struct cond *c)
{
    double tot = 0;
    for (int k = 0; k < 2; k++) {
        double d2 = 0;
        for (size_t i = 0; i < c->K; i++)
            d2 += (c->y[i] - c->mu[k * c->D + i]) * (c->y[i] - c->mu[k * c->D + i]);
        c->pi[k] = c->w[k] * exp(-d2 / (2 * c->var[k])) / pow(c->var[k], 0.5 * (double)c->K);
        tot += c->pi[k];
    }
    c->pi[0] /= tot;
    c->pi[1] /= tot;
}

/* Per-sample statistics: [0] r_1, [1 + j] x_{K+j}, [1 + U + j] (x_{K+j} - m_j)^2. */
static void cond_stats(const struct cond *c, const double *x, double *st)
{
    size_t U = c->D - c->K;
    double lp[2];
    for (int k = 0; k < 2; k++) {
        double d2 = 0;
        for (size_t j = 0; j < U; j++) {
            double e = x[c->K + j] - c->mu[k * c->D + c->K + j];
            d2 += e * e;
        }
        lp[k] = log(c->pi[k]) - d2 / (2 * c->var[k]) - 0.5 * (double)U * log(c->var[k]);
    }
    st[0] = 1.0 / (1.0 + exp(lp[0] - lp[1]));
    for (size_t j = 0; j < U; j++) {
        double m = c->pi[0] * c->mu[c->K + j] + c->pi[1] * c->mu[c->D + c->K + j];
        st[1 + j] = x[c->K + j];
        st[1 + U + j] = (x[c->K + j] - m) * (x[c->K + j] - m);
    }
}

static void cond_exact(const struct cond *c, double *ex)
{
    size_t U = c->D - c->K;
    ex[0] = c->pi[1];
    for (size_t j = 0; j < U; j++) {
        double m = 0, v = 0;
        for (int k = 0; k < 2; k++)
            m += c->pi[k] * c->mu[k * c->D + c->K + j];
        for (int k = 0; k < 2; k++) {
            double d = c->mu[k * c->D + c->K + j] - m;
            v += c->pi[k] * (c->var[k] + d * d);
        }
        ex[1 + j] = m;
        ex[1 + U + j] = v;
    }
}

/* Asserts every statistic's group average within 5 between-group SE of the exact value
 * (false alarm ~6e-7 each); returns the weight estimate and its SE. */
static void check_exact_conditional(const struct cond *c, const double *x, size_t groups,
                                    size_t G, const char *what, double *w_out, double *se_out)
{
    enum { NS = 1 + 2 * 8 };
    size_t U = c->D - c->K, ns = 1 + 2 * U;
    ck_assert(U <= 8);
    double ex[NS], st[NS], sum[NS] = {0}, ss[NS] = {0};
    cond_exact(c, ex);
    for (size_t g = 0; g < groups; g++) {
        double gm[NS] = {0};
        for (size_t r = 0; r < G; r++) {
            const double *xr = x + (g * G + r) * c->D;
            for (size_t i = 0; i < c->K; i++)
                ck_assert_msg(xr[i] == c->y[i], "%s: known coordinate %zu changed", what, i);
            cond_stats(c, xr, st);
            for (size_t j = 0; j < ns; j++)
                gm[j] += st[j] / (double)G;
        }
        for (size_t j = 0; j < ns; j++) {
            sum[j] += gm[j];
            ss[j] += gm[j] * gm[j];
        }
    }
    for (size_t j = 0; j < ns; j++) {
        double mean = sum[j] / (double)groups;
        double sd = sqrt(fmax(ss[j] / (double)groups - mean * mean, 0) * groups / (groups - 1.0));
        double se = sd / sqrt((double)groups);
        ck_assert_msg(fabs(mean - ex[j]) <= 5 * se, "%s: statistic %zu (0 weight, then means, "
                      "then variances) = %.4f, exact %.4f, SE %.4f", what, j, mean, ex[j], se);
        if (j == 0) {
            *w_out = mean;
            *se_out = se;
        }
    }
}

/*
 * SMC with corrector NONE on the 3-D mixture above, x0 = C0 known: exact weight 0.80. n =
 * 100 groups x G = 100 particles; the SE of the weight from the group averages is ~0.01
 * (resampled rows are strongly dependent: ~40 effective samples per group). The O(1/G) SMC
 * bias was measured at G = 10 / 40 / 100 as about -0.04 / -0.01 / below 1 SE, so 5 SE
 * bounds test the method, not luck. Then a second case with 2 of 4 coordinates known.
 */
START_TEST(inpaint_smc_exact_conditional)
{
    enum { G = 100, NG = 100, NB = G * NG };
    sde_process *p;
    sde_gmm *g;
    sde_model *m;
    sde_noise *n;
    sde_inverse *inv;
    ck_assert_int_eq(sde_process_new_vp(&p, 0.1, 20, 1, ISTEPS), SDE_OK);
    ck_assert_int_eq(sde_gmm_new(&g, 2, ID, imu, ivar, iwts), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&n, 17), SDE_OK);
    ck_assert_int_eq(sde_inverse_new(&inv, p, SDE_PREDICTOR_REVERSE_DIFFUSION,
                                     SDE_CORRECTOR_NONE, ID, NB), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_int(inv, SDE_OPT_CTRL_METHOD, SDE_CTRL_SMC), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_int(inv, SDE_OPT_CTRL_PARTICLES, G), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_real(inv, SDE_OPT_CTRL_EPS, 1e-3), SDE_OK);
    double *data = calloc(NB * ID, sizeof *data), *x = malloc(NB * ID * sizeof *x);
    double mask[ID] = {1, 0, 0};
    for (size_t i = 0; i < NB; i++)
        data[i * ID] = C0;
    int rc = sde_inverse_inpaint(inv, m, n, data, mask, 1, x, NB, ID, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    uint64_t calls = 0;
    ck_assert_int_eq(sde_inverse_get_model_calls(inv, &calls), SDE_OK);
    ck_assert_uint_eq(calls, 2 * ISTEPS); /* predictor + twisting per step, minus the last, +1 */
    double y1[1] = {C0}, w, se;
    struct cond c = {.D = ID, .K = 1, .mu = imu, .var = ivar, .w = iwts, .y = y1};
    cond_weights(&c);
    ck_assert(fabs(c.pi[1] - 0.8027) < 1e-4);
    check_exact_conditional(&c, x, NG, G, "SMC, 1 of 3 known", &w, &se);
    /* rows of different observations in one group are refused */
    data[5 * ID] = C0 + 1;
    tu_assert_fails_with(sde_inverse_inpaint(inv, m, n, data, mask, 1, x, NB, ID, 0),
                         SDE_E_INVALID, "different observations");
    tu_assert_fails_with(sde_inverse_inpaint(inv, m, n, data, mask, 1, x, 150, ID, 0),
                         SDE_E_DIM, "not a multiple");
    sde_inverse_free(inv);
    sde_model_free(m);
    sde_gmm_free(g);

    /* 4-D, coordinates 0 and 1 known at a point whose exact weights (0.33 / 0.67) reverse the
     * prior's (0.7 / 0.3) */
    enum { D4 = 4, NG4 = 150, NB4 = G * NG4 };
    static const double mu4[2 * D4] = {-0.5, 0.5, -1.0, 1.0, 0.8, -0.2, 1.5, 0.0};
    static const double var4[2] = {0.3, 0.2}, w4[2] = {0.7, 0.3}, y4[2] = {0.3, 0.0};
    struct cond c4 = {.D = D4, .K = 2, .mu = mu4, .var = var4, .w = w4, .y = y4};
    cond_weights(&c4);
    ck_assert_int_eq(sde_gmm_new(&g, 2, D4, mu4, var4, w4), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_inverse_new(&inv, p, SDE_PREDICTOR_EULER_MARUYAMA,
                                     SDE_CORRECTOR_NONE, D4, NB4), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_int(inv, SDE_OPT_CTRL_METHOD, SDE_CTRL_SMC), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_int(inv, SDE_OPT_CTRL_PARTICLES, G), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_real(inv, SDE_OPT_CTRL_EPS, 1e-3), SDE_OK);
    double mask4[2 * D4] = {1, 1, 0, 0};
    double *data4 = calloc(NB4 * D4, sizeof *data4), *x4 = malloc(NB4 * D4 * sizeof *x4);
    for (size_t i = 0; i < NB4; i++)
        data4[i * D4] = y4[0], data4[i * D4 + 1] = y4[1];
    rc = sde_inverse_inpaint(inv, m, n, data4, mask4, 1, x4, NB4, D4, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    check_exact_conditional(&c4, x4, NG4, G, "SMC, 2 of 4 known", &w, &se);
    ck_assert_msg(fabs(c4.pi[1] - w4[1]) > 5 * se, "the case does not discriminate: exact "
                  "%.4f, prior %.4f, SE %.4f (estimate %.4f)", c4.pi[1], w4[1], se, w);
    free(data4);
    free(x4);
    free(data);
    free(x);
    sde_inverse_free(inv);
    sde_noise_free(n);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* A as the selection of coordinate 0 (orthonormal rows: lambda = 1 is the exact projection). */
static int sel_A(const double *in, double *out, size_t batch, size_t in_dim, size_t out_dim,
                 void *u)
{
    (void)u;
    (void)out_dim;
    for (size_t b = 0; b < batch; b++)
        out[b] = in[b * in_dim];
    return 0;
}
static int sel_AT(const double *in, double *out, size_t batch, size_t in_dim, size_t out_dim,
                  void *u)
{
    (void)u;
    (void)in_dim;
    for (size_t b = 0; b < batch; b++) {
        for (size_t i = 0; i < out_dim; i++)
            out[b * out_dim + i] = 0.0;
        out[b * out_dim] = in[b];
    }
    return 0;
}
static int fail_op(const double *in, double *out, size_t batch, size_t in_dim, size_t out_dim,
                   void *u)
{
    (void)in, (void)out, (void)batch, (void)in_dim, (void)out_dim, (void)u;
    sde_set_error_message("operator exploded");
    return -3;
}

START_TEST(linear_selection_matches_inpainting)
{
    enum { NB = 64 };
    struct ifix f = ifix_new(SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN);
    double *y = malloc(NB * sizeof *y), *lin = malloc(NB * ID * sizeof *lin);
    for (size_t b = 0; b < NB; b++)
        y[b] = C0;
    ck_assert_int_eq(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, NB, ID, 0),
                     SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_operator(f.inv, sel_A, sel_AT, 1, NULL), SDE_OK);
    int rc = sde_inverse_solve(f.inv, f.m, f.n, y, 1, lin, NB, ID, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    double worst = 0;
    for (size_t i = 0; i < NB * ID; i++)
        worst = fmax(worst, fabs(lin[i] - f.out[i]));
    /* the same draws and the same projection up to rounding (x + (a y + s z - x) instead of
     * a y + s z), which 200 steps with batch-mean Langevin norms amplify to ~1e-5 */
    ck_assert_msg(worst < 1e-3, "selection operator differs from inpainting by %g", worst);
    /* a failing operator: SDE_E_CALLBACK with its message, output untouched, counter back */
    for (size_t i = 0; i < NB * ID; i++)
        lin[i] = 7.0;
    uint64_t c0 = sde_noise_counter(f.n);
    ck_assert_int_eq(sde_inverse_set_operator(f.inv, sel_A, fail_op, 1, NULL), SDE_OK);
    tu_assert_fails_with(sde_inverse_solve(f.inv, f.m, f.n, y, 1, lin, NB, ID, 0),
                         SDE_E_CALLBACK, "operator exploded");
    ck_assert_uint_eq(sde_noise_counter(f.n), c0);
    for (size_t i = 0; i < NB * ID; i++)
        ck_assert(lin[i] == 7.0);
    tu_assert_fails_with(sde_inverse_solve(f.inv, f.m, f.n, y, 2, lin, NB, ID, 0), SDE_E_DIM,
                         "m (2)");
    free(y);
    free(lin);
    ifix_free(&f);
}
END_TEST

/* ---- guidance -------------------------------------------------------------------------- */

enum { GD = 2, GN = 2000, GSTEPS = 200 };
static const double gmu[2 * GD] = {-2.0, 0.0, 2.0, 1.0};
static const double gvar[2] = {0.16, 0.25};
static const double gwts[2] = {0.7, 0.3};

struct gctx {
    sde_process *p;
    sde_gmm *mix, *comp[2];
    int fail;
    int64_t fixed; /* label of the plain conditional net */
};

static void gctx_init(struct gctx *g, const double *mu, const double *var)
{
    static const double one = 1.0;
    ck_assert_int_eq(sde_process_new_vp(&g->p, 0.1, 20, 1, GSTEPS), SDE_OK);
    ck_assert_int_eq(sde_gmm_new(&g->mix, 2, GD, mu, var, gwts), SDE_OK);
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(sde_gmm_new(&g->comp[k], 1, GD, mu + k * GD, var + k, &one), SDE_OK);
    g->fail = 0;
    g->fixed = 1;
}

static void gctx_free(struct gctx *g)
{
    sde_gmm_free(g->mix);
    sde_gmm_free(g->comp[0]);
    sde_gmm_free(g->comp[1]);
    sde_process_free(g->p);
}

/* grad_x log p_t(y | x) = score of component y - mixture score (exact posterior). */
static int class_grad(const double *t, const double *x, const int64_t *labels, double *grad,
                      size_t batch, size_t dim, void *user)
{
    struct gctx *g = user;
    if (g->fail)
        return -2;
    double sm[GD], sy[GD];
    for (size_t b = 0; b < batch; b++) {
        if (sde_gmm_eval(g->mix, g->p, t + b, x + b * dim, sm, NULL, 1, dim) != SDE_OK ||
            sde_gmm_eval(g->comp[labels[b]], g->p, t + b, x + b * dim, sy, NULL, 1, dim) !=
                SDE_OK)
            return -1;
        for (size_t i = 0; i < dim; i++)
            grad[b * dim + i] = sy[i] - sm[i];
    }
    return 0;
}

/* The CFG network: conditional rows the component's score, unconditional the mixture's. */
static int cfg_net(const double *t, const double *x, const int64_t *labels, double *out,
                   size_t rows, size_t dim, void *user)
{
    struct gctx *g = user;
    if (g->fail)
        return 5;
    for (size_t r = 0; r < rows; r++) {
        const sde_gmm *which = labels[r] == SDE_LABEL_NONE ? g->mix : g->comp[labels[r]];
        if (sde_gmm_eval(which, g->p, t + r, x + r * dim, out + r * dim, NULL, 1, dim) != SDE_OK)
            return -1;
    }
    return 0;
}

/* The plain conditional network with a fixed label (what CFG at w = 0 must reproduce). */
static int cond_net(const double *t, const double *x, double *out, size_t batch, size_t dim,
                    void *user)
{
    struct gctx *g = user;
    for (size_t r = 0; r < batch; r++)
        if (sde_gmm_eval(g->comp[g->fixed], g->p, t + r, x + r * dim, out + r * dim, NULL, 1,
                         dim) != SDE_OK)
            return -1;
    return 0;
}

static void sample(const sde_process *p, sde_model *m, uint64_t seed, double *out, size_t n)
{
    sde_sampler *s = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_sampler_new(&s, p, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_ALD,
                                     GD, n), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, seed), SDE_OK);
    int rc = sde_sampler_run(s, m, noise, NULL, out, n, GD, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    sde_noise_free(noise);
    sde_sampler_free(s);
}

/*
 * Classifier guidance at scale 1 with the exact posterior gives the exact conditional score,
 * so the samples are component y's: N(mu_y, v_y I). Statistics (5-SE bounds): the mean per
 * coordinate (SE sqrt(v/n)), the pooled variance (SE v sqrt(2/(D(n-1)))), and the fraction
 * classified into the other component under the mixture's p_0 posterior, which must be below
 * 5 SE of a binomial at the exact misclassification rate (< 1e-4 here), i.e. below 1%.
 */
static void check_component(const double *x, size_t n, const double *mu, double v,
                            const char *what)
{
    double m[GD] = {0}, ss = 0;
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < GD; d++)
            m[d] += x[i * GD + d] / n;
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < GD; d++)
            ss += (x[i * GD + d] - m[d]) * (x[i * GD + d] - m[d]);
    for (int d = 0; d < GD; d++)
        ck_assert_msg(fabs(m[d] - mu[d]) <= 5 * sqrt(v / n), "%s: mean[%d] %.4f vs %.4f", what,
                      d, m[d], mu[d]);
    double dof = GD * (n - 1.0), vh = ss / dof, se = v * sqrt(2 / dof);
    ck_assert_msg(fabs(vh - v) <= 5 * se, "%s: variance %.4f vs %.4f (SE %.4f)", what, vh, v, se);
}

START_TEST(classifier_guidance_samples_the_class)
{
    struct gctx g;
    gctx_init(&g, gmu, gvar);
    sde_model *base = NULL, *guided = NULL;
    ck_assert_int_eq(sde_model_new_gmm(&base, g.p, g.mix), SDE_OK);
    ck_assert_int_eq(sde_model_new_guided(&guided, base, class_grad, &g, 1.0), SDE_OK);
    double *x = malloc(GN * GD * sizeof *x);
    for (int64_t y = 0; y < 2; y++) {
        ck_assert_int_eq(sde_model_set_labels(guided, &y, 1), SDE_OK);
        sample(g.p, guided, 11 + (uint64_t)y, x, GN);
        check_component(x, GN, gmu + y * GD, gvar[y], y ? "class 1" : "class 0");
    }
    /* a failing classifier: SDE_E_CALLBACK, output untouched */
    g.fail = 1;
    sde_sampler *s = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_sampler_new(&s, g.p, SDE_PREDICTOR_REVERSE_DIFFUSION,
                                     SDE_CORRECTOR_NONE, GD, 8), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, 1), SDE_OK);
    for (int i = 0; i < 16; i++)
        x[i] = 3.0;
    tu_assert_fails_with(sde_sampler_run(s, guided, noise, NULL, x, 8, GD, 0), SDE_E_CALLBACK,
                         "classifier gradient callback returned -2");
    for (int i = 0; i < 16; i++)
        ck_assert(x[i] == 3.0);
    /* too few labels for the batch */
    g.fail = 0;
    int64_t two[2] = {0, 1};
    ck_assert_int_eq(sde_model_set_labels(guided, two, 2), SDE_OK);
    tu_assert_fails_with(sde_sampler_run(s, guided, noise, NULL, x, 8, GD, 0), SDE_E_CALLBACK,
                         "exceeds the 2 class labels");
    ck_assert(x[0] == 3.0);
    sde_noise_free(noise);
    sde_sampler_free(s);
    sde_model_free(guided);
    sde_model_free(base);
    free(x);
    gctx_free(&g);
}
END_TEST

/* Overlapping classes for the sharpening test. */
static const double omu[2 * GD] = {-0.5, 0.0, 0.5, 0.0};
static const double ovar[2] = {0.25, 0.25};

/* The overlapping classes' CFG model at w = 0 for class 1 and the conditional model it must
 * reproduce (both from cfg_net / cond_net over g). */
static void cfg_and_conditional(struct gctx *g, sde_model **cfg, sde_model **cond)
{
    gctx_init(g, omu, ovar);
    ck_assert_int_eq(sde_model_new_cfg(cfg, g->p, GD, cfg_net, g, SDE_OUTPUT_SCORE,
                                       SDE_TIME_CONTINUOUS, 0.0), SDE_OK);
    ck_assert_int_eq(sde_model_new(cond, g->p, GD, cond_net, g, SDE_OUTPUT_SCORE,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    int64_t y = 1;
    ck_assert_int_eq(sde_model_set_labels(*cfg, &y, 1), SDE_OK);
}

START_TEST(cfg_weight_zero_is_conditional_and_sharpens)
{
    enum { CN = 1000 };
    struct gctx g;
    sde_model *cfg = NULL, *cond = NULL;
    cfg_and_conditional(&g, &cfg, &cond);
    double *a = malloc(CN * GD * sizeof *a), *b = malloc(CN * GD * sizeof *b);
    sample(g.p, cfg, 5, a, CN);
    sample(g.p, cond, 5, b, CN);
    ck_assert_msg(memcmp(a, b, CN * GD * sizeof *a) == 0, "CFG at w = 0 differs from the "
                  "conditional sampler");
    /*
     * Sharpening: with common random numbers (same seed), the mean posterior probability of
     * class 1 under the mixture classifier at t = 0, mean_i p(y=1 | x_i), rises strictly with
     * w in {0, 1, 3}, and by more than 0.05 from w = 0 to w = 3 (it is about 0.75 at w = 0;
     * the guided density ∝ p(x|y)^(1+w) p(x)^(-w) moves mass away from class 0).
     */
    double *r = malloc(CN * 2 * sizeof *r), *one = malloc(CN * sizeof *one),
           *zero = calloc(CN, sizeof *zero);
    for (size_t i = 0; i < CN; i++)
        one[i] = 1.0;
    const double ws[3] = {0.0, 1.0, 3.0};
    double prev = -1, first = 0;
    for (int j = 0; j < 3; j++) {
        ck_assert_int_eq(sde_model_set_guidance_scale(cfg, ws[j]), SDE_OK);
        sample(g.p, cfg, 5, a, CN);
        ck_assert_int_eq(sde_gmm_responsibilities(g.mix, one, zero, a, r, CN, GD), SDE_OK);
        double mean = 0;
        for (size_t i = 0; i < CN; i++)
            mean += r[i * 2 + 1] / CN;
        ck_assert_msg(mean > prev, "w = %g: mean p(y|x) %.4f not above %.4f", ws[j], mean, prev);
        if (j == 0)
            first = mean;
        prev = mean;
    }
    ck_assert_msg(prev - first > 0.05, "w = 3 sharpens too little: %.4f -> %.4f", first, prev);
    /* a failing network (recoverable code 5 is fatal in a fixed-step sampler) */
    g.fail = 1;
    sde_sampler *s = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_sampler_new(&s, g.p, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_NONE,
                                     GD, 4), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, 1), SDE_OK);
    for (int i = 0; i < 8; i++)
        a[i] = 3.0;
    tu_assert_fails_with(sde_sampler_run(s, cfg, noise, NULL, a, 4, GD, 0), SDE_E_CALLBACK,
                         "classifier-free guidance network returned 5");
    ck_assert(a[0] == 3.0 && a[7] == 3.0);
    sde_noise_free(noise);
    sde_sampler_free(s);
    free(a);
    free(b);
    free(r);
    free(one);
    free(zero);
    sde_model_free(cfg);
    sde_model_free(cond);
    gctx_free(&g);
}
END_TEST

/* ---- guidance with DDIM and the probability-flow ODE ---------------------------------------- */

/* Samples from the ODE sampler (DOPRI5, tolerances 1e-6) or DDIM (eta = 0, all N steps). */
static void sample_ode(sde_model *m, uint64_t seed, double *out, size_t n)
{
    sde_ode_sampler *o = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_ode_sampler_new(&o, m, SDE_ODE_DOPRI5, n), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_real(o, SDE_OPT_ODE_RTOL, 1e-6), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_set_real(o, SDE_OPT_ODE_ATOL, 1e-6), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, seed), SDE_OK);
    int rc = sde_ode_sampler_sample(o, noise, out, n, GD, 0);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    sde_noise_free(noise);
    sde_ode_sampler_free(o);
}

static void sample_ddim(sde_model *m, uint64_t seed, double *out, size_t n)
{
    sde_ddim *d = NULL;
    sde_noise *noise = NULL;
    ck_assert_int_eq(sde_ddim_new(&d, m, GD, n), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&noise, seed), SDE_OK);
    int rc = sde_ddim_run(d, noise, NULL, out, n, GD, 0, NULL, NULL);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    sde_noise_free(noise);
    sde_ddim_free(d);
}

typedef void (*sample_fn)(sde_model *, uint64_t, double *, size_t);

/*
 * The guidance wrappers are ordinary models, so the same statements hold with DDIM and the
 * probability-flow ODE: classifier guidance at scale 1 samples the class's component (means
 * and pooled variance within 5 SE, check_component); CFG at w = 0 reproduces the conditional
 * model bit for bit (same draws); and w > 0 sharpens, measured with the overlapping classes
 * (means (-0.5, 0) and (0.5, 0), v = 0.25): the mean of coordinate 0 (along mu_1 - mu_0)
 * moves away from the unconditional mean 0 strictly with w in {0, 1, 3}, by more than 0.1
 * from w = 0 to w = 3 (it is about 0.5 at w = 0), while coordinate 1, in which both classes
 * and the mixture agree at every t (so the guidance term is 0 there), keeps variance v
 * within 5 SE (SE v sqrt(2/(n-1))).
 */
START_TEST(guidance_with_ddim_and_ode)
{
    enum { N = 1000 };
    const sample_fn fns[2] = {sample_ode, sample_ddim};
    const char *names[2] = {"ODE", "DDIM"};
    double *a = malloc(N * GD * sizeof *a), *b = malloc(N * GD * sizeof *b);
    for (int f = 0; f < 2; f++) {
        struct gctx g;
        gctx_init(&g, gmu, gvar);
        sde_model *base = NULL, *guided = NULL;
        ck_assert_int_eq(sde_model_new_gmm(&base, g.p, g.mix), SDE_OK);
        ck_assert_int_eq(sde_model_new_guided(&guided, base, class_grad, &g, 1.0), SDE_OK);
        for (int64_t y = 0; y < 2; y++) {
            ck_assert_int_eq(sde_model_set_labels(guided, &y, 1), SDE_OK);
            fns[f](guided, 21 + (uint64_t)y, a, N);
            check_component(a, N, gmu + y * GD, gvar[y], names[f]);
        }
        sde_model_free(guided);
        sde_model_free(base);
        gctx_free(&g);

        sde_model *cfg = NULL, *cond = NULL;
        cfg_and_conditional(&g, &cfg, &cond);
        fns[f](cfg, 5, a, N);
        fns[f](cond, 5, b, N);
        ck_assert_msg(memcmp(a, b, N * GD * sizeof *a) == 0, "%s: CFG at w = 0 differs from "
                      "the conditional model", names[f]);
        const double ws[3] = {0.0, 1.0, 3.0};
        double prev = -1e300, first = 0;
        for (int j = 0; j < 3; j++) {
            ck_assert_int_eq(sde_model_set_guidance_scale(cfg, ws[j]), SDE_OK);
            fns[f](cfg, 5, a, N);
            double m0 = 0, m1 = 0, v1 = 0;
            for (size_t i = 0; i < N; i++)
                m0 += a[i * GD] / N, m1 += a[i * GD + 1] / N;
            for (size_t i = 0; i < N; i++)
                v1 += (a[i * GD + 1] - m1) * (a[i * GD + 1] - m1) / (N - 1);
            ck_assert_msg(m0 > prev, "%s, w = %g: mean %.4f not above %.4f", names[f], ws[j], m0,
                          prev);
            ck_assert_msg(fabs(v1 - ovar[1]) <= 5 * ovar[1] * sqrt(2.0 / (N - 1)),
                          "%s, w = %g: variance across the classes' axis %.4f, not %.4f",
                          names[f], ws[j], v1, ovar[1]);
            if (j == 0)
                first = m0;
            prev = m0;
        }
        ck_assert_msg(prev - first > 0.1, "%s: w = 3 sharpens too little: %.4f -> %.4f",
                      names[f], first, prev);
        sde_model_free(cfg);
        sde_model_free(cond);
        gctx_free(&g);
    }
    free(a);
    free(b);
}
END_TEST

/* ---- the ODE sampler's projection hook ------------------------------------------------------- */

struct odeproj {
    const sde_process *p;
    const double *y, *z; /* y[2]; z[batch*2] fixed per sample */
    size_t calls;
    double t_prev;
    int fail, order_ok;
};

/* Inpainting's replacement along the ODE: x_known = a(t) y + s(t) z with z fixed per row. */
static int ode_project(double t, double *x, size_t batch, size_t dim, void *user)
{
    struct odeproj *q = user;
    if (q->fail) {
        sde_set_error_message("projection refused");
        return 4;
    }
    q->order_ok &= t < q->t_prev;
    q->t_prev = t;
    q->calls++;
    double a, s;
    if (sde_process_marginal(q->p, &t, &a, &s, 1) != SDE_OK)
        return -1;
    for (size_t b = 0; b < batch; b++)
        for (int i = 0; i < 2; i++)
            x[b * dim + i] = a * q->y[i] + s * q->z[b * 2 + i];
    return 0;
}

/*
 * examples/inpaint.c's case through the adaptive ODE sampler: the observation (2.8, 3.1) picks
 * component 1 (12 SD from component 0 in the observed coordinates), so samples should land
 * there (the sign of coordinate 3); the known part ends at a(eps) y + s(eps) z exactly (the
 * last projection runs at eps); the hook runs segments + 1 times at decreasing times; a failing
 * hook gives SDE_E_CALLBACK with its message and leaves the output untouched. (Exactness of
 * the conditional is not claimed for this path: see the header.)
 */
START_TEST(ode_sampler_projection_inpaints)
{
    enum { D = 4, N = 200, SEG = 100 };
    const double mu[2 * D] = {-3, -3, -1, 2, 3, 3, 1, -2}, var[2] = {0.25, 0.25},
                 w[2] = {0.5, 0.5}, y[2] = {2.8, 3.1};
    sde_process *p;
    sde_gmm *g;
    sde_model *m;
    sde_noise *n;
    sde_ode_sampler *o;
    ck_assert_int_eq(sde_process_new_vp(&p, 0.1, 20, 1, 1000), SDE_OK);
    ck_assert_int_eq(sde_gmm_new(&g, 2, D, mu, var, w), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&n, 8), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_new(&o, m, SDE_ODE_DOPRI5, N), SDE_OK);
    double *z = malloc(N * 2 * sizeof *z), *x = malloc(N * D * sizeof *x);
    ck_assert_int_eq(sde_noise_normal(n, z, N, 2, 0), SDE_OK);
    struct odeproj q = {.p = p, .y = y, .z = z, .t_prev = INFINITY, .order_ok = 1};
    tu_assert_fails_with(sde_ode_sampler_set_projection(o, ode_project, &q, 0), SDE_E_INVALID,
                         "segments (0)");
    size_t wrong[2] = {0, 0};
    const size_t segs[2] = {1, SEG};
    for (int r = 0; r < 2; r++) {
        q.calls = 0;
        q.t_prev = INFINITY;
        ck_assert_int_eq(sde_ode_sampler_set_projection(o, ode_project, &q, segs[r]), SDE_OK);
        int rc = sde_ode_sampler_sample(o, n, x, N, D, 0);
        ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
        ck_assert_uint_eq(q.calls, segs[r] + 1);
        ck_assert(q.order_ok);
        double a, s, eps = 1e-3;
        ck_assert_int_eq(sde_process_marginal(p, &eps, &a, &s, 1), SDE_OK);
        ck_assert_double_eq_tol(q.t_prev, eps, 1e-15);
        for (size_t b = 0; b < N; b++) {
            for (int i = 0; i < 2; i++)
                ck_assert_double_eq_tol(x[b * D + i], a * y[i] + s * z[b * 2 + i], 1e-12);
            wrong[r] += x[b * D + 3] >= 0;
        }
    }
    /* projecting only at T and eps leaves the unknown part at its prior (~N/2 = 100 wrong,
     * SD 7; >= 65 is 5 SD); every T/100 steers all but a few (measured 3 of 200; the
     * deterministic flow cannot leave a mode it committed to early: docs/controllable.md) */
    ck_assert_msg(wrong[0] >= 65, "%zu of %d wrong with 1 segment", wrong[0], N);
    ck_assert_msg(wrong[1] <= 10, "%zu of %d wrong with %d segments", wrong[1], N, SEG);
    q.fail = 1;
    x[0] = 42.0;
    tu_assert_fails_with(sde_ode_sampler_sample(o, n, x, N, D, 0), SDE_E_CALLBACK,
                         "projection refused");
    ck_assert(x[0] == 42.0);
    ck_assert_int_eq(sde_ode_sampler_set_projection(o, NULL, NULL, 0), SDE_OK);
    ck_assert_int_eq(sde_ode_sampler_sample(o, n, x, N, D, 0), SDE_OK);
    free(z);
    free(x);
    sde_ode_sampler_free(o);
    sde_noise_free(n);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* ---- colorization ---------------------------------------------------------------------- */

START_TEST(colorize_matrices_and_luminance)
{
    double M[9], iM[9];
    ck_assert_int_eq(sde_colorize_matrices(M, iM), SDE_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double e = M[3 * i] * iM[j] + M[3 * i + 1] * iM[3 + j] + M[3 * i + 2] * iM[6 + j];
            ck_assert(fabs(e - (i == j)) < 1e-14);
        }
    tu_assert_fails_with(sde_colorize_matrices(NULL, NULL), SDE_E_INVALID, "both NULL");
    /* a 2x2 RGB image with a mixture prior over its 12 values */
    enum { P = 4, CD = 12, B = 6 };
    double mu[2 * CD], var[2] = {0.04, 0.04}, w[2] = {0.5, 0.5};
    for (int i = 0; i < CD; i++) {
        mu[i] = 0.5 * (i / P) - 0.5; /* channel-dependent colour */
        mu[CD + i] = -mu[i];
    }
    sde_process *p;
    sde_gmm *g;
    sde_model *m;
    sde_noise *n;
    sde_inverse *inv;
    ck_assert_int_eq(sde_process_new_ve(&p, 0.01, 5, 1, 100), SDE_OK);
    ck_assert_int_eq(sde_gmm_new(&g, 2, CD, mu, var, w), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&n, 3), SDE_OK);
    ck_assert_int_eq(sde_inverse_new(&inv, p, SDE_PREDICTOR_REVERSE_DIFFUSION,
                                     SDE_CORRECTOR_LANGEVIN, CD, B), SDE_OK);
    double gray[B * CD], out[B * CD];
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++)
            for (int c = 0; c < 3; c++)
                gray[b * CD + c * P + q] = 0.1 * (b - q);
    ck_assert_int_eq(sde_inverse_colorize(inv, m, n, gray, NULL, NULL, out, B, 3, P, 0), SDE_OK);
    /* the default denoised output keeps the gray image's luminance exactly (to rounding) */
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++) {
            double lo = 0, lg = 0;
            for (int c = 0; c < 3; c++) {
                lo += out[b * CD + c * P + q] * M[3 * c];
                lg += gray[b * CD + c * P + q] * M[3 * c];
            }
            ck_assert_msg(fabs(lo - lg) < 1e-12, "luminance %g vs %g", lo, lg);
        }
    /* bad input: 4 channels, a non-inverse invM, only one of M/invM */
    double keep = out[0];
    tu_assert_fails_with(sde_inverse_colorize(inv, m, n, gray, NULL, NULL, out, B, 4, 3, 0),
                         SDE_E_DIM, "channels (4) must be 3");
    tu_assert_fails_with(sde_inverse_colorize(inv, m, n, gray, M, M, out, B, 3, P, 0),
                         SDE_E_INVALID, "not the inverse");
    tu_assert_fails_with(sde_inverse_colorize(inv, m, n, gray, M, NULL, out, B, 3, P, 0),
                         SDE_E_INVALID, "both");
    ck_assert(out[0] == keep);
    sde_inverse_free(inv);
    sde_noise_free(n);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* ---- bad input, no leaks ------------------------------------------------------------------ */

static int abort_at_3(size_t step, double t, void *u)
{
    (void)t;
    (void)u;
    return step == 3;
}

START_TEST(bad_input_untouched_no_leak)
{
    long live0 = sde__alloc_live();
    struct ifix f = ifix_new(SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN);
    enum { NB = 8 };
    for (size_t i = 0; i < NB * ID; i++)
        f.out[i] = -9.0;
    double bad_mask[ID] = {1.0, 0.5, 0.0};
    uint64_t c0 = sde_noise_counter(f.n);
    tu_assert_fails_with(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 3, f.out, NB, ID,
                                             0), SDE_E_DIM, "mask_rows (3)");
    tu_assert_fails_with(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, bad_mask, 1, f.out, NB,
                                             ID, 0), SDE_E_INVALID, "binary");
    tu_assert_fails_with(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, NB,
                                             ID + 1, 0), SDE_E_DIM, "dim (4)");
    tu_assert_fails_with(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, IN + 1,
                                             ID, 0), SDE_E_DIM, "batch");
    tu_assert_fails_with(sde_inverse_inpaint(f.inv, f.m, f.n, NULL, f.mask, 1, f.out, NB, ID,
                                             0), SDE_E_INVALID, "data");
    tu_assert_fails_with(sde_inverse_solve(f.inv, f.m, f.n, f.data, 1, f.out, NB, ID, 0),
                         SDE_E_STATE, "no operator");
    tu_assert_fails_with(sde_inverse_set_int(f.inv, SDE_OPT_CTRL_DENOISE, 2), SDE_E_INVALID,
                         "SDE_OPT_CTRL_DENOISE");
    tu_assert_fails_with(sde_inverse_set_int(f.inv, SDE_OPT_PC_STEPS, 2), SDE_E_INVALID,
                         "not an integer option");
    tu_assert_fails_with(sde_inverse_set_real(f.inv, SDE_OPT_CTRL_EPS, 1.0), SDE_E_INVALID,
                         "must be < T");
    /* abort from the progress callback: SDE_ABORTED, output untouched, counter restored */
    ck_assert_int_eq(sde_inverse_set_progress(f.inv, abort_at_3, NULL), SDE_OK);
    ck_assert_int_eq(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, NB, ID, 0),
                     SDE_ABORTED);
    ck_assert_uint_eq(sde_noise_counter(f.n), c0);
    for (size_t i = 0; i < NB * ID; i++)
        ck_assert(f.out[i] == -9.0);
    /* guidance wrappers: argument checks */
    sde_model *w = NULL;
    tu_assert_fails_with(sde_model_new_guided(&w, f.m, NULL, NULL, 1.0), SDE_E_INVALID, "fn");
    ck_assert_ptr_null(w);
    tu_assert_fails_with(sde_model_new_guided(&w, f.m, class_grad, NULL, NAN), SDE_E_INVALID,
                         "scale");
    int64_t lab = 0, neg = -1;
    tu_assert_fails_with(sde_model_set_labels(f.m, &lab, 1), SDE_E_INVALID,
                         "not a guidance wrapper");
    ck_assert_int_eq(sde_model_new_guided(&w, f.m, class_grad, NULL, 1.0), SDE_OK);
    tu_assert_fails_with(sde_model_set_labels(w, &neg, 1), SDE_E_INVALID, "negative");
    ck_assert_int_eq(sde_model_reserve(w, 16), SDE_OK);
    sde_model_free(w);
    ifix_free(&f);
    ck_assert_int_eq(sde__alloc_live(), live0);
}
END_TEST

/* Reference mode vs default: same draws, different denoised output (R28) only on the unknown
 * part's noise; the known part equals the data only in the default mode. */
START_TEST(reference_mode_differs_as_documented)
{
    enum { NB = 16 };
    struct ifix f = ifix_new(SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN);
    double ref[NB * ID];
    ck_assert_int_eq(sde_inverse_set_int(f.inv, SDE_OPT_CTRL_REFERENCE, 1), SDE_OK);
    ck_assert_int_eq(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, ref, NB, ID, 0),
                     SDE_OK);
    uint64_t draws_ref = sde_noise_counter(f.n);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_inverse_set_int(f.inv, SDE_OPT_CTRL_REFERENCE, 0), SDE_OK);
    ck_assert_int_eq(sde_inverse_inpaint(f.inv, f.m, f.n, f.data, f.mask, 1, f.out, NB, ID, 0),
                     SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(f.n), draws_ref); /* R30 draw order in both modes */
    double a, s, t = 1e-3;
    ck_assert_int_eq(sde_process_marginal(f.p, &t, &a, &s, 1), SDE_OK);
    for (size_t b = 0; b < NB; b++) {
        ck_assert(f.out[b * ID] == C0);
        ck_assert_double_eq_tol(ref[b * ID], a * C0, 1e-15);
    }
    ifix_free(&f);
}
END_TEST

static Suite *controllable_suite(void)
{
    Suite *s = suite_create("controllable");
    TCase *tc = tcase_create("statistics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, inpaint_exact_conditional);
    tcase_add_test(tc, inpaint_ald_known_from_noise);
    tcase_add_test(tc, inpaint_smc_exact_conditional);
    tcase_add_test(tc, linear_selection_matches_inpainting);
    tcase_add_test(tc, classifier_guidance_samples_the_class);
    tcase_add_test(tc, cfg_weight_zero_is_conditional_and_sharpens);
    tcase_add_test(tc, guidance_with_ddim_and_ode);
    tcase_add_test(tc, ode_sampler_projection_inpaints);
    tcase_add_test(tc, colorize_matrices_and_luminance);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, bad_input_untouched_no_leak);
    tcase_add_test(te, reference_mode_differs_as_documented);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return tu_run_suite(controllable_suite()); }
