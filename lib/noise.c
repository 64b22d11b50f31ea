/* Noise sources: the built-in Philox4x32-10 stream (layout documented in sde/rng.h) and the
 * host-callback source.
 *
 * The uniform-to-normal transform uses its own logarithm and sine/cosine kernels rather than
 * libm: they are written with +, -, *, /, sqrt and explicit fused multiply-adds only (all
 * correctly rounded in IEEE 754, the same in scalar and SIMD form), so the compiler can
 * vectorise them and a sample has the same bits
 * on every platform and in every clone, not only with one libm. Both kernels are accurate to
 * about one unit in the last place.
 *
 * Speed: about 10^9 normals per second on one core of the development machine (AVX-512; see
 * bench/results/rng.txt), 0.7 ns per Philox block and 1.25 ns per Box-Muller pair. The
 * transform's vectorised loop is bound by the number of vector operations, not by its one
 * division and one square root (those run on their own unit: removing the division saves
 * nothing), which is why the helpers below build their inputs with fused multiply-adds and
 * fold the factor -2 into the logarithm's constants, all without changing a bit. The chunk
 * size, the kernel-made counters and the 64-byte word stores of the Philox kernel (philox.c)
 * are worth another 15% together. */
#include <math.h>
#include <string.h>

#include "noise_private.h"
#include "sde_private.h"

/* Contracting a*b+c into a fused multiply-add would make the SIMD clones and the scalar code
 * (or two machines) round differently. GCC keeps ISO semantics under -std=c11, but not under
 * the GNU dialects, and Clang contracts by default: switch it off here either way. */
#if defined(__clang__)
#  pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#  pragma GCC optimize("fp-contract=off")
#endif

/* Fused multiply-add, written explicitly wherever the kernels want one: a single rounding of
 * a*b+c, so it is the same in every clone (vfmadd) and in the portable code, where C99's fma()
 * is correctly rounded too -- in hardware on every x86-64-v3 or later CPU and on AArch64, in
 * software (slow, but with the same bits) on x86-64 CPUs without FMA. */
#define FMA(a, b, c) fma(a, b, c)

/* The per-value helpers must be inlined into the chunk loops for those to vectorise; -O2 would
 * not inline them on its own once they have two callers. */
#if defined(__GNUC__)
#  define SDE__INLINE static inline __attribute__((always_inline))
#else
#  define SDE__INLINE static inline
#endif

struct sde_noise {
    sde_noise_fn fn;  /* host callback, or NULL for the built-in generator */
    void *user_data;  /* borrowed from the host */
    uint64_t seed;    /* Philox key (0 for a callback source) */
    uint64_t counter; /* draws made so far: word 1 of the Philox counter */
    /* Callback sources only: the callback writes here, so that a failing callback cannot
     * touch the caller's array. Allocated at the first draw and grown only when a draw needs
     * more, so a sampling loop with a fixed shape allocates once. */
    double *scratch;
    size_t scratch_len;
    int busy; /* set while the callback runs: it must not re-enter its own handle */
};

/* ---- bit-level helpers (all vectorise: shifts, masks, selects) ------------------------ */

SDE__INLINE uint64_t bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

SDE__INLINE double double_of(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

#define EXP_2P52 UINT64_C(0x4330000000000000) /* bits of 2^52 */

/* Exact double of a 32-bit unsigned through the signed conversion every SIMD instruction set
 * has (cvtdq2pd): flip the top bit, convert as int32, add 2^31 back. (The uint32 -> int32 cast
 * of values above INT32_MAX is implementation-defined; GCC, Clang and MSVC all wrap.) */
SDE__INLINE double u32_to_double(uint32_t w)
{
    return (double)(int32_t)(w ^ 0x80000000u) + 2147483648.0;
}

/* The 53-bit integer (hi:lo) >> 11 of the layout, as an exact double, built from the two words
 * without 64-bit integer lanes: hi 2^21 + (lo >> 11), both parts and the sum exact. */
SDE__INLINE double top53(uint32_t lo, uint32_t hi)
{
    return u32_to_double(hi) * 0x1p21 + (double)(int32_t)(lo >> 11);
}

/* The transform's two inputs straight from the words, in two fused multiply-adds each instead
 * of top53 and a scaling: u1 = ((hi:lo >> 11) + 1/2) 2^-53 = hi 2^-32 + ((lo >> 11) 2^-53 +
 * 2^-54), where the inner FMA is exact (a 22-bit result) and the outer one rounds the exact
 * value once -- the same single rounding as (top53 + 0.5) 2^-53. */
SDE__INLINE double open_unit(uint32_t lo, uint32_t hi)
{
    return FMA(u32_to_double(hi), 0x1p-32, FMA((double)(int32_t)(lo >> 11), 0x1p-53, 0x1p-54));
}

/* 4 u for u = (hi:lo >> 11) 2^-53, i.e. the angle in quarter turns: exact (53 bits), so the
 * FMA rounds nothing. */
SDE__INLINE double quarter_turns(uint32_t lo, uint32_t hi)
{
    return FMA(u32_to_double(hi), 0x1p-30, (double)(int32_t)(lo >> 11) * 0x1p-51);
}

/* ---- -2 ln x on [2^-54, 1] ------------------------------------------------------------ */

/* fdlibm's e_log.c scheme without its special cases (the argument is always a positive
 * normal number): x = 2^k m with m in [sqrt(2)/2, sqrt(2)), f = m - 1, s = f / (2 + f),
 * log(m) = f - f^2/2 + s (f^2/2 + R(s^2)). Error below 1 ulp.
 *
 * Box-Muller wants -2 ln x. Every operation here is exactly twice fdlibm's (scaling by 2
 * commutes with rounding): f^2 for 2 (f/2) f, 2f = f + f, the polynomial's coefficients
 * doubled; and the final k ln2_hi - y becomes y - k ln2_hi, which rounds to the negated
 * value (round to nearest is symmetric). So these are the bits of -2.0 * log(x) evaluated
 * fdlibm's way, in four fewer vector operations. */
static const double ln2_hi = 6.93147180369123816490e-01; /* 0x3fe62e42fee00000 */
static const double ln2_lo = 1.90821492927058770002e-10; /* 0x3dea39ef35793c76 */
static const double Lg1 = 6.666666666666735130e-01;
static const double Lg2 = 3.999999999940941908e-01;
static const double Lg3 = 2.857142874366239149e-01;
static const double Lg4 = 2.222219843214978396e-01;
static const double Lg5 = 1.818357216161805012e-01;
static const double Lg6 = 1.531383769920937332e-01;
static const double Lg7 = 1.479819860511658591e-01;

SDE__INLINE double minus2_log(double x)
{
    /* Subtracting the bits of sqrt(2)/2 puts the exponent of the rescaled mantissa's binade in
     * the top bits; the 64 << 52 offset keeps the difference positive for x down to 2^-63, so a
     * logical shift suffices (AVX2 has no 64-bit arithmetic shift). */
    const uint64_t offset = UINT64_C(0x3fe6a09e667f3bcd) - (UINT64_C(64) << 52);
    uint64_t ix = bits_of(x);
    uint64_t e = (ix - offset) >> 52; /* k + 64, in [10, 65] */
    double m = double_of(ix - ((e - 64) << 52));
    double dk = double_of(EXP_2P52 | e) - (0x1p52 + 64.0);
    double f = m - 1.0;
    double hfsq = f * f; /* 2 (f^2 / 2) */
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double t1 = w * FMA(w, FMA(w, 2.0 * Lg6, 2.0 * Lg4), 2.0 * Lg2);
    double t2 = z * FMA(w, FMA(w, FMA(w, 2.0 * Lg7, 2.0 * Lg5), 2.0 * Lg3), 2.0 * Lg1);
    double R = t2 + t1;
    double y = (hfsq - FMA(s, hfsq + R, dk * (2.0 * ln2_lo))) - (f + f);
    /* k ln2_hi is exact (ln2_hi has 32 significant bits), so the FMA rounds what fdlibm's
     * final subtraction rounds */
    return FMA(-dk, 2.0 * ln2_hi, y);
}

/* ---- cos and sin of 2 pi u for u = b 2^-53, b < 2^53 ------------------------------------ */

/* fdlibm's k_sin.c / k_cos.c minimax polynomials on [-pi/4, pi/4]. */
static const double S1 = -1.66666666666666324348e-01;
static const double S2 = 8.33333333332248946124e-03;
static const double S3 = -1.98412698298579493134e-04;
static const double S4 = 2.75573137070700676789e-06;
static const double S5 = -2.50507602534068634195e-08;
static const double S6 = 1.58969099521155010221e-10;
static const double C1 = 4.16666666666666019037e-02;
static const double C2 = -1.38888888888741095749e-03;
static const double C3 = 2.48015872894767294178e-05;
static const double C4 = -2.75573143513906633035e-07;
static const double C5 = 2.08757232129817482790e-09;
static const double C6 = -1.13596475577881948265e-11;

static const double HALF_PI = 1.57079632679489661923;
#define ROUND_MAGIC 0x1.8p52 /* t + 1.5 2^52 rounds t to an integer held in the low mantissa */

/* cos and sin of 2 pi u given t = 4u (exact, u = b 2^-53). The argument is reduced exactly in
 * quarter turns: q = nearest integer to t, r = t - q in [-1/2, 1/2], both exact, so the only
 * rounding before the polynomials is x = r pi/2. This is more accurate than
 * cos(2 * M_PI * u), whose product is already off by up to 7e-16 near u = 1. Like the rest of
 * the transform it assumes the default rounding mode (round to nearest). */
SDE__INLINE void sincos_turns(double t, double *c, double *s)
{
    double tq = t + ROUND_MAGIC;
    uint64_t q = bits_of(tq); /* low bits: q mod 8 */
    double x = (t - (tq - ROUND_MAGIC)) * HALF_PI;
    double z = x * x;
    /* Estrin's scheme in z and z^2 (shorter dependency chains than Horner's). */
    double z2 = z * z;
    double sv = FMA(z2, FMA(z2, S6, FMA(z, S5, S4)), FMA(z, S3, S2));
    double sn = FMA(z * x, FMA(z, sv, S1), x);
    double cp = FMA(z2, FMA(z2, FMA(z, C6, C5), FMA(z, C4, C3)), FMA(z, C2, C1));
    double cr = z * cp;
    double hz = 0.5 * z;
    double w = 1.0 - hz;
    double cs = w + FMA(z, cr, (1.0 - w) - hz);
    /* cos(q pi/2 + x), sin(q pi/2 + x): odd quadrants swap the two, and the signs follow the
     * quadrant (cos is negative for q = 1, 2 mod 4; sin for q = 2, 3). */
    uint64_t swap = 0 - (q & 1);
    uint64_t cb = (bits_of(cs) & ~swap) | (bits_of(sn) & swap);
    uint64_t sb = (bits_of(sn) & ~swap) | (bits_of(cs) & swap);
    cb ^= ((q + 1) & 2) << 62;
    sb ^= (q & 2) << 62;
    *c = double_of(cb);
    *s = double_of(sb);
}

/* ---- the per-block transforms of the documented layout -------------------------------- */

/* Box-Muller on one block: u1 = ((A >> 11) + 0.5) 2^-53, u2 = (B >> 11) 2^-53 with A = w1:w0 and
 * B = w3:w2. */
SDE__INLINE void box_muller(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, double *z0,
                            double *z1)
{
    double r = sqrt(minus2_log(open_unit(w0, w1)));
    double c, s;
    sincos_turns(quarter_turns(w2, w3), &c, &s);
    *z0 = r * c;
    *z1 = r * s;
}

void sde__normal_pair(const uint32_t w[4], double z[2])
{
    box_muller(w[0], w[1], w[2], w[3], &z[0], &z[1]);
}

/* Normals of a whole chunk, pairs interleaved as the row layout wants them. */
SDE__INLINE void chunk_normals(const sde__philox_out *o, double *restrict z)
{
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        double a, b;
        box_muller(o->w[0][i], o->w[1][i], o->w[2][i], o->w[3][i], &a, &b);
        z[2 * i] = a;
        z[2 * i + 1] = b;
    }
}

SDE__INLINE void chunk_uniforms(const sde__philox_out *o, double *restrict v)
{
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        v[2 * i] = top53(o->w[0][i], o->w[1][i]) * 0x1p-53;
        v[2 * i + 1] = top53(o->w[2][i], o->w[3][i]) * 0x1p-53;
    }
}

/* floor(W n / 2^64): the high word of the 128-bit product, exact for any n. */
SDE__INLINE uint64_t mul_hi64(uint64_t W, uint64_t n)
{
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 u128; /* __extension__: no -Wpedantic noise */
    return (uint64_t)(((u128)W * n) >> 64);
#else
    uint64_t wl = W & 0xffffffffu, wh = W >> 32, nl = n & 0xffffffffu, nh = n >> 32;
    uint64_t ll = wl * nl, lh = wl * nh, hl = wh * nl, hh = wh * nh;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

SDE__INLINE void chunk_integers(const sde__philox_out *o, uint64_t n, double *restrict v)
{
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        /* Results are below n <= 2^53, so the conversion is exact. */
        uint64_t A = ((uint64_t)o->w[1][i] << 32) | o->w[0][i];
        uint64_t B = ((uint64_t)o->w[3][i] << 32) | o->w[2][i];
        v[2 * i] = (double)mul_hi64(A, n);
        v[2 * i + 1] = (double)mul_hi64(B, n);
    }
}

SDE__INLINE void chunk_rademacher(const sde__philox_out *o, double *restrict v)
{
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++)
        for (int k = 0; k < 4; k++)
            v[4 * i + k] = (o->w[k][i] & 1u) ? 1.0 : -1.0;
}

/* ---- the pure fill ---------------------------------------------------------------------- */

/* Values one block yields for `kind` (elements e = j*per .. j*per + per - 1 of a row). */
static size_t values_per_block(int kind) { return kind == SDE_NOISE_RADEMACHER ? 4 : 2; }

/* Rows of at most this many blocks are packed whole into chunks (a few lanes may stay idle);
 * longer rows are cut at chunk boundaries. */
enum { SHORT_ROW_BLOCKS = 16 };

/* Walks the (row, block) pairs of a fill in order, chunk by chunk. */
typedef struct fill_plan {
    size_t row, rows;    /* next row and number of rows */
    uint64_t j, nblocks; /* next block within the row (long rows), blocks per row */
    uint64_t sample0;    /* global sample index of row 0 */
    size_t per, dim;     /* values per block and per row */
    /* Short rows: rows per chunk, and each lane's row (within the chunk) and block. */
    int rows_per_chunk;
    uint8_t lane_row[SDE__PHILOX_CHUNK], lane_block[SDE__PHILOX_CHUNK];
} fill_plan;

static void plan_init(fill_plan *p, size_t batch, size_t dim, size_t per, size_t sample_offset)
{
    p->row = 0;
    p->rows = batch;
    p->j = 0;
    p->nblocks = (dim + per - 1) / per;
    p->sample0 = (uint64_t)sample_offset;
    p->per = per;
    p->dim = dim;
    p->rows_per_chunk = 0;
    if (p->nblocks <= SHORT_ROW_BLOCKS) {
        int nb = (int)p->nblocks;
        p->rows_per_chunk = SDE__PHILOX_CHUNK / nb;
        for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
            p->lane_row[i] = (uint8_t)(i / nb); /* lanes past the last whole row: discarded */
            p->lane_block[i] = (uint8_t)(i % nb);
        }
    }
}

/* Short rows: lane i is block lane_block[i] of row row + lane_row[i] (a loop that vectorises).
 * Returns the number of rows loaded. */
static size_t counters_short_rows(fill_plan *p, sde__philox_ctr *ctr)
{
    size_t left = p->rows - p->row;
    size_t rows = left < (size_t)p->rows_per_chunk ? left : (size_t)p->rows_per_chunk;
    uint64_t base = p->sample0 + p->row;
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        uint64_t sample = base + p->lane_row[i];
        ctr->c0[i] = p->lane_block[i];
        ctr->c2[i] = (uint32_t)sample;
        ctr->c3[i] = (uint32_t)(sample >> 32);
    }
    p->row += rows;
    return rows;
}

/* Long rows: lanes [n, n + len) get blocks j0, j0 + 1, ... of one sample. */
static void counters_in_row(sde__philox_ctr *ctr, int n, int len, uint64_t j0, uint64_t sample)
{
    for (int i = 0; i < len; i++) {
        ctr->c0[n + i] = (uint32_t)(j0 + (uint64_t)i);
        ctr->c2[n + i] = (uint32_t)sample;
        ctr->c3[n + i] = (uint32_t)(sample >> 32);
    }
}

/* Long rows: fill the chunk with row segments; returns the number of lanes loaded. Unused
 * lanes repeat lane 0: they are computed and discarded. */
static int counters_long_rows(fill_plan *p, sde__philox_ctr *ctr)
{
    int n = 0;
    while (n < SDE__PHILOX_CHUNK && p->row < p->rows) {
        uint64_t room = (uint64_t)(SDE__PHILOX_CHUNK - n), rest = p->nblocks - p->j;
        int len = (int)(rest < room ? rest : room);
        counters_in_row(ctr, n, len, p->j, p->sample0 + p->row);
        n += len;
        p->j += (uint64_t)len;
        if (p->j == p->nblocks) {
            p->j = 0;
            p->row++;
        }
    }
    for (int i = n; i < SDE__PHILOX_CHUNK; i++) {
        ctr->c0[i] = ctr->c0[0];
        ctr->c2[i] = ctr->c2[0];
        ctr->c3[i] = ctr->c3[0];
    }
    return n;
}

/* One clone set for all kinds; the per-kind loops are inlined into each clone. */
SDE__CLONES
static void chunk_values(int kind, uint64_t n_int, const sde__philox_out *restrict o,
                         double *restrict v)
{
    switch (kind) {
    case SDE_NOISE_NORMAL: chunk_normals(o, v); break;
    case SDE_NOISE_UNIFORM: chunk_uniforms(o, v); break;
    case SDE_NOISE_INTEGER: chunk_integers(o, n_int, v); break;
    default: chunk_rademacher(o, v); break;
    }
}

static void copy_values(double *restrict out, const double *restrict src, size_t count)
{
    if (count > 4) {
        memcpy(out, src, count * sizeof *out);
        return;
    }
    /* Unrolled by hand: written as a loop, this becomes a memcpy call (or rep movs) that costs
     * far more than moving one to four values. */
    if (count > 0)
        out[0] = src[0];
    if (count > 1)
        out[1] = src[1];
    if (count > 2)
        out[2] = src[2];
    if (count > 3)
        out[3] = src[3];
}

/* Copy the values of `rows` whole short rows from the chunk, dropping each row's last unused
 * values. Returns the advanced output pointer. */
static double *emit_short_rows(const fill_plan *p, size_t rows, const double *v, double *out)
{
    size_t stride = (size_t)p->nblocks * p->per;
    for (size_t r = 0; r < rows; r++)
        copy_values(out + r * p->dim, v + r * stride, p->dim);
    return out + rows * p->dim;
}

/* Copy the first n lanes' values (long rows): the lanes run through row segments, each copied
 * in one go, minus the values past the end of a row. */
static double *emit_long_rows(const fill_plan *p, const sde__philox_ctr *ctr, int n,
                              const double *v, double *out)
{
    for (int i = 0; i < n;) {
        uint64_t j0 = ctr->c0[i];
        uint64_t rest = p->nblocks - j0, room = (uint64_t)(n - i);
        size_t len = (size_t)(rest < room ? rest : room);
        size_t first = (size_t)j0 * p->per, count = len * p->per;
        if (count > p->dim - first)
            count = p->dim - first;
        copy_values(out, v + (size_t)i * p->per, count);
        out += count;
        i += (int)len;
    }
    return out;
}

void sde__philox_fill(uint64_t seed, uint64_t draw, int kind, double param, double *out,
                      size_t batch, size_t dim, size_t sample_offset)
{
    const size_t per = values_per_block(kind);
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint64_t n_int = kind == SDE_NOISE_INTEGER ? (uint64_t)param : 0;
    const int whole_blocks = dim % per == 0; /* rows use every value of their blocks */
    fill_plan plan;
    sde__philox_ctr ctr;
    sde__philox_out words;
    _Alignas(64) double vals[4 * SDE__PHILOX_CHUNK];
    plan_init(&plan, batch, dim, per, sample_offset);
    ctr.c1 = (uint32_t)draw;
    while (plan.row < plan.rows) {
        size_t rows = 0;
        int n;
        if (plan.rows_per_chunk > 0) {
            rows = counters_short_rows(&plan, &ctr);
            n = (int)(rows * plan.nblocks);
            sde__philox_chunk(&ctr, key, &words);
        } else if (plan.nblocks - plan.j >= SDE__PHILOX_CHUNK) {
            /* the whole chunk inside one row: counters made by the kernel; lane 0's block
             * number is all emit_long_rows reads of them */
            n = SDE__PHILOX_CHUNK;
            ctr.c0[0] = (uint32_t)plan.j;
            sde__philox_chunk_row(ctr.c0[0], ctr.c1, plan.sample0 + plan.row, key, &words);
            plan.j += SDE__PHILOX_CHUNK;
            if (plan.j == plan.nblocks) {
                plan.j = 0;
                plan.row++;
            }
        } else {
            n = counters_long_rows(&plan, &ctr);
            sde__philox_chunk(&ctr, key, &words);
        }
        if (whole_blocks && n == SDE__PHILOX_CHUNK) {
            chunk_values(kind, n_int, &words, out); /* straight to the output */
            out += (size_t)n * per;
            continue;
        }
        chunk_values(kind, n_int, &words, vals);
        if (whole_blocks) {
            memcpy(out, vals, (size_t)n * per * sizeof *out);
            out += (size_t)n * per;
        } else if (plan.rows_per_chunk > 0) {
            out = emit_short_rows(&plan, rows, vals, out);
        } else {
            out = emit_long_rows(&plan, &ctr, n, vals, out);
        }
    }
}

/* Normals e0 .. e1 - 1 of one row (global sample `sample`) into out[0 .. e1 - e0), e0 even:
 * the same values sde__philox_fill gives those elements (each comes from its own block), so
 * threads can share one long row. */
void sde__philox_normals_part(uint64_t seed, uint64_t draw, double *out, uint64_t sample,
                              size_t e0, size_t e1)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    sde__philox_out words;
    _Alignas(64) double vals[2 * SDE__PHILOX_CHUNK];
    uint64_t j = e0 / 2, jend = ((uint64_t)e1 + 1) / 2;
    size_t left = e1 - e0;
    while (j < jend) {
        uint64_t rest = jend - j;
        int n = rest < SDE__PHILOX_CHUNK ? (int)rest : SDE__PHILOX_CHUNK;
        sde__philox_chunk_row((uint32_t)j, (uint32_t)draw, sample, key, &words);
        size_t count = (size_t)n * 2 < left ? (size_t)n * 2 : left;
        if (count == 2 * SDE__PHILOX_CHUNK) {
            chunk_values(SDE_NOISE_NORMAL, 0, &words, out);
        } else {
            chunk_values(SDE_NOISE_NORMAL, 0, &words, vals);
            memcpy(out, vals, count * sizeof *out);
        }
        out += count;
        left -= count;
        j += (uint64_t)n;
    }
}

/* ---- handles ---------------------------------------------------------------------------- */

static int new_handle(sde_noise **out, const char *func)
{
    sde_noise *h = sde__calloc(1, sizeof *h);
    if (h == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate the noise handle");
    *out = h;
    return SDE_OK;
}

int sde_noise_new_philox(sde_noise **out, uint64_t seed)
{
    SDE__CHECK(sde__check_ptr(out, __func__, "out"));
    *out = NULL;
    sde_noise *h = NULL;
    SDE__CHECK(new_handle(&h, __func__));
    h->seed = seed;
    *out = h;
    return SDE_OK;
}

/* A callback source owns one scratch buffer of batch*dim doubles for the largest draw so far
 * (the callback fills it; out is copied from it only on success), freed by sde_noise_free. */
int sde_noise_new_callback(sde_noise **out, sde_noise_fn fn, void *user_data)
{
    SDE__CHECK(sde__check_ptr(out, __func__, "out"));
    *out = NULL;
    if (fn == NULL)
        return sde__fail(SDE_E_INVALID, __func__, "fn is NULL");
    sde_noise *h = NULL;
    SDE__CHECK(new_handle(&h, __func__));
    h->fn = fn;
    h->user_data = user_data;
    *out = h;
    return SDE_OK;
}

void sde_noise_free(sde_noise *noise)
{
    if (noise == NULL)
        return;
    sde__free(noise->scratch);
    sde__free(noise);
}

uint64_t sde_noise_counter(const sde_noise *noise) { return noise != NULL ? noise->counter : 0; }

uint64_t sde_noise_seed(const sde_noise *noise) { return noise != NULL ? noise->seed : 0; }

int sde__noise_is_philox(const sde_noise *noise) { return noise != NULL && noise->fn == NULL; }

static int check_not_busy(const sde_noise *noise, const char *func)
{
    if (noise->busy)
        return sde__fail(SDE_E_STATE, func,
                         "noise is busy: a noise callback must not use its own handle");
    return SDE_OK;
}

int sde_noise_set_counter(sde_noise *noise, uint64_t counter)
{
    SDE__CHECK(sde__check_ptr(noise, __func__, "noise"));
    SDE__CHECK(check_not_busy(noise, __func__));
    if (noise->fn == NULL && counter > UINT32_MAX)
        return sde__fail(SDE_E_INVALID, __func__,
                         "counter (%llu) must be < 2^32 for the Philox generator",
                         (unsigned long long)counter);
    noise->counter = counter;
    return SDE_OK;
}

/* ---- draws ------------------------------------------------------------------------------ */

static int check_kind_param(int kind, double param, const char *func)
{
    if (kind < SDE_NOISE_NORMAL || kind > SDE_NOISE_INTEGER)
        return sde__fail(SDE_E_INVALID, func, "kind (%d) is not an sde_noise_kind (1 to 4)",
                         kind);
    if (kind == SDE_NOISE_INTEGER && !(param >= 1.0 && param <= 0x1p53 && param == floor(param)))
        return sde__fail(SDE_E_INVALID, func,
                         "param (%.17g) must be an integer in [1, 2^53] for SDE_NOISE_INTEGER",
                         param);
    return SDE_OK;
}

/* The rows' global sample indices must fit in 64 bits (they key the Philox counter and are
 * what a callback receives). */
static int check_samples(size_t batch, size_t sample_offset, const char *func)
{
    if ((uint64_t)(batch - 1) > UINT64_MAX - (uint64_t)sample_offset)
        return sde__fail(SDE_E_INVALID, func,
                         "sample_offset (%zu) + batch (%zu) exceeds 2^64 samples",
                         sample_offset, batch);
    return SDE_OK;
}

static int check_counter(const sde_noise *noise, size_t dim, int kind, const char *func)
{
    if (noise->fn != NULL) {
        if (noise->counter == UINT64_MAX)
            return sde__fail(SDE_E_STATE, func, "draw counter (%llu) is exhausted",
                             (unsigned long long)noise->counter);
        return SDE_OK;
    }
    if (noise->counter > UINT32_MAX)
        return sde__fail(SDE_E_STATE, func,
                         "draw counter (%llu) is exhausted: the Philox generator supports 2^32 "
                         "draws (see sde_noise_set_counter)",
                         (unsigned long long)noise->counter);
    /* Block numbers j are 32-bit in the layout. */
    uint64_t per = values_per_block(kind);
    if (((uint64_t)dim + per - 1) / per > (UINT64_C(1) << 32))
        return sde__fail(SDE_E_DIM, func, "dim (%zu) needs more than 2^32 Philox blocks per row",
                         dim);
    return SDE_OK;
}

/* The callback writes into the handle's scratch; grow it only when a draw needs more. */
static int reserve_scratch(sde_noise *noise, size_t n, const char *func)
{
    if (n <= noise->scratch_len)
        return SDE_OK;
    double *p = sde__malloc_array(n, sizeof *p);
    if (p == NULL)
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate %zu doubles for the callback's "
                         "output", n);
    sde__free(noise->scratch);
    noise->scratch = p;
    noise->scratch_len = n;
    return SDE_OK;
}

static int draw_callback(sde_noise *noise, int kind, double param, double *out, size_t batch,
                         size_t dim, size_t sample_offset, const char *func)
{
    size_t n = batch * dim; /* representable: checked by sde__check_shape */
    SDE__CHECK(reserve_scratch(noise, n, func));
    sde__callback_message_reset();
    noise->busy = 1;
    int rc = noise->fn(kind, kind == SDE_NOISE_INTEGER ? param : 0.0, noise->scratch, batch, dim,
                       sample_offset, noise->counter, noise->user_data);
    noise->busy = 0;
    if (rc != 0)
        return sde__callback_failed(func, "noise callback", rc);
    memcpy(out, noise->scratch, n * sizeof *out);
    noise->counter++;
    return SDE_OK;
}

static int draw(sde_noise *noise, int kind, double param, double *out, size_t batch, size_t dim,
                size_t sample_offset, const char *func)
{
    SDE__CHECK(sde__check_ptr(noise, func, "noise"));
    SDE__CHECK(check_kind_param(kind, param, func));
    SDE__CHECK(sde__check_ptr(out, func, "out"));
    SDE__CHECK(sde__check_shape(batch, dim, func));
    SDE__CHECK(check_samples(batch, sample_offset, func));
    SDE__CHECK(check_not_busy(noise, func));
    SDE__CHECK(check_counter(noise, dim, kind, func));
    if (noise->fn != NULL)
        return draw_callback(noise, kind, param, out, batch, dim, sample_offset, func);
    sde__philox_fill(noise->seed, noise->counter, kind, param, out, batch, dim, sample_offset);
    noise->counter++;
    return SDE_OK;
}

int sde_noise_draw(sde_noise *noise, int kind, double param, double *out, size_t batch,
                   size_t dim, size_t sample_offset)
{
    return draw(noise, kind, param, out, batch, dim, sample_offset, __func__);
}

int sde_noise_normal(sde_noise *noise, double *out, size_t batch, size_t dim,
                     size_t sample_offset)
{
    return draw(noise, SDE_NOISE_NORMAL, 0.0, out, batch, dim, sample_offset, __func__);
}

int sde_noise_uniform(sde_noise *noise, double *out, size_t batch, size_t dim,
                      size_t sample_offset)
{
    return draw(noise, SDE_NOISE_UNIFORM, 0.0, out, batch, dim, sample_offset, __func__);
}

int sde_noise_rademacher(sde_noise *noise, double *out, size_t batch, size_t dim,
                         size_t sample_offset)
{
    return draw(noise, SDE_NOISE_RADEMACHER, 0.0, out, batch, dim, sample_offset, __func__);
}
