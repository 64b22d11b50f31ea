/* Internal helpers shared by the library's translation units. Never installed.
 * Names use the sde__ prefix; none is exported (hidden visibility + version script). */
#ifndef SDE_PRIVATE_H
#define SDE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sde/sde.h>

#if defined(__GNUC__)
#  define SDE__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define SDE__PRINTF(a, b)
#endif

/* ---- errors (error.c) ---------------------------------------------------------------- */

/* Record "<func>: <formatted message>" as the calling thread's last error and return status.
 * Use as: return sde__fail(SDE_E_INVALID, __func__, "beta_min (%g) must be >= 0", b); */
int sde__fail(int status, const char *func, const char *fmt, ...) SDE__PRINTF(3, 4);

/* Report a failed host callback: keeps a message the host left with sde_set_error_message(),
 * otherwise writes "<what> returned <rc>". Returns SDE_E_CALLBACK. Call right after the
 * callback returned rc != 0. */
int sde__callback_failed(const char *func, const char *what, int rc);

/* Called at the start of each public callback-invoking operation so that a stale host message
 * from an earlier call is not mistaken for a fresh one. */
void sde__callback_message_reset(void);

/* Shorthands for the argument checks every public function starts with. Each returns SDE_OK or
 * records a message naming the argument and returns the status. */
#define SDE__PI 3.14159265358979323846
#define SDE__LN2 0.69314718055994530942

#define SDE__CHECK(expr) do { int sde__rc = (expr); if (sde__rc != SDE_OK) return sde__rc; } while (0)
int sde__check_ptr(const void *p, const char *func, const char *name);
int sde__check_size(size_t n, const char *func, const char *name); /* n >= 1 */
/* batch >= 1, dim >= 1 and batch*dim*sizeof(double) representable. */
int sde__check_shape(size_t batch, size_t dim, const char *func);
/* t[b] finite and within [0, T] for all b. */
int sde__check_times(const double *t, size_t batch, double T, const char *func);

/* ---- options (options.c) ------------------------------------------------------------- */

/* The refusal of an option number a setter does not take: SDE_E_INVALID with a message naming
 * the option, the wanted type (SDE_OPTION_INT or SDE_OPTION_REAL) and the object ("a
 * predictor"). */
int sde__not_an_option(int option, int type, const char *object, const char *func);

/* ---- allocation (alloc.c) ------------------------------------------------------------ */

/* All library allocations go through these, so that tests can inject failures. Overflowing
 * n*size returns NULL. */
void *sde__malloc(size_t size);
void *sde__calloc(size_t n, size_t size);
void *sde__malloc_array(size_t n, size_t size);
void sde__free(void *p);
/* Fault injection for white-box tests: make the n-th allocation from now (1-based) fail and
 * every later one succeed; 0 disables. Process-wide and not thread-safe; tests only. */
void sde__alloc_fail_after(long n);
/* Number of allocations minus frees since start (leak checks in white-box tests). */
long sde__alloc_live(void);

/* ---- vector kernels (vecops.c; OpenBLAS underneath) --------------------------------- */

double sde__dot(size_t n, const double *x, const double *y);
double sde__sumsq(size_t n, const double *x);
double sde__nrm2(size_t n, const double *x);
void sde__axpy(size_t n, double alpha, const double *x, double *y);
/* Index of the first non-finite value in x[0..n), or n if all are finite. */
size_t sde__find_nonfinite(size_t n, const double *x);

/* Deterministic reductions that vectorise. A floating-point sum kept in one accumulator is a
 * dependency chain the compiler must not reorder (no -ffast-math here), so the loop runs
 * scalar. Kernels that reduce keep SDE__LANES partial sums instead (lane j takes the elements
 * k with k % SDE__LANES == j, the tail included) and combine them with sde__lanes_sum: the
 * order is fixed by the source, so every build, clone and thread count gives the same bits. */
enum { SDE__LANES = 8 };
static inline double sde__lanes_sum(const double p[SDE__LANES])
{
    return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

/* A finiteness flag that reduces with an integer OR (which vectorises on every target): the
 * exponent field plus one exponent unit carries into bit 63 exactly when the exponent is all
 * ones, i.e. when v is Inf or NaN. OR the flags of a loop and test sde__nonfinite_seen(). */
static inline uint64_t sde__nonfinite_flag(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & UINT64_C(0x7ff0000000000000)) + UINT64_C(0x0010000000000000);
}
static inline int sde__nonfinite_seen(uint64_t flags) { return (int)(flags >> 63); }

/* sum_k x[k] y[k] with SDE__LANES partials: vectorises, and its bits depend only on n and the
 * data (unlike a BLAS dot, whose order depends on the CPU kernel and its thread count). */
static inline double sde__dot_fixed(size_t n, const double *x, const double *y)
{
    double p[SDE__LANES] = {0.0};
    size_t k = 0;
    for (; k + SDE__LANES <= n; k += SDE__LANES)
        for (int j = 0; j < SDE__LANES; j++)
            p[j] += x[k + j] * y[k + j];
    for (int j = 0; k < n; k++, j++)
        p[j] += x[k] * y[k];
    return sde__lanes_sum(p);
}

/* ---- noise internals (noise.c) ------------------------------------------------------- */

/* Fill out[batch*dim] for the built-in generator at an explicit draw counter, without touching
 * any handle: the pure function behind sde_noise_draw (also used for multi-threaded fills). */
void sde__philox_fill(uint64_t seed, uint64_t draw, int kind, double param, double *out,
                      size_t batch, size_t dim, size_t sample_offset);

/* Whether a noise source is the built-in generator (its values may then be computed from any
 * thread with sde__philox_fill) rather than a host callback. */
int sde__noise_is_philox(const sde_noise *noise);

/* ---- process internals (process*.c) -------------------------------------------------- */

/* Scalar per-time helpers; the process must be valid and t checked by the caller. */
void sde__process_marginal1(const sde_process *p, double t, double *a, double *s);
/* One sample's marginal for any process, without allocating: custom processes call their
 * marginal callback with batch 1 (SDE_E_UNSUPPORTED without one). Messages name `func`. */
int sde__process_marginal_at(const sde_process *p, double t, double *a, double *s,
                             const char *func);
double sde__process_diffusion1(const sde_process *p, double t); /* built-in kinds only */
int sde__process_is_custom(const sde_process *p);
/* Copy a process (models keep their own copy). */
int sde__process_clone(const sde_process *p, sde_process **out);
/* Table access for built-ins with valid tables (callers check first). */
const double *sde__process_table_ptr(const sde_process *p, int table);
/* Refuse processes without usable tables, naming the caller. */
int sde__process_require_tables(const sde_process *p, const char *func);
int64_t sde__process_index1(const sde_process *p, double t);

#endif /* SDE_PRIVATE_H */
