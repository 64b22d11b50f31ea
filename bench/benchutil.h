/* Shared helpers of the benchmark programs: wall-clock timing (best of several repeats, so
 * that a noisy shared machine reports its quiet moments), the memory-traffic floor (the one
 * stream kernel every benchmark prices its floor with) and the traffic model of the library's
 * embedded Runge-Kutta driver. */
#ifndef SDE_BENCHUTIL_H
#define SDE_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic wall-clock time in seconds. */
double bu_now(void);

/* Best (smallest) time in seconds of `repeats` runs of fn(arg). */
double bu_best_time(void (*fn)(void *), void *arg, int repeats);

/* The floor kernel: out[i] = 0.5 + in_1[i] + ... + in_k[i] over arrays of n doubles, for a
 * fixed k (0 <= k <= BU_STREAM_MAX_IN) with restrict pointers, so that the compiler vectorises
 * it as it does the library's element-wise loops and it runs at memory speed, not at the speed
 * of scalar adds. Best time in seconds of one pass, of `repeats`. */
enum { BU_STREAM_MAX_IN = 8 };
double bu_stream_time(size_t n, int k, int repeats);

/* Prices of the floor for arrays of n doubles, measured now with that kernel: `read` seconds
 * per array read, `write` per array written (r = (t(8) - t(1)) / 7, w = t(1) - r; when noise
 * makes either non-positive, both are t(1) / 2). A method that reads R and writes W such arrays
 * has the floor R read + W write. */
void bu_stream_prices(size_t n, int repeats, double *read, double *write);

/* The floor kernel's time to stream `read_doubles` in and `write_doubles` out, modelled as
 * whole arrays of the written size (of the read size if nothing is written). */
double bu_stream_floor(size_t read_doubles, size_t write_doubles, int repeats);

/* Traffic of the library's DOPRI5 driver (lib/ode_adaptive.c) outside the right-hand side, in
 * state-sized arrays read (*R) and written (*W), from an integration's statistics: accepted
 * and rejected steps (summed over rows in per-sample mode) of a batch of `batch` rows. Counted
 * from the code, one term per pass a step must make:
 * - per step attempt, stages 1..5 form y + h sum_j a_sj K_j (the stage's nonzero a_sj: 1..5
 *   derivatives, plus y; 20R + 5W), the new state y + h sum_j b_j K_j (b_2 = 0: 6R + 1W), and
 *   the error norm of h sum_j e_j K_j (e_2 = 0) scaled by y and the new state (8R): 34R + 6W;
 *   in per-sample mode per row (a 1/batch share of a state), and rows that have finished skip
 *   it;
 * - per accepted step, per-sample mode copies the row's new state and FSAL derivative into
 *   place (2R + 2W per row); whole-batch mode swaps pointers;
 * - per RHS call, the finiteness check of the derivative (1R);
 * - per run, the check of y and the copies in and out (3R + 2W), and the first-step selection
 *   (norms of y, f(y), the probe y + h f(y), and of f(probe) - f(y): 8R + 1W). */
void bu_dopri5_traffic(uint64_t nfe, uint64_t accepted, uint64_t rejected, int per_sample,
                       size_t batch, double *R, double *W);

/* malloc that exits the benchmark with a message on failure (benchmarks only). */
double *bu_alloc(size_t n);

#endif
