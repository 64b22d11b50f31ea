/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11; the Random123 reference): the public one-block function and the chunk kernel that
 * every built-in noise draw runs on. */
#include "noise_private.h"
#include "sde_private.h"

#define PHILOX_M0 0xD2511F53u /* multiplier applied to counter word 0 */
#define PHILOX_M1 0xCD9E8D57u /* multiplier applied to counter word 2 */
#define PHILOX_W0 0x9E3779B9u /* Weyl increment of key word 0 (golden ratio) */
#define PHILOX_W1 0xBB67AE85u /* Weyl increment of key word 1 (sqrt(3) - 1) */
#define PHILOX_ROUNDS 10

/* The round keys are the same for every block: (key0 + r W0, key1 + r W1) for round r. */
static void round_keys(const uint32_t key[2], uint32_t k0[PHILOX_ROUNDS],
                       uint32_t k1[PHILOX_ROUNDS])
{
    uint32_t a = key[0], b = key[1];
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        k0[r] = a;
        k1[r] = b;
        a += PHILOX_W0;
        b += PHILOX_W1;
    }
}

/* One Philox round on one block, in registers. The product is formed in 64 bits so that its
 * high and low halves both come out of one multiply. */
#define PHILOX_ROUND(x0, x1, x2, x3, k0, k1)                                                    \
    do {                                                                                        \
        uint64_t p0_ = (uint64_t)PHILOX_M0 * (x0);                                              \
        uint64_t p1_ = (uint64_t)PHILOX_M1 * (x2);                                              \
        (x0) = (uint32_t)(p1_ >> 32) ^ (x1) ^ (k0);                                             \
        (x1) = (uint32_t)p1_;                                                                   \
        (x2) = (uint32_t)(p0_ >> 32) ^ (x3) ^ (k1);                                             \
        (x3) = (uint32_t)p0_;                                                                   \
    } while (0)

/* The same round for the chunk kernel, on 64-bit lanes whose low 32 bits are the word: the
 * upper halves may hold garbage, because the multiplies read only the low halves (masked) and
 * the stores truncate. One block word per 64-bit lane avoids the pack/unpack shuffles that a
 * vectorised 32x32->64 widening multiply needs. This portable loop is what runs without
 * AVX-512 (AVX2 has no 64-bit lane multiply, so there it runs near scalar speed, about 27
 * cycles per block); CPUs with AVX-512F take the intrinsics kernel at the end of the file. */
#define LOW32 UINT64_C(0xffffffff)
#define PHILOX_ROUND64(r)                                                                       \
    do {                                                                                        \
        uint64_t p0_ = (x0 & LOW32) * PHILOX_M0;                                                \
        uint64_t p1_ = (x2 & LOW32) * PHILOX_M1;                                                \
        x0 = (p1_ >> 32) ^ x1 ^ k0[r];                                                          \
        x1 = p1_;                                                                               \
        x2 = (p0_ >> 32) ^ x3 ^ k1[r];                                                          \
        x3 = p0_;                                                                               \
    } while (0)

int sde_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    SDE__CHECK(sde__check_ptr(ctr, __func__, "ctr"));
    SDE__CHECK(sde__check_ptr(key, __func__, "key"));
    SDE__CHECK(sde__check_ptr(out, __func__, "out"));
    uint32_t k0[PHILOX_ROUNDS], k1[PHILOX_ROUNDS];
    round_keys(key, k0, k1);
    uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3];
    for (int r = 0; r < PHILOX_ROUNDS; r++)
        PHILOX_ROUND(x0, x1, x2, x3, k0[r], k1[r]);
    /* Written only now, so out may alias ctr. */
    out[0] = x0;
    out[1] = x1;
    out[2] = x2;
    out[3] = x3;
    return SDE_OK;
}

/* Lanes are independent blocks with the rounds unrolled by hand inside (-O2 does not unroll
 * them itself): the loop over lanes is what the vectoriser turns into SIMD, with the round keys
 * broadcast. Machines with AVX-512 run the intrinsics version below instead. */
SDE__CLONES
static void chunk_generic(const sde__philox_ctr *restrict ctr, const uint32_t key[2],
                       sde__philox_out *restrict out)
{
    uint32_t rk0[PHILOX_ROUNDS], rk1[PHILOX_ROUNDS];
    round_keys(key, rk0, rk1);
    uint64_t k0[PHILOX_ROUNDS], k1[PHILOX_ROUNDS];
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        k0[r] = rk0[r];
        k1[r] = rk1[r];
    }
    const uint64_t c1 = ctr->c1;
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        uint64_t x0 = ctr->c0[i], x1 = c1, x2 = ctr->c2[i], x3 = ctr->c3[i];
        PHILOX_ROUND64(0);
        PHILOX_ROUND64(1);
        PHILOX_ROUND64(2);
        PHILOX_ROUND64(3);
        PHILOX_ROUND64(4);
        PHILOX_ROUND64(5);
        PHILOX_ROUND64(6);
        PHILOX_ROUND64(7);
        PHILOX_ROUND64(8);
        PHILOX_ROUND64(9);
        out->w[0][i] = (uint32_t)x0;
        out->w[1][i] = (uint32_t)x1;
        out->w[2][i] = (uint32_t)x2;
        out->w[3][i] = (uint32_t)x3;
    }
}

#if SDE__HAVE_AVX512_PATH
#  include <immintrin.h>

/* AVX-512F: eight blocks per vector, one block word per 64-bit lane (low half; the high half
 * may hold garbage, as in PHILOX_ROUND64). vpmuludq forms the 32x32->64 products from the low
 * halves directly and vpternlogq does the three-way xor in one instruction; four vectors are
 * interleaved to hide the multiply latency. About 0.7 ns (under 3 cycles) per block on the
 * development machine (an AVX-512 EPYC), against twice that for the auto-vectorised loop with
 * vpmullq. */
#  define ROUND512(x0, x1, x2, x3, r)                                                           \
    do {                                                                                        \
        __m512i p0_ = _mm512_mul_epu32(x0, m0);                                                 \
        __m512i p1_ = _mm512_mul_epu32(x2, m1);                                                 \
        x0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1_, 32), x1, k0[r], 0x96);            \
        x1 = p1_;                                                                               \
        x2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0_, 32), x3, k1[r], 0x96);            \
        x3 = p0_;                                                                               \
    } while (0)

#  define LOAD8(a, i) _mm512_cvtepu32_epi64(_mm256_load_si256((const __m256i *)((a) + (i))))
/* The words of 16 blocks (the low halves of two vectors' lanes) packed by one two-source
 * permute and written with one 64-byte store. Besides saving an instruction over two
 * narrowing stores, this matters for speed: the transform's vectorised loop reads the words
 * back with 64-byte loads right away, and a load that spans two separate 32-byte stores
 * cannot be forwarded from the store buffer (it waits until they reach the cache), which
 * cost about 10% of the normals' time. */
#  define STORE16(a, i, lo, hi)                                                                \
      _mm512_store_si512((void *)((a) + (i)), _mm512_permutex2var_epi32(lo, even, hi))

/* The kernel, for counters read from `ctr` or, when `row` is set, generated in registers for
 * blocks j0, j0 + 1, ... of one row (the common case of long rows: no counter arrays to fill
 * and load back, and no store-forwarding stall on them). Inlined into its two callers with
 * `row` a constant. */
__attribute__((target("avx512f"), always_inline)) static inline void
philox_avx512(const sde__philox_ctr *restrict ctr, int row, uint32_t j0, uint32_t cw1,
              uint64_t sample, const uint32_t key[2], sde__philox_out *restrict out)
{
    uint32_t rk0[PHILOX_ROUNDS], rk1[PHILOX_ROUNDS];
    round_keys(key, rk0, rk1);
    __m512i k0[PHILOX_ROUNDS], k1[PHILOX_ROUNDS];
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        k0[r] = _mm512_set1_epi64((long long)rk0[r]);
        k1[r] = _mm512_set1_epi64((long long)rk1[r]);
    }
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    const __m512i c1 = _mm512_set1_epi64((long long)(row ? cw1 : ctr->c1));
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    /* row mode: lane l of the group at i is block j0 + i + l (the high halves may carry past
     * 2^32: garbage, which the rounds ignore) */
    const __m512i iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i s2 = _mm512_set1_epi64((long long)(uint32_t)sample);
    const __m512i s3 = _mm512_set1_epi64((long long)(sample >> 32));
#  define CTR0(i) (row ? _mm512_add_epi64(_mm512_set1_epi64((long long)j0 + (i)), iota)       \
                       : LOAD8(ctr->c0, i))
#  define CTR2(i) (row ? s2 : LOAD8(ctr->c2, i))
#  define CTR3(i) (row ? s3 : LOAD8(ctr->c3, i))
    for (int i = 0; i < SDE__PHILOX_CHUNK; i += 32) {
        __m512i a0 = CTR0(i), a1 = c1, a2 = CTR2(i), a3 = CTR3(i);
        __m512i b0 = CTR0(i + 8), b1 = c1, b2 = CTR2(i + 8), b3 = CTR3(i + 8);
        __m512i c0 = CTR0(i + 16), cc1 = c1, c2 = CTR2(i + 16), c3 = CTR3(i + 16);
        __m512i d0 = CTR0(i + 24), d1 = c1, d2 = CTR2(i + 24), d3 = CTR3(i + 24);
        for (int r = 0; r < PHILOX_ROUNDS; r++) {
            ROUND512(a0, a1, a2, a3, r);
            ROUND512(b0, b1, b2, b3, r);
            ROUND512(c0, cc1, c2, c3, r);
            ROUND512(d0, d1, d2, d3, r);
        }
        STORE16(out->w[0], i, a0, b0);
        STORE16(out->w[1], i, a1, b1);
        STORE16(out->w[2], i, a2, b2);
        STORE16(out->w[3], i, a3, b3);
        STORE16(out->w[0], i + 16, c0, d0);
        STORE16(out->w[1], i + 16, cc1, d1);
        STORE16(out->w[2], i + 16, c2, d2);
        STORE16(out->w[3], i + 16, c3, d3);
    }
#  undef CTR0
#  undef CTR2
#  undef CTR3
}

__attribute__((target("avx512f"))) static void chunk_avx512(const sde__philox_ctr *restrict ctr,
                                                            const uint32_t key[2],
                                                            sde__philox_out *restrict out)
{
    philox_avx512(ctr, 0, 0, 0, 0, key, out);
}

__attribute__((target("avx512f"))) static void row_avx512(uint32_t j0, uint32_t c1,
                                                          uint64_t sample, const uint32_t key[2],
                                                          sde__philox_out *restrict out)
{
    philox_avx512(NULL, 1, j0, c1, sample, key, out);
}
#endif

int sde__philox_avx512(void)
{
#if SDE__HAVE_AVX512_PATH
    static int cached = -1; /* benign race: every thread computes the same value */
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cached && !sde__philox_force_generic;
#else
    return 0;
#endif
}

int sde__philox_force_generic = 0;

void sde__philox_chunk(const sde__philox_ctr *restrict ctr, const uint32_t key[2],
                       sde__philox_out *restrict out)
{
#if SDE__HAVE_AVX512_PATH
    if (sde__philox_avx512()) {
        chunk_avx512(ctr, key, out);
        return;
    }
#endif
    chunk_generic(ctr, key, out);
}

void sde__philox_chunk_row(uint32_t j0, uint32_t c1, uint64_t sample, const uint32_t key[2],
                           sde__philox_out *restrict out)
{
#if SDE__HAVE_AVX512_PATH
    if (sde__philox_avx512()) {
        row_avx512(j0, c1, sample, key, out);
        return;
    }
#endif
    sde__philox_ctr ctr;
    for (int i = 0; i < SDE__PHILOX_CHUNK; i++) {
        ctr.c0[i] = j0 + (uint32_t)i;
        ctr.c2[i] = (uint32_t)sample;
        ctr.c3[i] = (uint32_t)(sample >> 32);
    }
    ctr.c1 = c1;
    chunk_generic(&ctr, key, out);
}
