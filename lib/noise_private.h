/* Internals shared by philox.c, noise.c and the white-box RNG tests. Never installed. */
#ifndef SDE_NOISE_PRIVATE_H
#define SDE_NOISE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

/* Function multi-versioning for the chunk loops, which are plain C that the compiler
 * vectorises: an AVX-512 clone (x86-64-v4) and an AVX2 + FMA clone (x86-64-v3) next to the
 * baseline (whose fma() calls go to libm: correct, but slow on CPUs without FMA), picked at
 * load time by an ifunc resolver, so no -march flag is needed. Needs GCC on x86-64 ELF with
 * glibc; elsewhere there is just the baseline. Every clone computes the same bits: the integer
 * code trivially, the floating-point code because it uses only correctly rounded operations
 * and FP contraction is off (see noise.c; the tests compare clones with scalar code). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) &&   \
    defined(__GLIBC__)
#  define SDE__CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#  define SDE__HAVE_AVX512_PATH 1
#else
#  define SDE__CLONES
#  define SDE__HAVE_AVX512_PATH 0
#endif

/* Whether the hand-written AVX-512 Philox kernel runs (the CPU has AVX-512F and the tests
 * have not set sde__philox_force_generic, which makes every chunk take the portable loop so
 * that the two can be compared). */
int sde__philox_avx512(void);
extern int sde__philox_force_generic;

/* Blocks per call of the chunk kernel. A compile-time trip count lets the compiler vectorise
 * the loops without scalar epilogues; every block of every draw goes through the same code,
 * so a value never depends on where its block fell inside a chunk. 256 rather than 64: the
 * per-call set-up (round keys, the transform's constants) is then a few percent less of the
 * time, and long rows (1536 blocks for 3 x 32 x 32) still divide into whole chunks. */
enum { SDE__PHILOX_CHUNK = 256 };

/* Counters of one chunk in structure-of-arrays form (lane i is block i). Word 1 of the counter
 * (the low half of the draw counter) is the same for every block of a draw, so it is a
 * scalar. */
typedef struct sde__philox_ctr {
    _Alignas(64) uint32_t c0[SDE__PHILOX_CHUNK];
    _Alignas(64) uint32_t c2[SDE__PHILOX_CHUNK];
    _Alignas(64) uint32_t c3[SDE__PHILOX_CHUNK];
    uint32_t c1;
} sde__philox_ctr;

/* Output words w0..w3 of the chunk's blocks, again one array per word. */
typedef struct sde__philox_out {
    _Alignas(64) uint32_t w[4][SDE__PHILOX_CHUNK];
} sde__philox_out;

/* Philox4x32-10 of all SDE__PHILOX_CHUNK blocks of `ctr` under `key`. */
void sde__philox_chunk(const sde__philox_ctr *restrict ctr, const uint32_t key[2],
                       sde__philox_out *restrict out);

/* The same for the blocks j0, j0 + 1, ..., j0 + SDE__PHILOX_CHUNK - 1 of one row (counter words
 * (j, c1, sample & 0xffffffff, sample >> 32)): the common case of long rows, whose counters
 * the AVX-512 kernel makes in registers. Block numbers wrap modulo 2^32 (lanes past the end
 * of a row are computed and discarded by the callers). Bit for bit sde__philox_chunk of the
 * same counters. */
void sde__philox_chunk_row(uint32_t j0, uint32_t c1, uint64_t sample, const uint32_t key[2],
                           sde__philox_out *restrict out);

/* The normal pair (even, odd element) that the stream layout derives from one block's words
 * w[0..3], computed by scalar code. The chunk path must agree with it bit for bit; tests
 * compare the two so that a vectorised clone can never drift from the portable result. */
void sde__normal_pair(const uint32_t w[4], double z[2]);

/* Normals of elements e0 .. e1 - 1 (e0 even) of row `sample` of a draw, into out[e1 - e0]:
 * bit for bit what sde__philox_fill writes there (long rows split between threads). */
void sde__philox_normals_part(uint64_t seed, uint64_t draw, double *out, uint64_t sample,
                              size_t e0, size_t e1);

#endif /* SDE_NOISE_PRIVATE_H */
