/* Predictor-corrector sampling: recovery of a Gaussian mixture with its exact score,
 * determinism across batch sizes, shards and threads, the steppers as building blocks,
 * reference-compatible mode, and every error path (bad input, failing or non-finite model,
 * cancellation, allocation failure, re-entrancy). */
#include <math.h>
#include <stdlib.h>

#include "sde_private.h"
#include "testutil.h"

/* The mixture: three well-separated isotropic components in 2-D (means 4+ standard deviations
 * apart, so classifying a sample by its most likely component misassigns a negligible
 * fraction). */
enum { K = 3, D = 2 };
static const double mu[K * D] = {-2.0, 0.0, 2.0, 1.5, 1.5, -2.0};
static const double var[K] = {0.09, 0.16, 0.25};
static const double wts[K] = {0.5, 0.3, 0.2};

static sde_process *new_process(int kind, int64_t N)
{
    sde_process *p = NULL;
    switch (kind) {
    case SDE_PROCESS_VP: ck_assert_int_eq(sde_process_new_vp(&p, 0.1, 20, 1, N), SDE_OK); break;
    case SDE_PROCESS_SUBVP:
        ck_assert_int_eq(sde_process_new_subvp(&p, 0.1, 20, 1, N), SDE_OK);
        break;
    default: ck_assert_int_eq(sde_process_new_ve(&p, 0.01, 20, 1, N), SDE_OK); break;
    }
    return p;
}

static sde_gmm *new_gmm(void)
{
    sde_gmm *g = NULL;
    ck_assert_int_eq(sde_gmm_new(&g, K, D, mu, var, wts), SDE_OK);
    return g;
}

/* A bundle for the common case: process, exact-score model, Philox noise. */
struct fixture {
    sde_process *p;
    sde_gmm *g;
    sde_model *m;
    sde_noise *n;
};

static struct fixture fixture_new(int process_kind, int64_t N, uint64_t seed)
{
    struct fixture f;
    f.p = new_process(process_kind, N);
    f.g = new_gmm();
    ck_assert_int_eq(sde_model_new_gmm(&f.m, f.p, f.g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&f.n, seed), SDE_OK);
    return f;
}

static void fixture_free(struct fixture *f)
{
    sde_noise_free(f->n);
    sde_model_free(f->m);
    sde_gmm_free(f->g);
    sde_process_free(f->p);
}

static sde_sampler *new_sampler(const sde_process *p, int pred, int corr, size_t dim,
                                size_t max_batch)
{
    sde_sampler *s = NULL;
    int rc = sde_sampler_new(&s, p, pred, corr, dim, max_batch);
    ck_assert_msg(rc == SDE_OK, "sde_sampler_new: %s", sde_last_error());
    return s;
}

/* ---- recovery of the mixture --------------------------------------------------------- */

/*
 * Statistics, from n samples classified by their most likely component under p_0
 * (sde_gmm_responsibilities at a = 1, s = 0), with n_k samples in component k:
 *   weight    w^_k = n_k / n,                       SE = sqrt(w_k (1 - w_k) / n)
 *   mean      x^_kd = mean of coordinate d,         SE = sqrt(v_k / n_k)
 *   variance  v^_k = sum |x - x^_k|^2 / (D (n_k - 1)), SE = v_k sqrt(2 / (D (n_k - 1)))
 * Bound: every statistic within 5 SE of the truth (for an unbiased sampler a false alarm has
 * probability about 6e-7 per statistic, 1e-5 for the 21 statistics of a run). At n = 2000 and
 * N = 200 steps the samplers' own biases (discretisation, the VE residual sigma_min^2 = 1e-4,
 * misclassification) measured at n = 20000 are at most 0.03 v_k on the variances, i.e. about
 * one SE here, and invisible on the weights and means; with the per-sample Langevin step the
 * variances come out several times too large (docs/sampling.md), which these bounds catch.
 */
static void check_recovery(const sde_gmm *g, const double *x, size_t n, const char *what)
{
    double *r = malloc(n * K * sizeof *r), *a = malloc(n * sizeof *a), *s0 = calloc(n, sizeof *s0);
    int *lab = malloc(n * sizeof *lab);
    ck_assert(r && a && s0 && lab);
    for (size_t i = 0; i < n; i++)
        a[i] = 1.0;
    ck_assert_int_eq(sde_gmm_responsibilities(g, a, s0, x, r, n, D), SDE_OK);
    double cnt[K] = {0}, sum[K][D] = {{0}}, ss[K] = {0};
    for (size_t i = 0; i < n; i++) {
        int b = 0;
        for (int k = 1; k < K; k++)
            if (r[i * K + k] > r[i * K + b])
                b = k;
        lab[i] = b;
        cnt[b]++;
        for (int d = 0; d < D; d++)
            sum[b][d] += x[i * D + d];
    }
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < D; d++) {
            double e = x[i * D + d] - sum[lab[i]][d] / cnt[lab[i]];
            ss[lab[i]] += e * e;
        }
    for (int k = 0; k < K; k++) {
        double wh = cnt[k] / (double)n, se_w = sqrt(wts[k] * (1 - wts[k]) / (double)n);
        ck_assert_msg(fabs(wh - wts[k]) <= 5 * se_w, "%s: weight %d = %.4f, true %.4f (SE %.4f)",
                      what, k, wh, wts[k], se_w);
        ck_assert_msg(cnt[k] > 10, "%s: component %d nearly empty", what, k);
        for (int d = 0; d < D; d++) {
            double mh = sum[k][d] / cnt[k], se_m = sqrt(var[k] / cnt[k]);
            ck_assert_msg(fabs(mh - mu[k * D + d]) <= 5 * se_m,
                          "%s: mean %d[%d] = %.4f, true %.4f (SE %.4f)", what, k, d, mh,
                          mu[k * D + d], se_m);
        }
        double dof = D * (cnt[k] - 1), vh = ss[k] / dof, se_v = var[k] * sqrt(2.0 / dof);
        ck_assert_msg(fabs(vh - var[k]) <= 5 * se_v, "%s: variance %d = %.4f, true %.4f (SE %.4f)",
                      what, k, vh, var[k], se_v);
    }
    free(r);
    free(a);
    free(s0);
    free(lab);
}

enum { REC_N = 2000, REC_STEPS = 200 };

static void recover(int process_kind, int pred, int corr, int batch_norms, const char *what)
{
    struct fixture f = fixture_new(process_kind, REC_STEPS, 20210101);
    sde_sampler *s = new_sampler(f.p, pred, corr, D, REC_N);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_BATCH_NORMS, batch_norms), SDE_OK);
    double *x = malloc(REC_N * D * sizeof *x);
    int rc = sde_sampler_run(s, f.m, f.n, NULL, x, REC_N, D, 0);
    ck_assert_msg(rc == SDE_OK, "%s: %s", what, sde_last_error());
    check_recovery(f.g, x, REC_N, what);
    free(x);
    sde_sampler_free(s);
    fixture_free(&f);
}

/* VE, reverse diffusion + Langevin (snr 0.16). Langevin uses batch-mean norms here: the
 * per-sample default is biased in two dimensions (see check_recovery and docs/sampling.md). */
START_TEST(recover_ve_reverse_diffusion_langevin)
{
    recover(SDE_PROCESS_VE, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, 1,
            "VE reverse diffusion + Langevin");
}
END_TEST

START_TEST(recover_vp_euler_maruyama)
{
    recover(SDE_PROCESS_VP, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_NONE, 0,
            "VP Euler-Maruyama");
}
END_TEST

START_TEST(recover_vp_ancestral)
{
    recover(SDE_PROCESS_VP, SDE_PREDICTOR_ANCESTRAL, SDE_CORRECTOR_NONE, 0, "VP ancestral");
}
END_TEST

/* ---- determinism --------------------------------------------------------------------- */

struct config {
    int process, pred, corr;
    int64_t n_steps;
    int batch_norms;
};

static const struct config det_configs[] = {
    {SDE_PROCESS_VE, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, 1, 0},
    {SDE_PROCESS_VP, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_ALD, 1, 0},
    {SDE_PROCESS_VP, SDE_PREDICTOR_ANCESTRAL, SDE_CORRECTOR_LANGEVIN, 2, 0},
    {SDE_PROCESS_SUBVP, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, 1, 0},
    {SDE_PROCESS_VE, SDE_PREDICTOR_ANCESTRAL, SDE_CORRECTOR_NONE, 1, 0},
};

/* More steps than beta_max = 20, so that VP and sub-VP have valid discrete tables. */
enum { DET_B = 20, DET_STEPS = 24 };

/* Run samples [offset, offset + batch) with a fresh noise handle of the same seed. */
static void run_shard(const struct config *c, const sde_process *p, sde_model *m, int threads,
                      double *x, size_t batch, size_t offset)
{
    sde_noise *n = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&n, 99), SDE_OK);
    sde_sampler *s = new_sampler(p, c->pred, c->corr, D, DET_B);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_CORRECTOR_STEPS, c->n_steps), SDE_OK);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, threads), SDE_OK);
    int rc = sde_sampler_run(s, m, n, NULL, x + offset * D, batch, D, offset);
    ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
    /* the prior, then n_steps corrector draws and one predictor draw per step */
    uint64_t per_step = (c->corr != SDE_CORRECTOR_NONE ? (uint64_t)c->n_steps : 0) + 1;
    ck_assert_uint_eq(sde_noise_counter(n), 1 + DET_STEPS * per_step);
    sde_sampler_free(s);
    sde_noise_free(n);
}

/* Same seed: bit-identical samples for the whole batch, shards of 7 with sample offsets,
 * batches of 1, and 2 or 3 threads. */
START_TEST(batch_shard_thread_invariance)
{
    const struct config *c = &det_configs[_i];
    struct fixture f = fixture_new(c->process, DET_STEPS, 1);
    double whole[DET_B * D], sharded[DET_B * D], single[DET_B * D], threaded[DET_B * D],
        three[DET_B * D];
    run_shard(c, f.p, f.m, 1, whole, DET_B, 0);
    for (size_t o = 0; o < DET_B; o += 7)
        run_shard(c, f.p, f.m, 1, sharded, o + 7 <= DET_B ? 7 : DET_B - o, o);
    for (size_t o = 0; o < DET_B; o++)
        run_shard(c, f.p, f.m, 1, single, 1, o);
    run_shard(c, f.p, f.m, 2, threaded, DET_B, 0);
    for (size_t o = 0; o < DET_B; o += 7) /* shards on 3 threads */
        run_shard(c, f.p, f.m, 3, three, o + 7 <= DET_B ? 7 : DET_B - o, o);
    ck_assert_msg(memcmp(whole, sharded, sizeof whole) == 0, "config %d: shards of 7 differ", _i);
    ck_assert_msg(memcmp(whole, single, sizeof whole) == 0, "config %d: batches of 1 differ", _i);
    ck_assert_msg(memcmp(whole, threaded, sizeof whole) == 0, "config %d: 2 threads differ", _i);
    ck_assert_msg(memcmp(whole, three, sizeof whole) == 0, "config %d: 3 threads differ", _i);
    for (int i = 0; i < DET_B * D; i++)
        ck_assert(isfinite(whole[i]));
    fixture_free(&f);
}
END_TEST

/* A callback source handing out the Philox stream: the library then draws whole batches
 * through the handle instead of computing the values inside the kernels. Same numbers. */
static int forward_noise(int kind, double param, double *out, size_t batch, size_t dim,
                         size_t offset, uint64_t draw, void *user)
{
    sde_noise *inner = user;
    if (sde_noise_set_counter(inner, draw) != SDE_OK)
        return -1;
    return sde_noise_draw(inner, kind, param, out, batch, dim, offset);
}

/* Rows longer than a thread's noise tile (4096 values) take the other path through the
 * kernels: split by rows, or, with fewer rows than threads, every row by tiles (the Langevin
 * norms then combine per-tile sums). The results must not depend on the batch split, the
 * thread count or where the noise comes from (computed in the kernels, or a callback's buffer).
 * With batch-mean norms the step depends on the batch, so there only the threads vary. */
START_TEST(long_rows_invariance)
{
    enum { LD = 9000, LB = 3, NV = 6 };
    sde_process *p = new_process(SDE_PROCESS_VE, 4);
    double *means = calloc(2 * LD, sizeof *means), v[2] = {0.2, 0.3}, w[2] = {0.5, 0.5};
    means[0] = 1.0;
    means[LD] = -1.0;
    sde_gmm *g = NULL;
    sde_model *m = NULL;
    ck_assert_int_eq(sde_gmm_new(&g, 2, LD, means, v, w), SDE_OK);
    ck_assert_int_eq(sde_model_new_gmm(&m, p, g), SDE_OK);
    /* threads, rows per run, callback noise */
    const int variants[NV][3] = {{1, LB, 0}, {1, 1, 0}, {2, LB, 0}, {2, 1, 0}, {3, 1, 0},
                                 {2, 1, 1}};
    for (int batch_norms = 0; batch_norms <= 1; batch_norms++) {
        double *out[NV];
        for (int k = 0; k < NV; k++) {
            out[k] = malloc(LB * LD * sizeof(double));
            size_t rows = batch_norms ? LB : (size_t)variants[k][1];
            sde_sampler *s = new_sampler(p, SDE_PREDICTOR_REVERSE_DIFFUSION,
                                         SDE_CORRECTOR_LANGEVIN, LD, LB);
            ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, variants[k][0]),
                             SDE_OK);
            ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_BATCH_NORMS, batch_norms),
                             SDE_OK);
            for (size_t o = 0; o < LB; o += rows) {
                sde_noise *n = NULL, *cb = NULL;
                ck_assert_int_eq(sde_noise_new_philox(&n, 5), SDE_OK);
                if (variants[k][2])
                    ck_assert_int_eq(sde_noise_new_callback(&cb, forward_noise, n), SDE_OK);
                int rc = sde_sampler_run(s, m, cb != NULL ? cb : n, NULL, out[k] + o * LD, rows,
                                         LD, o);
                ck_assert_msg(rc == SDE_OK, "%s", sde_last_error());
                sde_noise_free(cb);
                sde_noise_free(n);
            }
            sde_sampler_free(s);
        }
        for (int k = 1; k < NV; k++)
            ck_assert_msg(memcmp(out[0], out[k], LB * LD * sizeof(double)) == 0,
                          "batch_norms %d: variant %d differs", batch_norms, k);
        for (int i = 0; i < LB * LD; i++)
            ck_assert(isfinite(out[0][i]));
        for (int k = 0; k < NV; k++)
            free(out[k]);
    }
    free(means);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* An epsilon-predicting network on long rows: with the built-in generator the Langevin step
 * converts the output inside its norms phase (fused), with a callback source in a pass of its
 * own; the two must agree bit for bit, with per-sample and batch-mean norms, on 1 and 2
 * threads. A NaN in the output must then fail the step before anything is written. */
struct eps_net {
    int nan_at; /* flat index to poison, or -1 */
};

static int eps_net_fn(const double *t, const double *x, double *out, size_t batch, size_t dim,
                      void *user)
{
    const struct eps_net *e = user;
    for (size_t b = 0; b < batch; b++)
        for (size_t k = 0; k < dim; k++)
            out[b * dim + k] = 0.3 * x[b * dim + k] + 0.01 * (double)(k % 7) - t[b];
    if (e->nan_at >= 0)
        out[e->nan_at] = NAN;
    return 0;
}

START_TEST(long_rows_fused_conversion)
{
    enum { LD = 9000, LB = 2 };
    sde_process *p = new_process(SDE_PROCESS_VP, 1000);
    struct eps_net e = {-1};
    sde_model *m = NULL;
    ck_assert_int_eq(sde_model_new(&m, p, LD, eps_net_fn, &e, SDE_OUTPUT_EPSILON,
                                   SDE_TIME_CONTINUOUS),
                     SDE_OK);
    double *x0 = malloc(LB * LD * sizeof(double)), *ref = malloc(LB * LD * sizeof(double));
    double *x = malloc(LB * LD * sizeof(double));
    const double t[LB] = {0.5, 0.25};
    for (int i = 0; i < LB * LD; i++)
        x0[i] = sin(0.001 * i);
    for (int batch_norms = 0; batch_norms <= 1; batch_norms++)
        for (int threads = 1; threads <= 2; threads++)
            for (int callback = 1; callback >= 0; callback--) {
                sde_corrector *c = NULL;
                ck_assert_int_eq(sde_corrector_new(&c, p, SDE_CORRECTOR_LANGEVIN, LD, LB),
                                 SDE_OK);
                ck_assert_int_eq(sde_corrector_set_int(c, SDE_OPT_PC_THREADS, threads), SDE_OK);
                ck_assert_int_eq(sde_corrector_set_int(c, SDE_OPT_PC_BATCH_NORMS, batch_norms),
                                 SDE_OK);
                sde_noise *n = NULL, *cb = NULL;
                ck_assert_int_eq(sde_noise_new_philox(&n, 21), SDE_OK);
                ck_assert_int_eq(sde_noise_new_callback(&cb, forward_noise, n), SDE_OK);
                sde_noise *src = callback ? cb : n;
                memcpy(x, x0, LB * LD * sizeof(double));
                e.nan_at = -1;
                ck_assert_int_eq(sde_corrector_step(c, m, src, t, x, NULL, LB, LD, 4), SDE_OK);
                if (callback && threads == 1)
                    memcpy(ref, x, LB * LD * sizeof(double));
                ck_assert_msg(memcmp(x, ref, LB * LD * sizeof(double)) == 0,
                              "batch_norms %d, %d threads, %s noise differ", batch_norms,
                              threads, callback ? "callback" : "built-in");
                /* a NaN in sample 1, element 6000 */
                memcpy(x, x0, LB * LD * sizeof(double));
                e.nan_at = LD + 6000;
                uint64_t counter = sde_noise_counter(src);
                tu_assert_fails_with(sde_corrector_step(c, m, src, t, x, NULL, LB, LD, 4),
                                     SDE_E_NUMERIC, "sample 1, element 6000");
                ck_assert(memcmp(x, x0, LB * LD * sizeof(double)) == 0);
                ck_assert_uint_eq(sde_noise_counter(src), counter);
                sde_noise_free(cb);
                sde_noise_free(n);
                sde_corrector_free(c);
            }
    free(x0);
    free(ref);
    free(x);
    sde_model_free(m);
    sde_process_free(p);
}
END_TEST

START_TEST(callback_noise_matches_philox)
{
    struct fixture f = fixture_new(SDE_PROCESS_VE, DET_STEPS, 77);
    sde_noise *inner = NULL, *cb = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&inner, 77), SDE_OK);
    ck_assert_int_eq(sde_noise_new_callback(&cb, forward_noise, inner), SDE_OK);
    double a[DET_B * D], b[DET_B * D];
    for (int threads = 1; threads <= 2; threads++) {
        sde_sampler *s = new_sampler(f.p, SDE_PREDICTOR_REVERSE_DIFFUSION,
                                     SDE_CORRECTOR_LANGEVIN, D, DET_B);
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, threads), SDE_OK);
        ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
        ck_assert_int_eq(sde_noise_set_counter(cb, 0), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, a, DET_B, D, 3), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, f.m, cb, NULL, b, DET_B, D, 3), SDE_OK);
        ck_assert(memcmp(a, b, sizeof a) == 0);
        ck_assert_uint_eq(sde_noise_counter(cb), sde_noise_counter(f.n));
        sde_sampler_free(s);
    }
    sde_noise_free(cb);
    sde_noise_free(inner);
    fixture_free(&f);
}
END_TEST

/* ---- the steppers as building blocks ------------------------------------------------- */

/* A PC loop written with the public steppers reproduces the sampler bit for bit, on the
 * default grid and on a custom one, with and without denoising. */
START_TEST(stepper_loop_matches_sampler)
{
    const struct config *c = &det_configs[_i % 4];
    int custom_grid = _i >= 4;
    enum { B = 6, N = 24 };
    struct fixture f = fixture_new(c->process, N, 3);
    sde_sampler *s = new_sampler(f.p, c->pred, c->corr, D, B);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_CORRECTOR_STEPS, c->n_steps), SDE_OK);
    double grid[N + 1];
    if (custom_grid) {
        for (int k = 0; k <= N; k++) /* quadratic in k, from T to 0.002 */
            grid[k] = 0.002 + (1.0 - 0.002) * (1.0 - (double)k / N) * (1.0 - (double)k / N);
        ck_assert_int_eq(sde_sampler_set_time_grid(s, grid, N), SDE_OK);
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_DENOISE, 0), SDE_OK);
    }
    ck_assert_int_eq(sde_sampler_get_time_grid(s, grid, N + 1), SDE_OK);
    double want[B * D], x[B * D], xm[B * D], t[B];
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, want, B, D, 0), SDE_OK);

    sde_predictor *pred = NULL;
    sde_corrector *corr = NULL;
    ck_assert_int_eq(sde_predictor_new(&pred, f.p, c->pred, D, B), SDE_OK);
    ck_assert_int_eq(sde_corrector_new(&corr, f.p, c->corr, D, B), SDE_OK);
    ck_assert_int_eq(sde_corrector_set_int(corr, SDE_OPT_PC_CORRECTOR_STEPS, c->n_steps), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_process_prior_sample(f.p, f.n, x, B, D, 0), SDE_OK);
    for (int k = 0; k < N; k++) {
        for (int b = 0; b < B; b++)
            t[b] = grid[k];
        ck_assert_int_eq(sde_corrector_step(corr, f.m, f.n, t, x, xm, B, D, 0), SDE_OK);
        ck_assert_int_eq(sde_predictor_step(pred, f.m, f.n, t, grid[k + 1] - grid[k], x, xm, B,
                                            D, 0), SDE_OK);
    }
    const double *got = custom_grid ? x : xm; /* denoise: the last mean */
    ck_assert_msg(memcmp(got, want, sizeof want) == 0, "config %d (custom grid %d) differs", _i % 4,
                  custom_grid);
    sde_predictor_free(pred);
    sde_corrector_free(corr);
    sde_sampler_free(s);
    fixture_free(&f);
}
END_TEST

START_TEST(default_grid_and_trajectory)
{
    enum { B = 4, N = 10 };
    struct fixture f = fixture_new(SDE_PROCESS_VP, N, 8);
    sde_sampler *s = new_sampler(f.p, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_NONE, D, B);
    double grid[N + 1];
    ck_assert_int_eq(sde_sampler_get_time_grid(s, grid, N + 1), SDE_OK);
    ck_assert_double_eq(grid[0], 1.0);
    ck_assert_double_eq_tol(grid[N - 1], 1e-3, 1e-17);
    ck_assert_double_eq(grid[N], 0.0);
    for (int k = 1; k < N; k++)
        ck_assert_double_eq_tol(grid[k - 1] - grid[k], (1.0 - 1e-3) / (N - 1), 1e-15);
    tu_assert_fails_with(sde_sampler_get_time_grid(s, grid, N), SDE_E_DIM, "n (10)");

    size_t steps[3] = {0, 5, N};
    double traj[3 * B * D], out[B * D], prior[B * D];
    for (int i = 0; i < 3 * B * D; i++)
        traj[i] = 42.0;
    ck_assert_int_eq(sde_sampler_set_trajectory(s, steps, 3, traj, 3 * B * D), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_process_prior_sample(f.p, f.n, prior, B, D, 0), SDE_OK);
    ck_assert(memcmp(traj, prior, sizeof prior) == 0);
    ck_assert(memcmp(traj + 2 * B * D, out, sizeof out) == 0);
    ck_assert(traj[B * D] != 42.0 && memcmp(traj + B * D, out, sizeof out) != 0);
    /* the buffer must hold every record at run time */
    ck_assert_int_eq(sde_sampler_set_trajectory(s, steps, 3, traj, 3 * B * D - 1), SDE_OK);
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0), SDE_E_DIM,
                         "trajectory buffer");
    size_t far[1] = {N + 1};
    ck_assert_int_eq(sde_sampler_set_trajectory(s, far, 1, traj, 3 * B * D), SDE_OK);
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0), SDE_E_DIM, "step 11");
    size_t unsorted[2] = {3, 3};
    tu_assert_fails_with(sde_sampler_set_trajectory(s, unsorted, 2, traj, 3 * B * D),
                         SDE_E_INVALID, "steps[1]");
    ck_assert_int_eq(sde_sampler_set_trajectory(s, NULL, 0, NULL, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0), SDE_OK);

    /* x_init replaces the prior draw; x_out may alias it */
    double x[B * D];
    memcpy(x, prior, sizeof x);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 1), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, x, x, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0), SDE_OK);
    ck_assert(memcmp(x, out, sizeof x) == 0);
    sde_sampler_free(s);
    fixture_free(&f);
}
END_TEST

/* Reference-compatible mode against the default: R7 (Euler-Maruyama's dt), R15 (batch-mean
 * Langevin norms), R19 (the reported NFE). */
START_TEST(reference_mode_differences)
{
    enum { B = 5 };
    double a[B * D], b[B * D], one[D];
    /* R7: with N = 10 the grid step is 0.111, not 1/N: the two modes differ ... */
    struct fixture f = fixture_new(SDE_PROCESS_VP, 10, 11);
    sde_sampler *s = new_sampler(f.p, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_NONE, D, B);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, a, B, D, 0), SDE_OK);
    uint64_t nfe = 0, calls = 0;
    ck_assert_int_eq(sde_sampler_get_nfe(s, &nfe), SDE_OK);
    ck_assert_int_eq(sde_sampler_get_model_calls(s, &calls), SDE_OK);
    ck_assert_uint_eq(nfe, 10);
    ck_assert_uint_eq(calls, 10);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_REFERENCE, 1), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, b, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_get_nfe(s, &nfe), SDE_OK);
    ck_assert_uint_eq(nfe, 20); /* R19: N (n_steps + 1) */
    ck_assert(fabs(a[0] - b[0]) > 1e-6);
    sde_sampler_free(s);
    fixture_free(&f);
    /* ... while with N = 1000, eps = 1e-3, T = 1 the grid step is exactly 1/N: they agree */
    f = fixture_new(SDE_PROCESS_VP, 1000, 11);
    s = new_sampler(f.p, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_NONE, D, B);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, a, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_REFERENCE, 1), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, b, B, D, 0), SDE_OK);
    ck_assert(tu_max_scaled_err(a, b, B * D, 1e-9, 1e-9) <= 1.0);
    sde_sampler_free(s);
    fixture_free(&f);

    /* R15: Langevin's step depends on the batch-mates with batch means, not per sample */
    f = fixture_new(SDE_PROCESS_VE, 10, 12);
    s = new_sampler(f.p, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, D, B);
    for (int mode = 0; mode < 2; mode++) {
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_BATCH_NORMS, mode), SDE_OK);
        ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, a, B, D, 0), SDE_OK);
        ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, one, 1, D, 0), SDE_OK);
        int same = memcmp(a, one, sizeof one) == 0;
        ck_assert_msg(same == !mode, "batch norms %d: sample 0 alone %s its value in the batch",
                      mode, same ? "equals" : "differs from");
    }
    sde_sampler_free(s);
    fixture_free(&f);
}
END_TEST

/* Probability flow (default mode): the update has no noise term, so the result does not
 * depend on the noise source, though the draws are still made. */
START_TEST(probability_flow_is_deterministic)
{
    enum { B = 3 };
    struct fixture f = fixture_new(SDE_PROCESS_VE, 20, 1);
    double x0[B * D] = {5, -3, 0.5, 8, -10, 2}, a[B * D], b[B * D];
    for (int pred = SDE_PREDICTOR_EULER_MARUYAMA; pred <= SDE_PREDICTOR_REVERSE_DIFFUSION;
         pred++) {
        sde_sampler *s = new_sampler(f.p, pred, SDE_CORRECTOR_NONE, D, B);
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_PROBABILITY_FLOW, 1), SDE_OK);
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_DENOISE, 0), SDE_OK);
        ck_assert_int_eq(sde_noise_set_counter(f.n, 0), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, x0, a, B, D, 0), SDE_OK);
        ck_assert_uint_eq(sde_noise_counter(f.n), 20);
        ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, x0, b, B, D, 0), SDE_OK);
        ck_assert(memcmp(a, b, sizeof a) == 0);
        if (pred == SDE_PREDICTOR_EULER_MARUYAMA) { /* refused in reference mode (R13) */
            ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_REFERENCE, 1), SDE_OK);
            tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, x0, b, B, D, 0),
                                 SDE_E_UNSUPPORTED, "probability flow");
        }
        sde_sampler_free(s);
    }
    fixture_free(&f);
}
END_TEST

/* The corrector's alpha: the DDPM alphas for VP, 1 - beta_i on VP's schedule for sub-VP, 1
 * for VE; and one Langevin step computed by hand. */
START_TEST(corrector_alpha_and_step)
{
    enum { B = 3, N = 50 };
    double t[B] = {0.0, 0.5, 1.0}, alpha[B], tab[N];
    sde_corrector *c = NULL;
    sde_process *vp = new_process(SDE_PROCESS_VP, N), *sub = new_process(SDE_PROCESS_SUBVP, N);
    sde_process *ve = new_process(SDE_PROCESS_VE, N);
    ck_assert_int_eq(sde_process_table(vp, SDE_TABLE_ALPHAS, tab, N), SDE_OK);
    for (int which = 0; which < 3; which++) {
        sde_process *p = which == 0 ? vp : which == 1 ? sub : ve;
        ck_assert_int_eq(sde_corrector_new(&c, p, SDE_CORRECTOR_ALD, D, B), SDE_OK);
        ck_assert_int_eq(sde_corrector_alpha(c, t, alpha, B), SDE_OK);
        for (int b = 0; b < B; b++) {
            int64_t i = (int64_t)(t[b] * (N - 1));
            ck_assert_double_eq(alpha[b], which == 2 ? 1.0 : tab[i]);
        }
        sde_corrector_free(c);
    }

    /* one Langevin step with per-sample norms, by hand */
    sde_gmm *g = new_gmm();
    sde_model *m = NULL;
    sde_noise *n = NULL;
    ck_assert_int_eq(sde_model_new_gmm(&m, vp, g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&n, 4), SDE_OK);
    ck_assert_int_eq(sde_corrector_new(&c, vp, SDE_CORRECTOR_LANGEVIN, D, B), SDE_OK);
    ck_assert_int_eq(sde_corrector_set_real(c, SDE_OPT_PC_SNR, 0.2), SDE_OK);
    double t2[B] = {0.1, 0.4, 0.9}, x[B * D] = {0.3, -0.2, 1.5, 1.0, -0.7, 0.1}, xm[B * D];
    double score[B * D], z[B * D], steps[B];
    tu_assert_fails_with(sde_corrector_last_step_sizes(c, steps, B), SDE_E_STATE, "no successful");
    ck_assert_int_eq(sde_model_score(m, t2, x, score, B, D), SDE_OK);
    ck_assert_int_eq(sde_noise_normal(n, z, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(n, 0), SDE_OK);
    ck_assert_int_eq(sde_corrector_alpha(c, t2, alpha, B), SDE_OK);
    double want_x[B * D], want_m[B * D];
    for (int b = 0; b < B; b++) {
        double gn = hypot(score[b * D], score[b * D + 1]), zn = hypot(z[b * D], z[b * D + 1]);
        double e = 2 * alpha[b] * (0.2 * zn / gn) * (0.2 * zn / gn);
        for (int d = 0; d < D; d++) {
            want_m[b * D + d] = x[b * D + d] + e * score[b * D + d];
            want_x[b * D + d] = want_m[b * D + d] + sqrt(2 * e) * z[b * D + d];
        }
    }
    ck_assert_int_eq(sde_corrector_step(c, m, n, t2, x, xm, B, D, 0), SDE_OK);
    ck_assert(tu_max_scaled_err(x, want_x, B * D, 1e-13, 1e-13) <= 1.0);
    ck_assert(tu_max_scaled_err(xm, want_m, B * D, 1e-13, 1e-13) <= 1.0);
    ck_assert_int_eq(sde_corrector_last_step_sizes(c, steps, B), SDE_OK);
    ck_assert(steps[0] > 0 && steps[1] > 0 && steps[2] > 0);
    tu_assert_fails_with(sde_corrector_last_step_sizes(c, steps, 2), SDE_E_DIM, "batch (2)");
    sde_corrector_free(c);
    sde_noise_free(n);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(vp);
    sde_process_free(sub);
    sde_process_free(ve);
}
END_TEST

/* A custom process that is VE through callbacks: its Euler-Maruyama and ALD steps agree with
 * the built-in VE's. */
static int ve_drift(const double *t, const double *x, double *out, size_t batch, size_t dim,
                    void *u)
{
    (void)t, (void)x, (void)u;
    memset(out, 0, batch * dim * sizeof *out);
    return 0;
}

static int ve_diffusion(const double *t, double *g, size_t batch, void *u)
{
    for (size_t b = 0; b < batch; b++)
        g[b] = 0.01 * pow(2000.0, t[b]) * sqrt(2.0 * log(2000.0));
    (void)u;
    return 0;
}

static int ve_marginal(const double *t, double *a, double *s, size_t batch, void *u)
{
    for (size_t b = 0; b < batch; b++) {
        a[b] = 1.0;
        s[b] = 0.01 * pow(2000.0, t[b]);
    }
    (void)u;
    return 0;
}

static int custom_net(const double *t, const double *x, double *out, size_t batch, size_t dim,
                      void *u)
{
    double a[8], s[8];
    ve_marginal(t, a, s, batch, NULL);
    return sde_gmm_eval_coeffs(u, a, s, x, out, NULL, batch, dim) == SDE_OK ? 0 : -1;
}

START_TEST(custom_process)
{
    enum { B = 4, N = 15 };
    sde_process *ve = new_process(SDE_PROCESS_VE, N), *cp = NULL;
    ck_assert_int_eq(sde_process_new_custom(&cp, 1.0, N, 20.0, ve_drift, ve_diffusion,
                                            ve_marginal, NULL), SDE_OK);
    sde_gmm *g = new_gmm();
    sde_model *mv = NULL, *mc = NULL;
    ck_assert_int_eq(sde_model_new_gmm(&mv, ve, g), SDE_OK);
    ck_assert_int_eq(sde_model_new(&mc, cp, D, custom_net, g, SDE_OUTPUT_SCORE,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    sde_noise *n = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&n, 21), SDE_OK);
    double a[B * D], b[B * D];
    sde_sampler *sv = new_sampler(ve, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_ALD, D, B);
    sde_sampler *sc = new_sampler(cp, SDE_PREDICTOR_EULER_MARUYAMA, SDE_CORRECTOR_ALD, D, B);
    ck_assert_int_eq(sde_sampler_run(sv, mv, n, NULL, a, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(n, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(sc, mc, n, NULL, b, B, D, 0), SDE_OK);
    ck_assert_msg(tu_max_scaled_err(b, a, B * D, 1e-9, 1e-9) <= 1.0, "custom VE differs");
    /* a model of another process is refused */
    tu_assert_fails_with(sde_sampler_run(sc, mv, n, NULL, b, B, D, 0), SDE_E_INVALID,
                         "different process");
    /* reference mode has no answer for custom processes' correctors (R17) */
    ck_assert_int_eq(sde_sampler_set_int(sc, SDE_OPT_PC_REFERENCE, 1), SDE_OK);
    tu_assert_fails_with(sde_sampler_run(sc, mc, n, NULL, b, B, D, 0), SDE_E_UNSUPPORTED,
                         "custom process");
    sde_sampler_free(sc);
    /* ancestral sampling is VP/VE only; ALD without a marginal fails at the step */
    sde_predictor *pr = NULL;
    tu_assert_fails_with(sde_predictor_new(&pr, cp, SDE_PREDICTOR_ANCESTRAL, D, B),
                         SDE_E_UNSUPPORTED, "custom");
    ck_assert_ptr_null(pr);
    sde_process *nomarg = NULL;
    ck_assert_int_eq(sde_process_new_custom(&nomarg, 1.0, N, 20.0, ve_drift, ve_diffusion, NULL,
                                            NULL), SDE_OK);
    sde_model *mn = NULL;
    ck_assert_int_eq(sde_model_new(&mn, nomarg, D, custom_net, g, SDE_OUTPUT_SCORE,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    sde_corrector *c = NULL;
    ck_assert_int_eq(sde_corrector_new(&c, nomarg, SDE_CORRECTOR_ALD, D, B), SDE_OK);
    double t[B] = {0.5, 0.5, 0.5, 0.5};
    memcpy(b, a, sizeof b);
    tu_assert_fails_with(sde_corrector_step(c, mn, n, t, b, NULL, B, D, 0), SDE_E_UNSUPPORTED,
                         "marginal");
    ck_assert(memcmp(a, b, sizeof a) == 0);
    sde_corrector_free(c);
    sde_model_free(mn);
    sde_process_free(nomarg);
    sde_sampler_free(sv);
    sde_noise_free(n);
    sde_model_free(mc);
    sde_model_free(mv);
    sde_gmm_free(g);
    sde_process_free(cp);
    sde_process_free(ve);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------- */

START_TEST(argument_validation)
{
    enum { B = 4, N = 10 };
    struct fixture f = fixture_new(SDE_PROCESS_VE, N, 1);
    sde_predictor *p = (sde_predictor *)&f;
    sde_corrector *c = (sde_corrector *)&f;
    sde_sampler *s = (sde_sampler *)&f;
    /* creation */
    tu_assert_fails_with(sde_predictor_new(&p, f.p, 9, D, B), SDE_E_INVALID, "kind (9)");
    ck_assert_ptr_null(p);
    tu_assert_fails_with(sde_corrector_new(&c, f.p, 0, D, B), SDE_E_INVALID, "kind (0)");
    ck_assert_ptr_null(c);
    tu_assert_fails_with(sde_sampler_new(&s, f.p, 1, 7, D, B), SDE_E_INVALID, "kind (7)");
    ck_assert_ptr_null(s);
    tu_assert_fails_with(sde_sampler_new(NULL, f.p, 1, 1, D, B), SDE_E_INVALID, "out");
    tu_assert_fails_with(sde_sampler_new(&s, NULL, 1, 1, D, B), SDE_E_INVALID, "process");
    tu_assert_fails_with(sde_sampler_new(&s, f.p, 1, 1, 0, B), SDE_E_DIM, "dim");
    tu_assert_fails_with(sde_sampler_new(&s, f.p, 1, 1, D, 0), SDE_E_DIM, "max_batch");
    tu_assert_fails_with(sde_predictor_new(&p, f.p, 1, SIZE_MAX / 4, 8), SDE_E_DIM, "too large");

    /* options: values, types, applicability */
    s = new_sampler(f.p, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, D, B);
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_SNR, -0.1), SDE_E_INVALID,
                         "SDE_OPT_PC_SNR (-0.1");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_SNR, NAN), SDE_E_INVALID,
                         "SDE_OPT_PC_SNR");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_SNR, INFINITY), SDE_E_INVALID,
                         "SDE_OPT_PC_SNR");
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_STEPS, 0), SDE_E_INVALID,
                         "SDE_OPT_PC_STEPS (0)");
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_CORRECTOR_STEPS, 0), SDE_E_INVALID,
                         "SDE_OPT_PC_CORRECTOR_STEPS (0)");
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_CORRECTOR_STEPS, -3), SDE_E_INVALID,
                         "SDE_OPT_PC_CORRECTOR_STEPS (-3)");
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_DENOISE, 2), SDE_E_INVALID,
                         "SDE_OPT_PC_DENOISE (2)");
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, 0), SDE_E_INVALID,
                         "SDE_OPT_PC_THREADS (0)");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_EPS, 0.0), SDE_E_INVALID,
                         "SDE_OPT_PC_EPS (0)");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_EPS, -1e-3), SDE_E_INVALID,
                         "SDE_OPT_PC_EPS");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_EPS, 1.0), SDE_E_INVALID,
                         "must be < T");
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_SNR, 1), SDE_E_INVALID,
                         "not an integer option");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_STEPS, 1), SDE_E_INVALID,
                         "not a real option");
    tu_assert_fails_with(sde_sampler_set_int(s, 4242, 1), SDE_E_INVALID, "4242");
    double v = 0;
    int64_t iv = 0;
    ck_assert_int_eq(sde_sampler_get_real(s, SDE_OPT_PC_SNR, &v), SDE_OK);
    ck_assert_double_eq(v, 0.16);
    ck_assert_int_eq(sde_sampler_get_real(s, SDE_OPT_PC_EPS, &v), SDE_OK);
    ck_assert_double_eq(v, 1e-3);
    ck_assert_int_eq(sde_sampler_get_int(s, SDE_OPT_PC_STEPS, &iv), SDE_OK);
    ck_assert_int_eq(iv, N);
    ck_assert_int_eq(sde_sampler_get_int(s, SDE_OPT_PC_DENOISE, &iv), SDE_OK);
    ck_assert_int_eq(iv, 1);
    ck_assert_str_eq(sde_option_name(SDE_OPT_PC_SNR), "SDE_OPT_PC_SNR");
    ck_assert_int_eq(sde_option_type(SDE_OPT_PC_EPS), SDE_OPTION_REAL);
    double lo, hi;
    ck_assert_int_eq(sde_option_bounds(SDE_OPT_PC_CORRECTOR_STEPS, &lo, &hi), SDE_OK);
    ck_assert_double_eq(lo, 1);

    /* grids */
    double bad1[3] = {1.0, 0.5, 0.5}, bad2[3] = {1.5, 0.5, 0.0}, bad3[3] = {1.0, NAN, 0.0};
    double bad4[3] = {1.0, 0.5, -0.1}, good[3] = {0.9, 0.3, 0.0};
    tu_assert_fails_with(sde_sampler_set_time_grid(s, bad1, 2), SDE_E_INVALID, "times[2]");
    tu_assert_fails_with(sde_sampler_set_time_grid(s, bad2, 2), SDE_E_INVALID, "times[0] (1.5)");
    tu_assert_fails_with(sde_sampler_set_time_grid(s, bad3, 2), SDE_E_INVALID, "times[1]");
    tu_assert_fails_with(sde_sampler_set_time_grid(s, bad4, 2), SDE_E_INVALID, "times[2]");
    tu_assert_fails_with(sde_sampler_set_time_grid(s, good, 0), SDE_E_DIM, "n is 0");
    tu_assert_fails_with(sde_sampler_set_time_grid(s, NULL, 2), SDE_E_INVALID, "times");
    ck_assert_int_eq(sde_sampler_set_time_grid(s, good, 2), SDE_OK);
    ck_assert_int_eq(sde_sampler_get_int(s, SDE_OPT_PC_STEPS, &iv), SDE_OK);
    ck_assert_int_eq(iv, 2);
    tu_assert_fails_with(sde_sampler_set_int(s, SDE_OPT_PC_STEPS, 5), SDE_E_STATE, "custom");
    tu_assert_fails_with(sde_sampler_set_real(s, SDE_OPT_PC_EPS, 0.1), SDE_E_STATE, "custom");
    ck_assert_int_eq(sde_sampler_set_time_grid(s, NULL, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_STEPS, 5), SDE_OK);

    /* run arguments */
    double x[B * D] = {0}, out[B * D];
    tu_assert_fails_with(sde_sampler_run(NULL, f.m, f.n, NULL, out, B, D, 0), SDE_E_INVALID,
                         "sampler");
    tu_assert_fails_with(sde_sampler_run(s, NULL, f.n, NULL, out, B, D, 0), SDE_E_INVALID,
                         "model");
    tu_assert_fails_with(sde_sampler_run(s, f.m, NULL, NULL, out, B, D, 0), SDE_E_INVALID,
                         "noise");
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, NULL, B, D, 0), SDE_E_INVALID,
                         "x_out");
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, out, B + 1, D, 0), SDE_E_DIM,
                         "max_batch");
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, out, 0, D, 0), SDE_E_DIM, "batch");
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, out, B, D + 1, 0), SDE_E_DIM,
                         "dim (3)");
    tu_assert_fails_with(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, SIZE_MAX), SDE_E_INVALID,
                         "sample_offset");
    sde_sampler_free(s);

    /* stepper arguments */
    ck_assert_int_eq(sde_predictor_new(&p, f.p, SDE_PREDICTOR_EULER_MARUYAMA, D, B), SDE_OK);
    double t[B] = {0.5, 0.5, 0.5, 1.5}, xm[B * D];
    tu_assert_fails_with(sde_predictor_step(p, f.m, f.n, t, -0.1, x, xm, B, D, 0), SDE_E_INVALID,
                         "t[3] (1.5)");
    t[3] = 0.5;
    tu_assert_fails_with(sde_predictor_step(p, f.m, f.n, t, 0.1, x, xm, B, D, 0), SDE_E_INVALID,
                         "dt (0.1");
    tu_assert_fails_with(sde_predictor_step(p, f.m, f.n, t, NAN, x, xm, B, D, 0), SDE_E_INVALID,
                         "dt");
    tu_assert_fails_with(sde_predictor_step(p, f.m, f.n, t, -0.1, x, x, B, D, 0), SDE_E_INVALID,
                         "aliases");
    tu_assert_fails_with(sde_predictor_step(p, f.m, f.n, NULL, -0.1, x, xm, B, D, 0),
                         SDE_E_INVALID, "t is NULL");
    tu_assert_fails_with(sde_predictor_set_real(p, SDE_OPT_PC_SNR, 0.1), SDE_E_INVALID,
                         "SDE_OPT_PC_SNR");
    tu_assert_fails_with(sde_predictor_set_int(p, SDE_OPT_PC_CORRECTOR_STEPS, 2), SDE_E_INVALID,
                         "not an integer option of a predictor");
    ck_assert_int_eq(sde_predictor_step(p, f.m, f.n, t, -0.1, x, NULL, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_predictor_kind(p), SDE_PREDICTOR_EULER_MARUYAMA);
    sde_predictor_free(p);
    ck_assert_int_eq(sde_corrector_new(&c, f.p, SDE_CORRECTOR_LANGEVIN, D, B), SDE_OK);
    tu_assert_fails_with(sde_corrector_set_real(c, SDE_OPT_PC_SNR, -1), SDE_E_INVALID,
                         "SDE_OPT_PC_SNR (-1)");
    tu_assert_fails_with(sde_corrector_set_int(c, SDE_OPT_PC_PROBABILITY_FLOW, 1), SDE_E_INVALID,
                         "of a corrector");
    tu_assert_fails_with(sde_corrector_alpha(c, t, NULL, B), SDE_E_INVALID, "alpha_out");
    sde_corrector_free(c);

    /* names and free(NULL) */
    ck_assert_str_eq(sde_predictor_kind_name(SDE_PREDICTOR_ANCESTRAL), "ancestral_sampling");
    ck_assert_ptr_null(sde_predictor_kind_name(0));
    ck_assert_int_eq(sde_predictor_kind_from_name("reverse_diffusion"),
                     SDE_PREDICTOR_REVERSE_DIFFUSION);
    ck_assert_int_eq(sde_predictor_kind_from_name("nope"), 0);
    ck_assert_int_eq(sde_predictor_kind_from_name(NULL), 0);
    ck_assert_str_eq(sde_corrector_kind_name(SDE_CORRECTOR_ALD), "ald");
    ck_assert_int_eq(sde_corrector_kind_from_name("langevin"), SDE_CORRECTOR_LANGEVIN);
    ck_assert_ptr_null(sde_corrector_kind_name(4));
    sde_predictor_free(NULL);
    sde_corrector_free(NULL);
    sde_sampler_free(NULL);
    ck_assert_int_eq(sde_predictor_kind(NULL), 0);
    ck_assert_uint_eq(sde_sampler_workspace_bytes(NULL), 0);
    fixture_free(&f);
}
END_TEST

START_TEST(unsupported_combinations)
{
    enum { B = 2 };
    sde_process *sub = new_process(SDE_PROCESS_SUBVP, 100), *vp = new_process(SDE_PROCESS_VP, 100);
    sde_process *badvp = NULL;
    ck_assert_int_eq(sde_process_new_vp(&badvp, 0.1, 20, 1, 10), SDE_OK); /* beta_i reach 1 */
    sde_predictor *p = NULL;
    sde_corrector *c = NULL;
    sde_sampler *s = NULL;
    tu_assert_fails_with(sde_predictor_new(&p, sub, SDE_PREDICTOR_ANCESTRAL, D, B),
                         SDE_E_UNSUPPORTED, "sub-VP");
    tu_assert_fails_with(sde_sampler_new(&s, sub, SDE_PREDICTOR_ANCESTRAL, SDE_CORRECTOR_NONE, D,
                                         B), SDE_E_UNSUPPORTED, "ancestral");
    tu_assert_fails_with(sde_predictor_new(&p, badvp, SDE_PREDICTOR_REVERSE_DIFFUSION, D, B),
                         SDE_E_INVALID, "reverse-diffusion predictor");
    tu_assert_fails_with(sde_predictor_new(&p, badvp, SDE_PREDICTOR_ANCESTRAL, D, B),
                         SDE_E_INVALID, "beta[5]");
    tu_assert_fails_with(sde_corrector_new(&c, badvp, SDE_CORRECTOR_LANGEVIN, D, B),
                         SDE_E_INVALID, "Langevin corrector");
    sde_process *badsub = NULL;
    ck_assert_int_eq(sde_process_new_subvp(&badsub, 0.1, 20, 1, 10), SDE_OK);
    tu_assert_fails_with(sde_corrector_new(&c, badsub, SDE_CORRECTOR_ALD, D, B), SDE_E_INVALID,
                         "sub-VP");
    sde_process_free(badsub);
    /* Euler-Maruyama never reads the tables */
    ck_assert_int_eq(sde_sampler_new(&s, badvp, SDE_PREDICTOR_EULER_MARUYAMA,
                                     SDE_CORRECTOR_NONE, D, B), SDE_OK);
    sde_sampler_free(s);

    sde_gmm *g = new_gmm();
    sde_model *m = NULL;
    sde_noise *n = NULL;
    ck_assert_int_eq(sde_model_new_gmm(&m, vp, g), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&n, 1), SDE_OK);
    double t[B] = {0.5, 0.5}, x[B * D] = {1, 2, 3, 4}, xm[B * D];
    ck_assert_int_eq(sde_predictor_new(&p, vp, SDE_PREDICTOR_ANCESTRAL, D, B), SDE_OK);
    ck_assert_int_eq(sde_predictor_set_int(p, SDE_OPT_PC_PROBABILITY_FLOW, 1), SDE_OK);
    tu_assert_fails_with(sde_predictor_step(p, m, n, t, 0, x, xm, B, D, 0), SDE_E_UNSUPPORTED,
                         "ancestral");
    sde_predictor_free(p);
    /* sub-VP: Langevin works by default, reference mode refuses it (R17) */
    sde_model *ms = NULL;
    ck_assert_int_eq(sde_model_new_gmm(&ms, sub, g), SDE_OK);
    ck_assert_int_eq(sde_corrector_new(&c, sub, SDE_CORRECTOR_LANGEVIN, D, B), SDE_OK);
    ck_assert_int_eq(sde_corrector_step(c, ms, n, t, x, xm, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_corrector_set_int(c, SDE_OPT_PC_REFERENCE, 1), SDE_OK);
    tu_assert_fails_with(sde_corrector_step(c, ms, n, t, x, xm, B, D, 0), SDE_E_UNSUPPORTED,
                         "sub-VP");
    tu_assert_fails_with(sde_corrector_alpha(c, t, xm, B), SDE_E_UNSUPPORTED, "sub-VP");
    sde_corrector_free(c);
    sde_model_free(ms);
    sde_noise_free(n);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(badvp);
    sde_process_free(vp);
    sde_process_free(sub);
}
END_TEST

/* A host network (exact mixture score) that fails, or returns a NaN, at call `fail_at`
 * (1-based), and may call back into a sampler. */
struct host {
    const sde_gmm *g;
    const sde_process *p;
    int calls, fail_at, fail_rc, nan;
    sde_sampler *reenter;
    int reenter_rc;
};

static int host_net(const double *t, const double *x, double *out, size_t batch, size_t dim,
                    void *u)
{
    struct host *h = u;
    h->calls++;
    if (h->reenter != NULL) {
        h->reenter_rc = sde_sampler_set_int(h->reenter, SDE_OPT_PC_SNR, 1);
        h->reenter = NULL;
    }
    if (h->calls == h->fail_at && !h->nan) {
        sde_set_error_message("host network exploded");
        return h->fail_rc;
    }
    if (sde_gmm_eval(h->g, h->p, t, x, out, NULL, batch, dim) != SDE_OK)
        return -1;
    if (h->calls == h->fail_at && h->nan)
        out[dim + 1] = NAN;
    return 0;
}

static int stop_at;
static size_t seen_steps;
static double seen_t[64];
static int progress_fn(size_t step, double t, void *u)
{
    (void)u;
    seen_t[step] = t;
    seen_steps = step + 1;
    return (int)step == stop_at;
}

START_TEST(failures_leave_arrays_and_do_not_leak)
{
    enum { B = 3, N = 8 };
    sde_process *p = new_process(SDE_PROCESS_VE, N);
    sde_gmm *g = new_gmm();
    struct host h = {g, p, 0, 0, 0, 0, NULL, 0};
    sde_model *m = NULL;
    sde_noise *n = NULL;
    ck_assert_int_eq(sde_model_new(&m, p, D, host_net, &h, SDE_OUTPUT_SCORE,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    ck_assert_int_eq(sde_noise_new_philox(&n, 6), SDE_OK);
    sde_sampler *s = new_sampler(p, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, D, B);
    double out[B * D], good[B * D];
    ck_assert_int_eq(sde_sampler_run(s, m, n, NULL, good, B, D, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(n, 5), SDE_OK);
    long live = sde__alloc_live();

    for (int threads = 1; threads <= 2; threads++) {
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, threads), SDE_OK);
        live = sde__alloc_live();
        /* call 7 is the corrector at step 3 (two calls per step) */
        for (int i = 0; i < B * D; i++)
            out[i] = -7.0;
        h.calls = 0;
        h.fail_at = 7;
        h.fail_rc = -3;
        h.nan = 0;
        tu_assert_fails_with(sde_sampler_run(s, m, n, NULL, out, B, D, 0), SDE_E_CALLBACK,
                             "host network exploded");
        ck_assert(strstr(sde_last_error(), "step 3 of 8") != NULL);
        ck_assert(strstr(sde_last_error(), "Langevin corrector") != NULL);
        for (int i = 0; i < B * D; i++)
            ck_assert_double_eq(out[i], -7.0);
        ck_assert_uint_eq(sde_noise_counter(n), 5); /* restored */
        uint64_t calls = 0;
        ck_assert_int_eq(sde_sampler_get_model_calls(s, &calls), SDE_OK);
        ck_assert_uint_eq(calls, 6);
        ck_assert_int_eq(sde__alloc_live(), live);
        /* a positive (recoverable) status is fatal for a fixed-step sampler too */
        h.calls = 0;
        h.fail_at = 2;
        h.fail_rc = 1;
        tu_assert_fails_with(sde_sampler_run(s, m, n, NULL, out, B, D, 0), SDE_E_CALLBACK,
                             "reverse-diffusion predictor");
        /* NaN in the network output at call 10: the predictor of step 4 */
        h.calls = 0;
        h.fail_at = 10;
        h.nan = 1;
        tu_assert_fails_with(sde_sampler_run(s, m, n, NULL, out, B, D, 0), SDE_E_NUMERIC,
                             "step 4 of 8");
        ck_assert(strstr(sde_last_error(), "reverse-diffusion predictor") != NULL);
        for (int i = 0; i < B * D; i++)
            ck_assert_double_eq(out[i], -7.0);
        ck_assert_int_eq(sde__alloc_live(), live);
        /* NaN at call 9: the corrector of step 4, whose conversion runs fused with the update
         * of the sampler's own state; the element is still named, nothing is published */
        h.calls = 0;
        h.fail_at = 9;
        tu_assert_fails_with(sde_sampler_run(s, m, n, NULL, out, B, D, 0), SDE_E_NUMERIC,
                             "sample 1, element 1");
        ck_assert(strstr(sde_last_error(), "step 4 of 8") != NULL);
        ck_assert(strstr(sde_last_error(), "Langevin corrector") != NULL);
        for (int i = 0; i < B * D; i++)
            ck_assert_double_eq(out[i], -7.0);
        ck_assert_int_eq(sde_sampler_get_model_calls(s, &calls), SDE_OK);
        ck_assert_uint_eq(calls, 8);
        h.fail_at = 0;
        h.nan = 0;

        /* cancelling through the progress callback */
        ck_assert_int_eq(sde_sampler_set_progress(s, progress_fn, NULL), SDE_OK);
        stop_at = 5;
        int rc = sde_sampler_run(s, m, n, NULL, out, B, D, 0);
        ck_assert_int_eq(rc, SDE_ABORTED);
        ck_assert_uint_eq(seen_steps, 6);
        for (int i = 0; i < B * D; i++)
            ck_assert_double_eq(out[i], -7.0);
        ck_assert_uint_eq(sde_noise_counter(n), 5);
        stop_at = -1;
        ck_assert_int_eq(sde_noise_set_counter(n, 0), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, m, n, NULL, out, B, D, 0), SDE_OK);
        ck_assert_uint_eq(seen_steps, N);
        double grid[N + 1];
        ck_assert_int_eq(sde_sampler_get_time_grid(s, grid, N + 1), SDE_OK);
        for (int k = 0; k < N; k++)
            ck_assert_double_eq(seen_t[k], grid[k]);
        ck_assert(memcmp(out, good, sizeof out) == 0); /* the same as before all this */
        ck_assert_int_eq(sde_sampler_set_progress(s, NULL, NULL), SDE_OK);
        ck_assert_int_eq(sde_noise_set_counter(n, 5), SDE_OK);
        ck_assert_int_eq(sde__alloc_live(), live);
    }

    /* re-entrancy: the model callback calls back into the sampler */
    h.reenter = s;
    ck_assert_int_eq(sde_noise_set_counter(n, 0), SDE_OK);
    ck_assert_int_eq(sde_sampler_run(s, m, n, NULL, out, B, D, 0), SDE_OK);
    ck_assert_int_eq(h.reenter_rc, SDE_E_STATE);

    /* the stand-alone corrector with 3 inner iterations, failing in the second */
    sde_corrector *c = NULL;
    ck_assert_int_eq(sde_corrector_new(&c, p, SDE_CORRECTOR_LANGEVIN, D, B), SDE_OK);
    ck_assert_int_eq(sde_corrector_set_int(c, SDE_OPT_PC_CORRECTOR_STEPS, 3), SDE_OK);
    double t[B] = {0.3, 0.3, 0.3}, x[B * D], xm[B * D], x0[B * D];
    for (int i = 0; i < B * D; i++)
        x[i] = x0[i] = xm[i] = 0.25 * i - 0.5;
    h.calls = 0;
    h.fail_at = 2;
    h.fail_rc = -1;
    ck_assert_int_eq(sde_noise_set_counter(n, 0), SDE_OK);
    tu_assert_fails_with(sde_corrector_step(c, m, n, t, x, xm, B, D, 0), SDE_E_CALLBACK,
                         "Langevin corrector");
    ck_assert(memcmp(x, x0, sizeof x) == 0 && memcmp(xm, x0, sizeof xm) == 0);
    ck_assert_uint_eq(sde_noise_counter(n), 0);
    h.fail_at = 0;
    ck_assert_int_eq(sde_corrector_step(c, m, n, t, x, xm, B, D, 0), SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(n), 3);
    sde_corrector_free(c);

    sde_sampler_free(s);
    sde_noise_free(n);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
}
END_TEST

/* No allocation inside a run (after the first, which sizes the model's scratch); the
 * workspace is what the header states. */
START_TEST(no_allocation_in_the_loop)
{
    enum { B = 16, N = 30 };
    struct fixture f = fixture_new(SDE_PROCESS_VP, N, 2);
    sde_sampler *s = new_sampler(f.p, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN, D, B);
    size_t state = B * D * sizeof(double);
    ck_assert_uint_ge(sde_sampler_workspace_bytes(s), 3 * state);
    ck_assert_uint_lt(sde_sampler_workspace_bytes(s), 3 * state + 64 * 1024);
    double out[B * D];
    for (int threads = 1; threads <= 2; threads++) {
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, threads), SDE_OK);
        ck_assert_int_eq(sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0), SDE_OK);
        long live = sde__alloc_live();
        sde__alloc_fail_after(1);
        int rc = sde_sampler_run(s, f.m, f.n, NULL, out, B, D, 0);
        sde__alloc_fail_after(0);
        ck_assert_msg(rc == SDE_OK, "a run allocated: %s", sde_last_error());
        ck_assert_int_eq(sde__alloc_live(), live);
    }
    sde_predictor *p = NULL, *q = NULL;
    sde_corrector *c = NULL;
    ck_assert_int_eq(sde_predictor_new(&p, f.p, SDE_PREDICTOR_NONE, D, B), SDE_OK);
    ck_assert_int_eq(sde_predictor_new(&q, f.p, SDE_PREDICTOR_EULER_MARUYAMA, D, B), SDE_OK);
    ck_assert_uint_ge(sde_predictor_workspace_bytes(q), sde_predictor_workspace_bytes(p) + 2 * state);
    sde_predictor_free(q);
    sde_predictor_free(p);
    ck_assert_int_eq(sde_corrector_new(&c, f.p, SDE_CORRECTOR_LANGEVIN, D, B), SDE_OK);
    size_t before = sde_corrector_workspace_bytes(c);
    ck_assert_uint_ge(before, 2 * state);
    ck_assert_int_eq(sde_corrector_set_int(c, SDE_OPT_PC_CORRECTOR_STEPS, 2), SDE_OK);
    ck_assert_uint_eq(sde_corrector_workspace_bytes(c), before + state);
    sde_corrector_free(c);
    sde_sampler_free(s);
    fixture_free(&f);
}
END_TEST

/* Allocation failure at every point of creation (and of the setters that allocate):
 * SDE_E_NOMEM, a NULL handle, and nothing leaked. */
START_TEST(allocation_failures)
{
    enum { B = 4 };
    sde_process *custom = NULL, *vp = new_process(SDE_PROCESS_VP, 30);
    ck_assert_int_eq(sde_process_new_custom(&custom, 1.0, 30, 1.0, ve_drift, ve_diffusion,
                                            ve_marginal, NULL), SDE_OK);
    long live = sde__alloc_live();
    for (int what = 0; what < 5; what++) {
        int succeeded = 0;
        for (long k = 1; k < 40 && !succeeded; k++) {
            sde_predictor *p = (sde_predictor *)&live;
            sde_corrector *c = (sde_corrector *)&live;
            sde_sampler *s = (sde_sampler *)&live;
            void *h;
            int rc;
            sde__alloc_fail_after(k);
            switch (what) {
            case 0: rc = sde_predictor_new(&p, vp, 2, D, B); h = p; break;
            case 1: rc = sde_predictor_new(&p, custom, 1, D, B); h = p; break;
            case 2: rc = sde_corrector_new(&c, vp, 1, D, B); h = c; break;
            case 3: rc = sde_sampler_new(&s, vp, 2, 1, D, B); h = s; break;
            default: rc = sde_sampler_new(&s, custom, 1, 2, D, B); h = s; break;
            }
            sde__alloc_fail_after(0);
            if (rc == SDE_OK) {
                succeeded = 1;
                sde_predictor_free(what <= 1 ? p : NULL);
                sde_corrector_free(what == 2 ? c : NULL);
                sde_sampler_free(what >= 3 ? s : NULL);
            } else {
                ck_assert_msg(rc == SDE_E_NOMEM, "what %d k %ld: %s", what, k, sde_last_error());
                ck_assert_ptr_null(h);
            }
            ck_assert_int_eq(sde__alloc_live(), live);
        }
        ck_assert_msg(succeeded, "creation %d never succeeded", what);
    }
    /* the setters that allocate: unchanged on failure, nothing leaked */
    sde_sampler *s = new_sampler(vp, 2, 1, D, B);
    live = sde__alloc_live();
    double grid[3] = {1, 0.5, 0}, buf[B * D];
    size_t steps[1] = {0};
    int succeeded = 0;
    for (long k = 1; k < 40 && !succeeded; k++) {
        sde__alloc_fail_after(k);
        int rc = sde_sampler_set_int(s, SDE_OPT_PC_THREADS, 3);
        if (rc == SDE_OK)
            rc = sde_sampler_set_time_grid(s, grid, 2);
        if (rc == SDE_OK)
            rc = sde_sampler_set_trajectory(s, steps, 1, buf, B * D);
        sde__alloc_fail_after(0);
        succeeded = rc == SDE_OK;
        if (!succeeded)
            ck_assert_msg(rc == SDE_E_NOMEM, "k %ld: %s", k, sde_last_error());
        ck_assert_int_eq(sde_sampler_set_int(s, SDE_OPT_PC_THREADS, 1), SDE_OK);
        ck_assert_int_eq(sde_sampler_set_time_grid(s, NULL, 0), SDE_OK);
        ck_assert_int_eq(sde_sampler_set_trajectory(s, NULL, 0, NULL, 0), SDE_OK);
        ck_assert_int_eq(sde__alloc_live(), live);
    }
    ck_assert(succeeded);
    sde_sampler_free(s);
    sde_process_free(custom);
    sde_process_free(vp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("recovery");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, recover_ve_reverse_diffusion_langevin);
    tcase_add_test(tc, recover_vp_euler_maruyama);
    tcase_add_test(tc, recover_vp_ancestral);
    suite_add_tcase(s, tc);
    tc = tcase_create("determinism");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, batch_shard_thread_invariance, 0,
                        (int)(sizeof det_configs / sizeof det_configs[0]));
    tcase_add_test(tc, long_rows_invariance);
    tcase_add_test(tc, long_rows_fused_conversion);
    tcase_add_test(tc, callback_noise_matches_philox);
    suite_add_tcase(s, tc);
    tc = tcase_create("steppers");
    tcase_add_loop_test(tc, stepper_loop_matches_sampler, 0, 8);
    tcase_add_test(tc, default_grid_and_trajectory);
    tcase_add_test(tc, reference_mode_differences);
    tcase_add_test(tc, probability_flow_is_deterministic);
    tcase_add_test(tc, corrector_alpha_and_step);
    tcase_add_test(tc, custom_process);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, argument_validation);
    tcase_add_test(tc, unsupported_combinations);
    tcase_add_test(tc, failures_leave_arrays_and_do_not_leak);
    tcase_add_test(tc, no_allocation_in_the_loop);
    tcase_add_test(tc, allocation_failures);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
