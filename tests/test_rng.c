/* Suite "rng": the Philox4x32-10 bijection, the documented stream layout, the statistics of
 * every kind, determinism across batch shapes, shards and threads, the callback source, argument
 * checking and allocation failures. White-box: links the internal library for sde__philox_fill,
 * sde__normal_pair and the allocation hooks. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "noise_private.h"
#include "sde_private.h"
#include "testutil.h"

#define PI 3.14159265358979323846
/* The standard normal z with P(Z > z) = 1e-6: every chi-square test below uses the critical
 * value at false-alarm rate 1e-6 (see chi2_critical). */
#define Z_ALPHA 4.753424

enum { NSTAT = 1 << 20 }; /* draws per statistical test */

/* ---- helpers ------------------------------------------------------------------------- */

/* floor(W n / 2^64), written independently of the library (32-bit limbs). */
static uint64_t ref_mul_hi(uint64_t W, uint64_t n)
{
    uint64_t wl = W & 0xffffffffu, wh = W >> 32, nl = n & 0xffffffffu, nh = n >> 32;
    uint64_t ll = wl * nl, lh = wl * nh, hl = wh * nl, hh = wh * nh;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

/* The block the layout assigns to (seed, draw, sample, j), via the public bijection. */
static void ref_block(uint64_t seed, uint64_t draw, uint64_t sample, uint32_t j, uint32_t w[4])
{
    const uint32_t ctr[4] = {j, (uint32_t)draw, (uint32_t)sample, (uint32_t)(sample >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    ck_assert_int_eq(sde_philox4x32_10(ctr, key, w), SDE_OK);
}

static uint64_t word_A(const uint32_t w[4]) { return ((uint64_t)w[1] << 32) | w[0]; }
static uint64_t word_B(const uint32_t w[4]) { return ((uint64_t)w[3] << 32) | w[2]; }

/* Wilson-Hilferty approximation of the chi-square quantile with `df` degrees of freedom at
 * upper tail probability 1e-6: 181.1 for df = 99 (accurate to a fraction of a percent there),
 * 39.7 for df = 6 (exact: 38.3, i.e. a slightly smaller alpha). */
static double chi2_critical(double df)
{
    double h = 2.0 / (9.0 * df);
    double c = 1.0 - h + Z_ALPHA * sqrt(h);
    return df * c * c * c;
}

static double chi2_stat(const long *counts, int k, double expected_each)
{
    double x2 = 0.0;
    for (int i = 0; i < k; i++) {
        double d = (double)counts[i] - expected_each;
        x2 += d * d / expected_each;
    }
    return x2;
}

static double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double *draw_new(int kind, double param, uint64_t seed, uint64_t counter, size_t batch,
                        size_t dim, size_t offset)
{
    double *out = malloc(batch * dim * sizeof *out);
    ck_assert_ptr_nonnull(out);
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&h, seed), SDE_OK);
    ck_assert_int_eq(sde_noise_set_counter(h, counter), SDE_OK);
    ck_assert_int_eq(sde_noise_draw(h, kind, param, out, batch, dim, offset), SDE_OK);
    sde_noise_free(h);
    return out;
}

static size_t count_equal(const double *a, const double *b, size_t n)
{
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += a[i] == b[i];
    return same;
}

/* ---- Philox known answers ----------------------------------------------------------- */

/* Random123's kat_vectors, "philox4x32 10" lines: counter, key, expected output. */
START_TEST(kat_vectors)
{
    static const struct {
        uint32_t ctr[4], key[2], want[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
        uint32_t out[4];
        ck_assert_int_eq(sde_philox4x32_10(kat[t].ctr, kat[t].key, out), SDE_OK);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(out[k] == kat[t].want[k], "vector %zu word %d: %08x, want %08x", t, k,
                          out[k], kat[t].want[k]);
    }
}
END_TEST

START_TEST(kat_in_place)
{
    uint32_t buf[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    const uint32_t key[2] = {0xa4093822, 0x299f31d0};
    ck_assert_int_eq(sde_philox4x32_10(buf, key, buf), SDE_OK);
    ck_assert_uint_eq(buf[0], 0xd16cfe09);
    ck_assert_uint_eq(buf[3], 0x24126ea1);
}
END_TEST

/* The chunk kernel must equal the one-block function lane by lane: the hand-written AVX-512
 * kernel (where the CPU has it) and the portable loop (forced). */
START_TEST(chunk_matches_single_block)
{
    sde__philox_ctr ctr;
    sde__philox_out out;
    const uint32_t key[2] = {0xdeadbeef, 0x01234567};
    ctr.c1 = 77;
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        ctr.c0[i] = (uint32_t)i * 2654435761u;
        ctr.c2[i] = 0xffffffffu - (uint32_t)i;
        ctr.c3[i] = (uint32_t)i << 20;
    }
    for (int generic = 0; generic < 2; generic++) {
        sde__philox_force_generic = generic;
        memset(&out, 0, sizeof out);
        sde__philox_chunk(&ctr, key, &out);
        sde__philox_force_generic = 0;
        for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
            const uint32_t c[4] = {ctr.c0[i], ctr.c1, ctr.c2[i], ctr.c3[i]};
            uint32_t w[4];
            ck_assert_int_eq(sde_philox4x32_10(c, key, w), SDE_OK);
            for (int k = 0; k < 4; k++)
                ck_assert_msg(out.w[k][i] == w[k], "%s kernel: lane %d word %d",
                              generic ? "portable" : "dispatched", i, k);
        }
    }
}
END_TEST

/* The row kernel (counters made inside it for consecutive blocks of one row) equals the
 * one-block function too, on both paths, including block numbers that wrap past 2^32 in the
 * lanes beyond a row's end and a sample index above 2^32. */
START_TEST(chunk_row_matches_single_block)
{
    const uint32_t key[2] = {0x9e3779b9, 0x7f4a7c15};
    const uint32_t starts[] = {0, 1000, 0xffffffffu - 40};
    const uint64_t sample = UINT64_C(0x0000000512345678);
    sde__philox_out out;
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++)
        for (int generic = 0; generic < 2; generic++) {
            sde__philox_force_generic = generic;
            memset(&out, 0, sizeof out);
            sde__philox_chunk_row(starts[s], 12, sample, key, &out);
            sde__philox_force_generic = 0;
            for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
                const uint32_t c[4] = {starts[s] + (uint32_t)i, 12, (uint32_t)sample,
                                       (uint32_t)(sample >> 32)};
                uint32_t w[4];
                ck_assert_int_eq(sde_philox4x32_10(c, key, w), SDE_OK);
                for (int k = 0; k < 4; k++)
                    ck_assert_msg(out.w[k][i] == w[k], "%s kernel: start %u lane %d word %d",
                                  generic ? "portable" : "dispatched", starts[s], i, k);
            }
        }
}
END_TEST

/* ---- the documented layout, recomputed by hand ------------------------------------- */

static const uint64_t L_SEED = UINT64_C(0x0123456789abcdef);
static const uint64_t L_DRAW = 5;
/* Above 2^32, so that counter word 3 (sample >> 32) is exercised. */
static const size_t L_OFFSET = (size_t)((UINT64_C(1) << 32) + 3);
enum { L_BATCH = 3, L_DIM = 5 };

START_TEST(layout_uniform)
{
    double *out = draw_new(SDE_NOISE_UNIFORM, 0.0, L_SEED, L_DRAW, L_BATCH, L_DIM, L_OFFSET);
    for (size_t b = 0; b < L_BATCH; b++)
        for (size_t e = 0; e < L_DIM; e++) {
            uint32_t w[4];
            ref_block(L_SEED, L_DRAW, L_OFFSET + b, (uint32_t)(e / 2), w);
            uint64_t W = e % 2 == 0 ? word_A(w) : word_B(w);
            double want = (double)(W >> 11) * 0x1p-53;
            ck_assert_msg(out[b * L_DIM + e] == want, "row %zu elem %zu: %.17g, want %.17g", b, e,
                          out[b * L_DIM + e], want);
        }
    free(out);
}
END_TEST

START_TEST(layout_rademacher)
{
    enum { DIM = 7 }; /* two blocks per row, the second only partly used */
    double *out = draw_new(SDE_NOISE_RADEMACHER, 0.0, L_SEED, L_DRAW, L_BATCH, DIM, L_OFFSET);
    for (size_t b = 0; b < L_BATCH; b++)
        for (size_t e = 0; e < DIM; e++) {
            uint32_t w[4];
            ref_block(L_SEED, L_DRAW, L_OFFSET + b, (uint32_t)(e / 4), w);
            double want = (w[e % 4] & 1u) ? 1.0 : -1.0;
            ck_assert_msg(out[b * DIM + e] == want, "row %zu elem %zu", b, e);
        }
    free(out);
}
END_TEST

START_TEST(layout_integer)
{
    const double bounds[] = {1.0, 7.0, 1000003.0, 0x1p53};
    for (size_t t = 0; t < sizeof bounds / sizeof bounds[0]; t++) {
        double *out = draw_new(SDE_NOISE_INTEGER, bounds[t], L_SEED, L_DRAW, L_BATCH, L_DIM,
                               L_OFFSET);
        for (size_t b = 0; b < L_BATCH; b++)
            for (size_t e = 0; e < L_DIM; e++) {
                uint32_t w[4];
                ref_block(L_SEED, L_DRAW, L_OFFSET + b, (uint32_t)(e / 2), w);
                uint64_t W = e % 2 == 0 ? word_A(w) : word_B(w);
                double want = (double)ref_mul_hi(W, (uint64_t)bounds[t]);
                ck_assert_msg(out[b * L_DIM + e] == want, "n=%g row %zu elem %zu: %.17g, want %.17g",
                              bounds[t], b, e, out[b * L_DIM + e], want);
            }
        free(out);
    }
}
END_TEST

/* Normals: bit-exact against the scalar reference transform, and within rounding of the
 * formula evaluated with libm. libm's cos(2 pi u2) is off by up to ~7e-16 absolute (the product
 * 2 pi u2 is rounded), the library's own kernels by about 1 ulp; 4e-15 (1 + r) bounds both
 * with margin while still catching any real layout error (a wrong word or element is off by
 * O(1)). */
START_TEST(layout_normal)
{
    double *out = draw_new(SDE_NOISE_NORMAL, 0.0, L_SEED, L_DRAW, L_BATCH, L_DIM, L_OFFSET);
    for (size_t b = 0; b < L_BATCH; b++)
        for (size_t e = 0; e < L_DIM; e++) {
            uint32_t w[4];
            ref_block(L_SEED, L_DRAW, L_OFFSET + b, (uint32_t)(e / 2), w);
            double u1 = ((double)(word_A(w) >> 11) + 0.5) * 0x1p-53;
            double u2 = (double)(word_B(w) >> 11) * 0x1p-53;
            double r = sqrt(-2.0 * log(u1));
            double want = e % 2 == 0 ? r * cos(2.0 * PI * u2) : r * sin(2.0 * PI * u2);
            double got = out[b * L_DIM + e];
            ck_assert_msg(fabs(got - want) <= 4e-15 * (1.0 + r),
                          "row %zu elem %zu: %.17g, libm formula gives %.17g", b, e, got, want);
            double pair[2];
            sde__normal_pair(w, pair);
            ck_assert_msg(got == pair[e % 2], "row %zu elem %zu: %.17g, scalar reference %.17g",
                          b, e, got, pair[e % 2]);
        }
    free(out);
}
END_TEST

/* Many blocks, through every counter path (one-block rows, rows shorter and longer than a
 * chunk): each normal equals the scalar reference bit for bit, so the vectorised clone that
 * runs here gives the same numbers as the portable code on any machine. */
START_TEST(layout_normal_vector_path)
{
    const size_t dims[] = {1, 2, 3, 17, 32, 33, 64, 129, 300};
    const size_t batch = 37, offset = 11;
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        size_t dim = dims[t];
        double *out = draw_new(SDE_NOISE_NORMAL, 0.0, 99, 3, batch, dim, offset);
        for (size_t b = 0; b < batch; b++)
            for (size_t e = 0; e < dim; e++) {
                uint32_t w[4];
                double pair[2];
                ref_block(99, 3, offset + b, (uint32_t)(e / 2), w);
                sde__normal_pair(w, pair);
                ck_assert_msg(out[b * dim + e] == pair[e % 2], "dim %zu row %zu elem %zu", dim,
                              b, e);
            }
        free(out);
    }
}
END_TEST

/* A part of a long row (how threads share one row) equals that part of the whole-row fill. */
START_TEST(normals_part_matches_fill)
{
    enum { DIM = 9001 };
    const size_t cuts[][2] = {{0, DIM}, {0, 1}, {0, 4096}, {4096, 8192}, {8192, DIM},
                              {2, 3}, {130, 131}, {128, 257}, {6, 9000}};
    double *whole = draw_new(SDE_NOISE_NORMAL, 0.0, 31, 4, 1, DIM, 12345);
    double *part = malloc(DIM * sizeof *part);
    ck_assert_ptr_nonnull(part);
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        size_t e0 = cuts[c][0], e1 = cuts[c][1];
        for (size_t i = 0; i < DIM; i++)
            part[i] = 1e300;
        sde__philox_normals_part(31, 4, part, 12345, e0, e1);
        ck_assert_msg(memcmp(part, whole + e0, (e1 - e0) * sizeof *part) == 0,
                      "elements [%zu, %zu)", e0, e1);
        ck_assert_msg(e1 - e0 == DIM || part[e1 - e0] == 1e300, "wrote past [%zu, %zu)", e0,
                      e1);
    }
    free(part);
    free(whole);
}
END_TEST

/* Whether long double arithmetic really carries 64 or more bits here (not under valgrind,
 * which computes long double in double precision). */
static int long_double_is_wide(void)
{
    volatile long double one = 1.0L, tiny = 0x1p-60L;
    return LDBL_MANT_DIG >= 64 && one + tiny != one;
}

/* The library's own log and sin/cos kernels, through the scalar reference (which the SIMD path
 * matches bit for bit, see above), against a long double evaluation of the formula, over 2^20
 * blocks with u1 spread over all binades by shifting word 1. Bounds: the radius (u2 = 0, so
 * z0 = r) within 2 eps relative (observed 0.8 eps); each normal within 3 eps r (observed
 * 1.4 eps r). Where long double is no wider than double, libm's own error dominates and the
 * bound is the 4e-15 (1 + r) of layout_normal. */
START_TEST(normal_accuracy)
{
    const uint32_t key[2] = {7, 9};
    const int wide = long_double_is_wide();
    const long double two_pi = 6.283185307179586476925286766559005768L;
    double worst_z = 0.0, worst_r = 0.0;
    for (uint32_t i = 0; i < (1u << 20); i++) {
        const uint32_t ctr[4] = {i, 1, 2, 3};
        uint32_t w[4];
        double z[2];
        ck_assert_int_eq(sde_philox4x32_10(ctr, key, w), SDE_OK);
        w[1] >>= i % 33 == 32 ? 0 : i % 33; /* u1 from 2^-54 to 1 */
        sde__normal_pair(w, z);
        double u1 = ((double)(word_A(w) >> 11) + 0.5) * 0x1p-53;
        double u2 = (double)(word_B(w) >> 11) * 0x1p-53;
        if (!wide) {
            double r = sqrt(-2.0 * log(u1));
            worst_z = fmax(worst_z, fabs(z[0] - r * cos(2.0 * PI * u2)) / (1.0 + r));
            worst_z = fmax(worst_z, fabs(z[1] - r * sin(2.0 * PI * u2)) / (1.0 + r));
            continue;
        }
        long double r = sqrtl(-2.0L * logl((long double)u1));
        if (r == 0.0L)
            continue; /* u1 rounded to 1: z = 0 exactly */
        worst_z = fmax(worst_z, (double)(fabsl(z[0] - r * cosl(two_pi * u2)) / r));
        worst_z = fmax(worst_z, (double)(fabsl(z[1] - r * sinl(two_pi * u2)) / r));
        const uint32_t radial[4] = {w[0], w[1], 0, 0};
        sde__normal_pair(radial, z);
        worst_r = fmax(worst_r, (double)(fabsl(z[0] - r) / r));
    }
    if (wide) {
        ck_assert_msg(worst_r <= 2.0 * DBL_EPSILON, "radius: worst relative error %g", worst_r);
        ck_assert_msg(worst_z <= 3.0 * DBL_EPSILON, "normals: worst error %g r", worst_z);
    } else {
        ck_assert_msg(worst_z <= 4e-15, "normals: worst error %g (1 + r)", worst_z);
    }
}
END_TEST

/* The transform at its extremes: the smallest u1 (A >> 11 = 0) gives the largest radius, and
 * the quarter turns of u2 give exact axes. */
START_TEST(normal_pair_extremes)
{
    double z[2];
    const uint32_t smallest[4] = {0, 0, 0, 0}; /* u1 = 2^-54, u2 = 0 */
    sde__normal_pair(smallest, z);
    double rmax = sqrt(-2.0 * log(0x1p-54));
    ck_assert_double_eq_tol(z[0], rmax, 1e-14 * rmax);
    ck_assert_msg(z[1] == 0.0, "sin(0) gave %.17g", z[1]);
    const uint32_t quarter[4] = {0, 0x80000000u, 0, 0x40000000u}; /* u1 ~ 1/2, u2 = 1/4 */
    sde__normal_pair(quarter, z);
    double r = sqrt(-2.0 * log(((double)(UINT64_C(1) << 52) + 0.5) * 0x1p-53));
    ck_assert_msg(fabs(z[0]) <= 1e-16 * r, "cos(pi/2) gave %.17g", z[0]);
    ck_assert_double_eq_tol(z[1], r, 4e-16 * r);
    const uint32_t half[4] = {0, 0x80000000u, 0, 0x80000000u}; /* u2 = 1/2 */
    sde__normal_pair(half, z);
    ck_assert_double_eq_tol(z[0], -r, 4e-16 * r);
    const uint32_t largest[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    sde__normal_pair(largest, z); /* (2^53 - 1/2) 2^-53 rounds to u1 = 1: radius 0 */
    ck_assert_msg(z[0] == 0.0 && z[1] == 0.0, "u1 = 1 gave (%g, %g)", z[0], z[1]);
}
END_TEST

/* ---- statistics ---------------------------------------------------------------------- */

/* n = 2^20 standard normals. Bounds are 5 standard errors: se(mean) = 1/sqrt(n),
 * se(var) = sqrt(2/n), se(skewness) = sqrt(6/n), se(excess kurtosis) = sqrt(24/n). */
START_TEST(normal_moments)
{
    const size_t n = NSTAT, dim = 16;
    double *x = draw_new(SDE_NOISE_NORMAL, 0.0, 2024, 0, n / dim, dim, 0);
    double s1 = 0.0;
    for (size_t i = 0; i < n; i++)
        s1 += x[i];
    double mean = s1 / (double)n;
    double m2 = 0.0, m3 = 0.0, m4 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean, d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    m2 /= (double)n;
    m3 /= (double)n;
    m4 /= (double)n;
    double skew = m3 / pow(m2, 1.5), kurt = m4 / (m2 * m2) - 3.0;
    double rn = sqrt((double)n);
    ck_assert_msg(fabs(mean) < 5.0 / rn, "mean %g", mean);
    ck_assert_msg(fabs(m2 - 1.0) < 5.0 * sqrt(2.0) / rn, "variance %g", m2);
    ck_assert_msg(fabs(skew) < 5.0 * sqrt(6.0) / rn, "skewness %g", skew);
    ck_assert_msg(fabs(kurt) < 5.0 * sqrt(24.0) / rn, "excess kurtosis %g", kurt);
    free(x);
}
END_TEST

/* Chi-square on 100 equiprobable bins (bin = floor(100 Phi(z))): 99 degrees of freedom,
 * critical value at alpha = 1e-6 (about 181). Also Kolmogorov-Smirnov: sqrt(n) D against the
 * asymptotic critical value sqrt(-ln(alpha/2)/2) = 2.69 at alpha = 1e-6. */
START_TEST(normal_goodness_of_fit)
{
    enum { K = 100 };
    const size_t n = NSTAT, dim = 7; /* odd dim: rows drop the last block's second value */
    const size_t batch = n / dim, m = batch * dim;
    double *x = draw_new(SDE_NOISE_NORMAL, 0.0, 77, 12, batch, dim, 5);
    long counts[K] = {0};
    for (size_t i = 0; i < m; i++) {
        int bin = (int)(normal_cdf(x[i]) * K);
        counts[bin < K ? bin : K - 1]++;
    }
    double x2 = chi2_stat(counts, K, (double)m / K), crit = chi2_critical(K - 1);
    ck_assert_msg(x2 < crit, "chi-square %g >= %g", x2, crit);
    qsort(x, m, sizeof *x, cmp_double);
    double d = 0.0;
    for (size_t i = 0; i < m; i++) {
        double f = normal_cdf(x[i]);
        double lo = f - (double)i / (double)m, hi = (double)(i + 1) / (double)m - f;
        d = fmax(d, fmax(lo, hi));
    }
    double ks = sqrt((double)m) * d, ks_crit = sqrt(-log(1e-6 / 2.0) / 2.0);
    ck_assert_msg(ks < ks_crit, "KS sqrt(n) D = %g >= %g", ks, ks_crit);
    free(x);
}
END_TEST

/* Uniforms: in [0, 1) and multiples of 2^-53; mean within 5 se = 5 sqrt(1/(12 n)), variance
 * within 5 se = 5 sqrt(1/(180 n)) (Var[(U - 1/2)^2] = 1/80 - 1/144 = 1/180); chi-square on 100
 * bins below the alpha = 1e-6 critical value. */
START_TEST(uniform_statistics)
{
    enum { K = 100 };
    const size_t n = NSTAT, dim = 9;
    const size_t batch = n / dim, m = batch * dim;
    double *u = draw_new(SDE_NOISE_UNIFORM, 0.0, 31337, 0, batch, dim, 0);
    long counts[K] = {0};
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < m; i++) {
        ck_assert_msg(u[i] >= 0.0 && u[i] < 1.0, "u[%zu] = %.17g", i, u[i]);
        double scaled = u[i] * 0x1p53;
        ck_assert_msg(scaled == floor(scaled), "u[%zu] = %.17g is not k 2^-53", i, u[i]);
        s += u[i];
        ss += (u[i] - 0.5) * (u[i] - 0.5);
        counts[(int)(u[i] * K)]++;
    }
    double mean = s / (double)m, var = ss / (double)m;
    ck_assert_msg(fabs(mean - 0.5) < 5.0 * sqrt(1.0 / (12.0 * (double)m)), "mean %g", mean);
    ck_assert_msg(fabs(var - 1.0 / 12.0) < 5.0 * sqrt(1.0 / (180.0 * (double)m)), "var %g", var);
    double x2 = chi2_stat(counts, K, (double)m / K), crit = chi2_critical(K - 1);
    ck_assert_msg(x2 < crit, "chi-square %g >= %g", x2, crit);
    free(u);
}
END_TEST

/* Rademacher: only +-1; the mean of each of the four word positions (e mod 4) within
 * 5 se = 5 / sqrt(n / 4). */
START_TEST(rademacher_statistics)
{
    const size_t n = NSTAT, dim = 8;
    double *v = draw_new(SDE_NOISE_RADEMACHER, 0.0, 4, 1, n / dim, dim, 0);
    double sum[4] = {0.0, 0.0, 0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(v[i] == 1.0 || v[i] == -1.0, "v[%zu] = %g", i, v[i]);
        sum[(i % dim) % 4] += v[i];
    }
    for (int k = 0; k < 4; k++) {
        double mean = sum[k] / (double)(n / 4);
        ck_assert_msg(fabs(mean) < 5.0 / sqrt((double)(n / 4)), "word %d mean %g", k, mean);
    }
    free(v);
}
END_TEST

/* Integers in [0, 7): integral, in range, chi-square with 6 degrees of freedom below the
 * critical value 39.7 (Wilson-Hilferty at alpha = 1e-6; the exact 1e-6 point is 38.3, so the
 * test is slightly conservative). Bound 2^53: in range, integral, mean/2^53 within
 * 5 se of 1/2. Bound 1: all zero. */
START_TEST(integer_statistics)
{
    enum { K = 7 };
    const size_t n = NSTAT, dim = 4;
    double *v = draw_new(SDE_NOISE_INTEGER, (double)K, 8, 0, n / dim, dim, 0);
    long counts[K] = {0};
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(v[i] >= 0.0 && v[i] < K && v[i] == floor(v[i]), "v[%zu] = %g", i, v[i]);
        counts[(int)v[i]]++;
    }
    double x2 = chi2_stat(counts, K, (double)n / K), crit = chi2_critical(K - 1);
    ck_assert_msg(x2 < crit, "chi-square %g >= %g", x2, crit);
    free(v);

    const size_t m = 1 << 16;
    v = draw_new(SDE_NOISE_INTEGER, 0x1p53, 8, 0, m, 1, 0);
    double s = 0.0;
    for (size_t i = 0; i < m; i++) {
        ck_assert_msg(v[i] >= 0.0 && v[i] < 0x1p53 && v[i] == floor(v[i]), "v[%zu] = %.17g", i,
                      v[i]);
        s += v[i] * 0x1p-53;
    }
    ck_assert_msg(fabs(s / (double)m - 0.5) < 5.0 * sqrt(1.0 / (12.0 * (double)m)), "mean %g",
                  s / (double)m);
    free(v);

    v = draw_new(SDE_NOISE_INTEGER, 1.0, 8, 0, 100, 3, 0);
    for (size_t i = 0; i < 300; i++)
        ck_assert_msg(v[i] == 0.0, "v[%zu] = %g with bound 1", i, v[i]);
    free(v);
}
END_TEST

/* ---- determinism ------------------------------------------------------------------------ */

static const int ALL_KINDS[] = {SDE_NOISE_NORMAL, SDE_NOISE_UNIFORM, SDE_NOISE_RADEMACHER,
                                SDE_NOISE_INTEGER};
/* Short rows packed whole into chunks (1 .. 32), long rows cut into segments (33 and up). */
static const size_t SHARD_DIMS[] = {1, 2, 3, 5, 17, 33, 64, 130, 257};
enum { S_BATCH = 37, S_COUNTER = 9 };
static const size_t S_OFFSET = 1000;
static const uint64_t S_SEED = 0xfeedULL;

/* Draw rows [row0, row0 + rows) of the reference batch as one shard, from the same counter. */
static void draw_shard(sde_noise *h, int kind, double *out, size_t row0, size_t rows, size_t dim)
{
    ck_assert_int_eq(sde_noise_set_counter(h, S_COUNTER), SDE_OK);
    ck_assert_int_eq(sde_noise_draw(h, kind, 1000.0, out + row0 * dim, rows, dim,
                                    S_OFFSET + row0),
                     SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(h), S_COUNTER + 1);
}

START_TEST(shards_match_whole_batch)
{
    for (size_t ki = 0; ki < 4; ki++)
        for (size_t di = 0; di < sizeof SHARD_DIMS / sizeof SHARD_DIMS[0]; di++) {
            int kind = ALL_KINDS[ki];
            size_t dim = SHARD_DIMS[di], n = S_BATCH * dim;
            double *ref = draw_new(kind, 1000.0, S_SEED, S_COUNTER, S_BATCH, dim, S_OFFSET);
            double *one = malloc(n * sizeof *one), *seven = malloc(n * sizeof *seven);
            ck_assert_ptr_nonnull(one);
            ck_assert_ptr_nonnull(seven);
            sde_noise *h = NULL;
            ck_assert_int_eq(sde_noise_new_philox(&h, S_SEED), SDE_OK);
            for (size_t b = 0; b < S_BATCH; b++)
                draw_shard(h, kind, one, b, 1, dim);
            for (size_t b = 0; b < S_BATCH; b += 7)
                draw_shard(h, kind, seven, b, S_BATCH - b < 7 ? S_BATCH - b : 7, dim);
            ck_assert_msg(memcmp(ref, one, n * sizeof *ref) == 0, "kind %d dim %zu: batch 1",
                          kind, dim);
            ck_assert_msg(memcmp(ref, seven, n * sizeof *ref) == 0, "kind %d dim %zu: batch 7",
                          kind, dim);
            sde_noise_free(h);
            free(ref);
            free(one);
            free(seven);
        }
}
END_TEST

/* Successive draws advance the counter: draw k of a handle equals a fresh handle set to k. */
START_TEST(successive_draws_use_the_counter)
{
    const size_t batch = 5, dim = 6;
    double a[30], b[30];
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&h, 3), SDE_OK);
    for (uint64_t k = 0; k < 4; k++) {
        ck_assert_uint_eq(sde_noise_counter(h), k);
        ck_assert_int_eq(sde_noise_normal(h, a, batch, dim, 0), SDE_OK);
        double *fresh = draw_new(SDE_NOISE_NORMAL, 0.0, 3, k, batch, dim, 0);
        memcpy(b, fresh, sizeof b);
        free(fresh);
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "draw %llu", (unsigned long long)k);
    }
    ck_assert_uint_eq(sde_noise_counter(h), 4);
    sde_noise_free(h);
}
END_TEST

typedef struct fill_job {
    int kind;
    double *out;
    size_t row0, rows, dim;
} fill_job;

static void *fill_thread(void *arg)
{
    const fill_job *j = arg;
    sde__philox_fill(S_SEED, S_COUNTER, j->kind, 1000.0, j->out + j->row0 * j->dim, j->rows,
                     j->dim, S_OFFSET + j->row0);
    return NULL;
}

START_TEST(two_threads_match_one)
{
    const size_t batch = 4001, dim = 3; /* odd split, odd rows */
    for (size_t ki = 0; ki < 4; ki++) {
        int kind = ALL_KINDS[ki];
        double *ref = draw_new(kind, 1000.0, S_SEED, S_COUNTER, batch, dim, S_OFFSET);
        double *par = malloc(batch * dim * sizeof *par);
        ck_assert_ptr_nonnull(par);
        fill_job jobs[2] = {{kind, par, 0, batch / 2, dim},
                            {kind, par, batch / 2, batch - batch / 2, dim}};
        pthread_t th[2];
        for (int t = 0; t < 2; t++)
            ck_assert_int_eq(pthread_create(&th[t], NULL, fill_thread, &jobs[t]), 0);
        for (int t = 0; t < 2; t++)
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_msg(memcmp(ref, par, batch * dim * sizeof *ref) == 0, "kind %d", kind);
        free(ref);
        free(par);
    }
}
END_TEST

/* ---- distinct streams ------------------------------------------------------------------- */

START_TEST(streams_differ)
{
    const size_t batch = 8, dim = 16, n = batch * dim;
    double *base = draw_new(SDE_NOISE_UNIFORM, 0.0, 42, 0, batch, dim, 0);
    /* Any single-field change alters every value (equal doubles would be a 2^-53 event). */
    double *seed_lo = draw_new(SDE_NOISE_UNIFORM, 0.0, 43, 0, batch, dim, 0);
    double *seed_hi = draw_new(SDE_NOISE_UNIFORM, 0.0, 42 + (UINT64_C(1) << 32), 0, batch, dim, 0);
    double *counter = draw_new(SDE_NOISE_UNIFORM, 0.0, 42, 1, batch, dim, 0);
    double *sample_hi =
        draw_new(SDE_NOISE_UNIFORM, 0.0, 42, 0, batch, dim, (size_t)(UINT64_C(1) << 32));
    ck_assert_uint_eq(count_equal(base, seed_lo, n), 0);
    ck_assert_uint_eq(count_equal(base, seed_hi, n), 0);
    ck_assert_uint_eq(count_equal(base, counter, n), 0);
    ck_assert_uint_eq(count_equal(base, sample_hi, n), 0);
    /* Rows are different samples, and the values within a row are all different. */
    ck_assert_uint_eq(count_equal(base, base + dim, n - dim), 0);
    for (size_t i = 0; i < dim; i++)
        for (size_t k = i + 1; k < dim; k++)
            ck_assert_msg(base[i] != base[k], "elements %zu and %zu agree", i, k);
    /* Shifting sample_offset by one shifts the rows by one. */
    double *shifted = draw_new(SDE_NOISE_UNIFORM, 0.0, 42, 0, batch - 1, dim, 1);
    ck_assert_msg(memcmp(shifted, base + dim, (n - dim) * sizeof *base) == 0,
                  "offset 1 is not row 1");
    free(base);
    free(seed_lo);
    free(seed_hi);
    free(counter);
    free(sample_hi);
    free(shifted);
}
END_TEST

START_TEST(seed_and_counter_getters)
{
    sde_noise *h = NULL;
    const uint64_t seed = UINT64_C(0xfedcba9876543210);
    ck_assert_int_eq(sde_noise_new_philox(&h, seed), SDE_OK);
    ck_assert_uint_eq(sde_noise_seed(h), seed);
    ck_assert_uint_eq(sde_noise_counter(h), 0);
    ck_assert_int_eq(sde_noise_set_counter(h, UINT32_MAX), SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(h), UINT32_MAX);
    sde_noise_free(h);
}
END_TEST

/* ---- callback source ---------------------------------------------------------------- */

typedef struct host {
    int calls;
    int fail_rc;         /* returned when non-zero */
    const char *message; /* left with sde_set_error_message before failing */
    int kind;
    double param;
    size_t batch, dim, offset;
    uint64_t draw;
    sde_noise *self;       /* for the re-entrancy test */
    int reentry_rc, counter_rc;
} host;

static int host_noise(int kind, double param, double *out, size_t batch, size_t dim,
                      size_t sample_offset, uint64_t draw, void *user_data)
{
    host *h = user_data;
    h->calls++;
    h->kind = kind;
    h->param = param;
    h->batch = batch;
    h->dim = dim;
    h->offset = sample_offset;
    h->draw = draw;
    for (size_t i = 0; i < batch * dim; i++)
        out[i] = 1000.0 * (double)draw + (double)i;
    if (h->self != NULL) {
        double tmp[1];
        h->reentry_rc = sde_noise_normal(h->self, tmp, 1, 1, 0);
        h->counter_rc = sde_noise_set_counter(h->self, 0);
    }
    if (h->fail_rc != 0) {
        if (h->message != NULL)
            sde_set_error_message(h->message);
        return h->fail_rc;
    }
    return 0;
}

START_TEST(callback_passes_values_through)
{
    host st = {0};
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_callback(&h, host_noise, &st), SDE_OK);
    ck_assert_uint_eq(sde_noise_seed(h), 0);
    double out[12];
    ck_assert_int_eq(sde_noise_draw(h, SDE_NOISE_INTEGER, 5.0, out, 3, 4, 17), SDE_OK);
    ck_assert_int_eq(st.calls, 1);
    ck_assert_int_eq(st.kind, SDE_NOISE_INTEGER);
    ck_assert_double_eq(st.param, 5.0);
    ck_assert_uint_eq(st.batch, 3);
    ck_assert_uint_eq(st.dim, 4);
    ck_assert_uint_eq(st.offset, 17);
    ck_assert_uint_eq(st.draw, 0);
    for (size_t i = 0; i < 12; i++)
        ck_assert_double_eq(out[i], (double)i);
    /* Second draw: draw index 1; param is 0 for kinds other than integers. */
    ck_assert_int_eq(sde_noise_uniform(h, out, 2, 2, 0), SDE_OK);
    ck_assert_uint_eq(st.draw, 1);
    ck_assert_int_eq(st.kind, SDE_NOISE_UNIFORM);
    ck_assert_double_eq(st.param, 0.0);
    ck_assert_double_eq(out[3], 1003.0);
    ck_assert_uint_eq(sde_noise_counter(h), 2);
    /* Callback counters are not limited to 32 bits. */
    ck_assert_int_eq(sde_noise_set_counter(h, UINT64_C(1) << 40), SDE_OK);
    ck_assert_int_eq(sde_noise_rademacher(h, out, 1, 1, 0), SDE_OK);
    ck_assert_uint_eq(st.draw, UINT64_C(1) << 40);
    ck_assert_int_eq(st.kind, SDE_NOISE_RADEMACHER);
    sde_noise_free(h);
}
END_TEST

static void fill_sentinel(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = -7.25;
}

static void assert_sentinel(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(x[i] == -7.25, "out[%zu] was changed to %g", i, x[i]);
}

START_TEST(callback_failure)
{
    host st = {0};
    st.fail_rc = -3;
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_callback(&h, host_noise, &st), SDE_OK);
    double out[8];
    fill_sentinel(out, 8);
    /* The callback writes into its buffer before failing: out must not see it. */
    tu_assert_fails_with(sde_noise_normal(h, out, 2, 4, 0), SDE_E_CALLBACK, "returned -3");
    ck_assert_int_eq(st.calls, 1);
    assert_sentinel(out, 8);
    ck_assert_uint_eq(sde_noise_counter(h), 0);
    ck_assert_msg(strncmp(sde_last_error(), "sde_noise_normal:", 17) == 0, "message '%s'",
                  sde_last_error());
    /* With a host message, that text is reported. */
    st.message = "GPU ran out of dice";
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, out, 2, 4, 0), SDE_E_CALLBACK,
                         "GPU ran out of dice");
    assert_sentinel(out, 8);
    ck_assert_uint_eq(sde_noise_counter(h), 0);
    /* A stale host message does not leak into a later, message-less failure. */
    st.message = NULL;
    sde_set_error_message("stale");
    tu_assert_fails_with(sde_noise_normal(h, out, 2, 4, 0), SDE_E_CALLBACK, "returned -3");
    ck_assert_ptr_null(strstr(sde_last_error(), "stale"));
    /* Recovery: the next successful draw gets draw index 0. */
    st.fail_rc = 0;
    ck_assert_int_eq(sde_noise_normal(h, out, 2, 4, 0), SDE_OK);
    ck_assert_uint_eq(st.draw, 0);
    ck_assert_uint_eq(sde_noise_counter(h), 1);
    sde_noise_free(h);
}
END_TEST

START_TEST(callback_reentry_refused)
{
    host st = {0};
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_callback(&h, host_noise, &st), SDE_OK);
    st.self = h;
    double out[4];
    ck_assert_int_eq(sde_noise_normal(h, out, 2, 2, 0), SDE_OK);
    ck_assert_int_eq(st.reentry_rc, SDE_E_STATE);
    ck_assert_int_eq(st.counter_rc, SDE_E_STATE);
    ck_assert_uint_eq(sde_noise_counter(h), 1);
    st.self = NULL;
    ck_assert_int_eq(sde_noise_normal(h, out, 2, 2, 0), SDE_OK); /* busy flag cleared */
    sde_noise_free(h);
}
END_TEST

/* The callback's scratch buffer is allocated once and grown only for larger draws: with every
 * allocation made to fail, same-size and smaller draws still succeed; a larger draw fails with
 * SDE_E_NOMEM, leaving out and the counter alone, and works once memory is back. */
START_TEST(callback_scratch_reused)
{
    host st = {0};
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_callback(&h, host_noise, &st), SDE_OK);
    double out[40];
    ck_assert_int_eq(sde_noise_normal(h, out, 4, 5, 0), SDE_OK);
    long live = sde__alloc_live();
    sde__alloc_fail_after(1);
    ck_assert_int_eq(sde_noise_normal(h, out, 4, 5, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_normal(h, out, 2, 3, 0), SDE_OK);
    ck_assert_int_eq(sde__alloc_live(), live);
    fill_sentinel(out, 40);
    tu_assert_fails_with(sde_noise_normal(h, out, 8, 5, 0), SDE_E_NOMEM, "cannot allocate");
    assert_sentinel(out, 40);
    ck_assert_uint_eq(sde_noise_counter(h), 3);
    ck_assert_int_eq(st.calls, 3);
    sde__alloc_fail_after(0);
    ck_assert_int_eq(sde_noise_normal(h, out, 8, 5, 0), SDE_OK);
    ck_assert_double_eq(out[39], 3000.0 + 39.0);
    sde_noise_free(h);
}
END_TEST

/* ---- argument checking ------------------------------------------------------------------ */

START_TEST(bad_arguments)
{
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&h, 1), SDE_OK);
    double out[16];
    fill_sentinel(out, 16);
    tu_assert_fails_with(sde_noise_draw(NULL, SDE_NOISE_NORMAL, 0.0, out, 2, 2, 0), SDE_E_INVALID,
                         "noise is NULL");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, NULL, 2, 2, 0), SDE_E_INVALID,
                         "out is NULL");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, out, 0, 2, 0), SDE_E_DIM,
                         "batch is 0");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, out, 2, 0, 0), SDE_E_DIM,
                         "dim is 0");
    tu_assert_fails_with(sde_noise_draw(h, 7, 0.0, out, 2, 2, 0), SDE_E_INVALID,
                         "kind (7) is not an sde_noise_kind");
    tu_assert_fails_with(sde_noise_draw(h, 0, 0.0, out, 2, 2, 0), SDE_E_INVALID, "kind (0)");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_INTEGER, 0.0, out, 2, 2, 0), SDE_E_INVALID,
                         "param (0)");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_INTEGER, 2.5, out, 2, 2, 0), SDE_E_INVALID,
                         "param (2.5) must be an integer in [1, 2^53]");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_INTEGER, -1.0, out, 2, 2, 0), SDE_E_INVALID,
                         "param (-1)");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_INTEGER, NAN, out, 2, 2, 0), SDE_E_INVALID,
                         "param (nan)");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_INTEGER, 0x1p53 + 2.0, out, 2, 2, 0),
                         SDE_E_INVALID, "param (9007199254740994)");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_INTEGER, INFINITY, out, 2, 2, 0),
                         SDE_E_INVALID, "param (inf)");
    /* param is ignored for the other kinds */
    ck_assert_int_eq(sde_noise_draw(h, SDE_NOISE_UNIFORM, NAN, out, 1, 1, 0), SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(h), 1);
    fill_sentinel(out, 16);
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, out, SIZE_MAX / 2, 3, 0),
                         SDE_E_DIM, "too large");
    tu_assert_fails_with(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, out, 2, 1, SIZE_MAX),
                         SDE_E_INVALID, "sample_offset");
    /* Wrappers name themselves. */
    tu_assert_fails_with(sde_noise_normal(NULL, out, 1, 1, 0), SDE_E_INVALID,
                         "sde_noise_normal: noise is NULL");
    tu_assert_fails_with(sde_noise_uniform(h, NULL, 1, 1, 0), SDE_E_INVALID,
                         "sde_noise_uniform: out is NULL");
    tu_assert_fails_with(sde_noise_rademacher(h, out, 1, 0, 0), SDE_E_DIM,
                         "sde_noise_rademacher: dim is 0");
    assert_sentinel(out, 16);
    ck_assert_uint_eq(sde_noise_counter(h), 1);
    /* The very last sample index, 2^64 - 1, is fine. */
    ck_assert_int_eq(sde_noise_draw(h, SDE_NOISE_NORMAL, 0.0, out, 1, 2, SIZE_MAX), SDE_OK);
    sde_noise_free(h);
}
END_TEST

START_TEST(huge_counter)
{
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&h, 1), SDE_OK);
    tu_assert_fails_with(sde_noise_set_counter(h, UINT64_C(1) << 32), SDE_E_INVALID,
                         "counter (4294967296) must be < 2^32");
    ck_assert_uint_eq(sde_noise_counter(h), 0);
    tu_assert_fails_with(sde_noise_set_counter(NULL, 1), SDE_E_INVALID, "noise is NULL");
    /* The last supported draw works; the one after it is refused. */
    ck_assert_int_eq(sde_noise_set_counter(h, UINT32_MAX), SDE_OK);
    double out[4];
    ck_assert_int_eq(sde_noise_normal(h, out, 2, 2, 0), SDE_OK);
    ck_assert_uint_eq(sde_noise_counter(h), UINT64_C(1) << 32);
    fill_sentinel(out, 4);
    tu_assert_fails_with(sde_noise_normal(h, out, 2, 2, 0), SDE_E_STATE,
                         "draw counter (4294967296) is exhausted");
    assert_sentinel(out, 4);
    ck_assert_uint_eq(sde_noise_counter(h), UINT64_C(1) << 32);
    sde_noise_free(h);
}
END_TEST

/* Rows needing more than 2^32 blocks cannot be addressed by the layout; refused before any
 * write, so a small buffer is safe here. */
START_TEST(dim_beyond_layout)
{
#if SIZE_MAX > UINT32_MAX
    sde_noise *h = NULL;
    ck_assert_int_eq(sde_noise_new_philox(&h, 1), SDE_OK);
    double out[1] = {-7.25};
    size_t dim = ((size_t)1 << 33) + 1;
    tu_assert_fails_with(sde_noise_normal(h, out, 1, dim, 0), SDE_E_DIM, "dim (8589934593)");
    assert_sentinel(out, 1);
    sde_noise_free(h);
#endif
}
END_TEST

START_TEST(constructor_and_getter_arguments)
{
    tu_assert_fails_with(sde_noise_new_philox(NULL, 1), SDE_E_INVALID, "out is NULL");
    tu_assert_fails_with(sde_noise_new_callback(NULL, host_noise, NULL), SDE_E_INVALID,
                         "out is NULL");
    sde_noise *h = (sde_noise *)&h; /* not NULL: must be cleared on failure */
    tu_assert_fails_with(sde_noise_new_callback(&h, NULL, NULL), SDE_E_INVALID, "fn is NULL");
    ck_assert_ptr_null(h);
    sde_noise_free(NULL);
    ck_assert_uint_eq(sde_noise_counter(NULL), 0);
    ck_assert_uint_eq(sde_noise_seed(NULL), 0);
    const uint32_t ctr[4] = {0}, key[2] = {0};
    uint32_t out[4] = {1, 2, 3, 4};
    tu_assert_fails_with(sde_philox4x32_10(NULL, key, out), SDE_E_INVALID, "ctr is NULL");
    tu_assert_fails_with(sde_philox4x32_10(ctr, NULL, out), SDE_E_INVALID, "key is NULL");
    tu_assert_fails_with(sde_philox4x32_10(ctr, key, NULL), SDE_E_INVALID, "out is NULL");
    ck_assert_uint_eq(out[0], 1);
    ck_assert_uint_eq(out[3], 4);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------ */

START_TEST(alloc_failure)
{
    long live = sde__alloc_live();
    sde_noise *h = (sde_noise *)&h;
    sde__alloc_fail_after(1);
    tu_assert_fails_with(sde_noise_new_philox(&h, 5), SDE_E_NOMEM, "cannot allocate");
    ck_assert_ptr_null(h);
    ck_assert_int_eq(sde__alloc_live(), live);
    h = (sde_noise *)&h;
    sde__alloc_fail_after(1);
    tu_assert_fails_with(sde_noise_new_callback(&h, host_noise, NULL), SDE_E_NOMEM,
                         "cannot allocate");
    ck_assert_ptr_null(h);
    ck_assert_int_eq(sde__alloc_live(), live);
    sde__alloc_fail_after(0);
}
END_TEST

START_TEST(no_leaks)
{
    long live = sde__alloc_live();
    sde_noise *p = NULL, *c = NULL;
    host st = {0};
    ck_assert_int_eq(sde_noise_new_philox(&p, 5), SDE_OK);
    ck_assert_int_eq(sde_noise_new_callback(&c, host_noise, &st), SDE_OK);
    double out[64];
    ck_assert_int_eq(sde_noise_normal(p, out, 8, 8, 0), SDE_OK);
    ck_assert_int_eq(sde_noise_normal(c, out, 8, 8, 0), SDE_OK); /* allocates the scratch */
    ck_assert_int_gt(sde__alloc_live(), live);
    sde_noise_free(p);
    sde_noise_free(c);
    ck_assert_int_eq(sde__alloc_live(), live);
}
END_TEST

/* ---- suite -------------------------------------------------------------------------------- */

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");

    TCase *tc = tcase_create("philox");
    tcase_add_test(tc, kat_vectors);
    tcase_add_test(tc, kat_in_place);
    tcase_add_test(tc, chunk_matches_single_block);
    tcase_add_test(tc, chunk_row_matches_single_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("layout");
    tcase_add_test(tc, layout_uniform);
    tcase_add_test(tc, layout_rademacher);
    tcase_add_test(tc, layout_integer);
    tcase_add_test(tc, layout_normal);
    tcase_add_test(tc, layout_normal_vector_path);
    tcase_add_test(tc, normals_part_matches_fill);
    tcase_add_test(tc, normal_accuracy);
    tcase_add_test(tc, normal_pair_extremes);
    suite_add_tcase(s, tc);

    tc = tcase_create("statistics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, normal_moments);
    tcase_add_test(tc, normal_goodness_of_fit);
    tcase_add_test(tc, uniform_statistics);
    tcase_add_test(tc, rademacher_statistics);
    tcase_add_test(tc, integer_statistics);
    suite_add_tcase(s, tc);

    tc = tcase_create("determinism");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, shards_match_whole_batch);
    tcase_add_test(tc, successive_draws_use_the_counter);
    tcase_add_test(tc, two_threads_match_one);
    tcase_add_test(tc, streams_differ);
    tcase_add_test(tc, seed_and_counter_getters);
    suite_add_tcase(s, tc);

    tc = tcase_create("callback");
    tcase_add_test(tc, callback_passes_values_through);
    tcase_add_test(tc, callback_failure);
    tcase_add_test(tc, callback_reentry_refused);
    tcase_add_test(tc, callback_scratch_reused);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, huge_counter);
    tcase_add_test(tc, dim_beyond_layout);
    tcase_add_test(tc, constructor_and_getter_arguments);
    tcase_add_test(tc, alloc_failure);
    tcase_add_test(tc, no_leaks);
    suite_add_tcase(s, tc);

    return s;
}

int main(void) { return tu_run_suite(rng_suite()); }
