#define _POSIX_C_SOURCE 200809L
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double bu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bu_best_time(void (*fn)(void *), void *arg, int repeats)
{
    double best = 1e300;
    for (int r = 0; r < repeats; r++) {
        double t0 = bu_now();
        fn(arg);
        double dt = bu_now() - t0;
        if (dt < best)
            best = dt;
    }
    return best;
}

double *bu_alloc(size_t n)
{
    double *p = malloc(n * sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "benchmark: out of memory (%zu doubles)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (double)(i % 7) * 0.25;
    return p;
}

/* One pass of the floor kernel with K inputs: a compile-time K after inlining, so that the
 * sum is straight-line code and the loop vectorises. */
static inline void stream_pass_k(int K, double *restrict out, double *const *in, size_t n)
{
    const double *p[BU_STREAM_MAX_IN];
    for (int k = 0; k < K; k++)
        p[k] = in[k];
    for (size_t i = 0; i < n; i++) {
        double acc = 0.5;
        for (int k = 0; k < K; k++)
            acc += p[k][i];
        out[i] = acc;
    }
}

static void stream_pass(int k, double *restrict out, double *const *in, size_t n)
{
    switch (k) {
    case 0: stream_pass_k(0, out, in, n); break;
    case 1: stream_pass_k(1, out, in, n); break;
    case 2: stream_pass_k(2, out, in, n); break;
    case 3: stream_pass_k(3, out, in, n); break;
    case 4: stream_pass_k(4, out, in, n); break;
    case 5: stream_pass_k(5, out, in, n); break;
    case 6: stream_pass_k(6, out, in, n); break;
    case 7: stream_pass_k(7, out, in, n); break;
    default: stream_pass_k(8, out, in, n); break;
    }
}

struct stream_args {
    int k;
    double *in[BU_STREAM_MAX_IN];
    double *out;
    size_t n;
};

static void stream_run(void *p)
{
    struct stream_args *a = p;
    stream_pass(a->k, a->out, a->in, a->n);
}

double bu_stream_time(size_t n, int k, int repeats)
{
    struct stream_args a = {k < 0 ? 0 : k > BU_STREAM_MAX_IN ? BU_STREAM_MAX_IN : k, {NULL},
                            bu_alloc(n), n};
    for (int j = 0; j < a.k; j++)
        a.in[j] = bu_alloc(n);
    stream_run(&a); /* first touch */
    double t = bu_best_time(stream_run, &a, repeats);
    volatile double sink = a.out[n / 2]; /* the result is used */
    (void)sink;
    for (int j = 0; j < a.k; j++)
        free(a.in[j]);
    free(a.out);
    return t;
}

void bu_stream_prices(size_t n, int repeats, double *read, double *write)
{
    double t1 = bu_stream_time(n, 1, repeats), t8 = bu_stream_time(n, BU_STREAM_MAX_IN, repeats);
    double r = (t8 - t1) / (BU_STREAM_MAX_IN - 1), w = t1 - r;
    if (r <= 0.0 || w <= 0.0) /* noisy tiny arrays: price reads and writes alike */
        r = w = t1 / 2.0;
    *read = r;
    *write = w;
}

double bu_stream_floor(size_t read_doubles, size_t write_doubles, int repeats)
{
    /* model the traffic as whole arrays of the written size */
    size_t n = write_doubles > 0 ? write_doubles : read_doubles;
    if (n == 0)
        return 0.0;
    size_t n_in = (read_doubles + n - 1) / n;
    size_t n_out = (write_doubles + n - 1) / n;
    if (n_out == 0)
        n_out = 1;
    if (n_in <= BU_STREAM_MAX_IN)
        return bu_stream_time(n, (int)n_in, repeats) * (double)n_out;
    double r, w;
    bu_stream_prices(n, repeats, &r, &w);
    return (double)n_in * r + (double)n_out * w;
}

void bu_dopri5_traffic(uint64_t nfe, uint64_t accepted, uint64_t rejected, int per_sample,
                       size_t batch, double *R, double *W)
{
    double unit = per_sample ? 1.0 / (double)batch : 1.0; /* one step's share of a state */
    double att = (double)(accepted + rejected) * unit, acc = (double)accepted * unit;
    *R = 34.0 * att + (per_sample ? 2.0 * acc : 0.0) + (double)nfe + 3.0 + 8.0;
    *W = 6.0 * att + (per_sample ? 2.0 * acc : 0.0) + 2.0 + 1.0;
}
