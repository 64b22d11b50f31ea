/* Internals of predictor-corrector sampling, shared by pc_pool.c, pc_kernels.c, predictor.c,
 * corrector.c and pc_sampler.c. Never installed.
 *
 * Structure: a predictor or corrector is a *configuration* (kind, process, options) plus a
 * *workspace* (scratch buffers, thread pool). The stand-alone steppers own both; the sampler
 * owns one workspace shared by its predictor and corrector configurations. A step runs in
 * three parts on the calling thread -- the model call, the noise draw, the per-sample
 * coefficients -- and then one (or two) element-wise phases that may run on several threads,
 * split by rows. Only the calling-thread parts can fail, and they come before anything is
 * written, which is what keeps the caller's arrays untouched on error. */
#ifndef SDE_PC_PRIVATE_H
#define SDE_PC_PRIVATE_H

#include <sde/sampler.h>

#include "sde_private.h"

/* Doubles per thread tile: 32 KiB, so a tile of rows stays in L1/L2 between the noise fill,
 * the norms and the update. */
enum { SDE__PC_TILE = 4096 };

/* The largest thread count (the upper bound of SDE_OPT_PC_THREADS in options_table.h): sizes
 * the per-thread slots of the phases that reduce. */
enum { SDE__MAX_THREADS = 256 };

/* Per-row coefficient arrays in the workspace's row block (each max_batch doubles). */
enum { SDE__ROW_A, SDE__ROW_C, SDE__ROW_S, SDE__ROW_D, SDE__ROW_GN, SDE__ROW_ZN, SDE__ROW_E,
       SDE__ROW_ALPHA, SDE__ROW_T, SDE__ROW_COUNT };

/* ---- thread pool (pc_pool.c) ---------------------------------------------------------- */

typedef struct sde__pool sde__pool;
typedef void (*sde__pool_fn)(void *ctx, int tid, int nthreads);

/* Start nthreads - 1 workers (nthreads >= 2); the caller is thread 0 of every run. */
int sde__pool_new(sde__pool **out, int nthreads, const char *func);
/* Stop and join the workers. Accepts NULL. */
void sde__pool_free(sde__pool *pool);
/* Run fn(ctx, tid, n) on every thread (the caller as tid 0) and wait for all. NULL pool: one
 * thread. fn must not fail. */
void sde__pool_run(sde__pool *pool, sde__pool_fn fn, void *ctx);

/* Rows [*r0, *r1) of thread tid out of n for a batch (contiguous, deterministic split). */
void sde__rows_of(size_t batch, int tid, int n, size_t *r0, size_t *r1);

/* ---- workspace (pc_kernels.c) --------------------------------------------------------- */

typedef struct sde__pc_work {
    size_t dim, max_batch;
    double *score; /* state-sized: the model's score */
    double *z;     /* state-sized: whole-batch draws (callback sources, long rows) */
    double *drift; /* state-sized, custom processes only */
    double *copy;  /* state-sized, stand-alone corrector with n_steps > 1 only */
    double *rows;  /* SDE__ROW_COUNT * max_batch per-row values */
    double *tiles; /* threads * SDE__PC_TILE */
    double *sums;  /* 2 * max_batch * tiles per row: per-tile sums of squares (norms) */
    int threads;
    sde__pool *pool; /* NULL when threads == 1 */
} sde__pc_work;

/* Allocate the buffers (state-sized ones only if `state`; the drift if `drift`). On failure
 * everything allocated is released and SDE_E_NOMEM recorded. */
int sde__pc_work_init(sde__pc_work *w, size_t dim, size_t max_batch, int state, int drift,
                      const char *func);
void sde__pc_work_release(sde__pc_work *w);
/* Change the thread count (restarts the pool, resizes the tiles); unchanged on failure. */
int sde__pc_work_set_threads(sde__pc_work *w, int threads, const char *func);
/* Allocate the corrector's working copy if absent. */
int sde__pc_work_reserve_copy(sde__pc_work *w, const char *func);
size_t sde__pc_work_bytes(const sde__pc_work *w);
/* Tiles of SDE__PC_TILE elements in a row of dim (the last one may be partial). */
static inline size_t sde__pc_tiles_per_row(size_t dim)
{
    return (dim + SDE__PC_TILE - 1) / SDE__PC_TILE;
}
static inline double *sde__row(const sde__pc_work *w, int which)
{
    return w->rows + (size_t)which * w->max_batch;
}

/* ---- noise ---------------------------------------------------------------------------- */

enum { SDE__NOISE_NONE = 0, SDE__NOISE_BUFFER = 1, SDE__NOISE_PHILOX = 2 };

/* Where the rows of one draw come from inside an element-wise phase. */
typedef struct sde__noise_plan {
    int mode;
    const double *z;     /* BUFFER: the whole batch */
    uint64_t seed, draw; /* PHILOX: the key and draw counter of this draw */
    size_t offset;       /* PHILOX: global sample index of row 0 */
    double *zfull;       /* PHILOX: state-sized buffer for rows that do not fit a tile */
    int to_buffer;       /* PHILOX: always fill into zfull (kept for a later phase) */
} sde__noise_plan;

/* One whole-batch normal draw on the calling thread. A Philox source with a known seed only
 * advances its counter here, and the values are computed inside the element-wise phase (per
 * tile of rows, on whichever thread owns them: identical values, since Philox is keyed by the
 * global sample index); any other source is drawn into w->z. need_values = 0 still makes the
 * draw (draw counts, and tape replays, do not depend on it) but does not compute values. */
int sde__pc_draw(sde__pc_work *w, sde_noise *noise, size_t batch, size_t offset,
                 int need_values, int to_buffer, sde__noise_plan *plan);
/* After a phase that filled every row into zfull: read them from there. */
void sde__noise_plan_to_buffer(sde__noise_plan *plan);

/* ---- element-wise phases (pc_kernels.c) ----------------------------------------------- */

/* x_mean = A x + C g (+ D f); out = x_mean + S z (or x_mean when no noise is added).
 * xin and xout may be the same array; xm may be NULL. With `model` set, g holds the raw
 * network output evaluated at xin and each part of it is converted to the score in place
 * just before its update (the adapter's pass fused into this one): only for callers that
 * may leave xout half-written when the returned flags show a non-finite score (the sampler's
 * own state buffer). */
typedef struct sde__affine_job {
    size_t dim, batch;
    const double *A, *C, *S, *D; /* per row; D only with f */
    const double *f;
    double *g;
    const double *xin;
    double *xout, *xm;
    int add_noise;
    sde__noise_plan nz;
    const sde_model *model;
    double *tiles;
    uint64_t flags[SDE__MAX_THREADS];
} sde__affine_job;
/* Returns the OR of the conversion's finiteness flags (0 without model). */
uint64_t sde__run_affine(sde__pc_work *w, sde__affine_job *job);

/* Langevin with per-sample norms: e_b = 2 alpha_b (snr |z_b| / |g_b|)^2 (0 if |g_b| = 0), then
 * the affine update with A = 1, C = e, S = sqrt(2 e). e_out[b] gets e_b. Rows that fit a tile
 * run fused (noise, norms, update per tile of rows); longer rows run sde__run_norms and then
 * sde__run_affine, both split by tiles, using the workspace's A, C, S, GN and ZN rows. */
typedef struct sde__langevin_job {
    size_t dim, batch;
    const double *alpha;
    double snr;
    double *g;
    const double *xin;
    /* With model set, g is the raw network output, converted in place in the phase that
     * first reads it: on long rows the norms phase (before anything is written, see
     * sde__norms_job), on short rows the fused row loop -- which writes rows before later
     * ones are checked, so only for the sampler's own state. */
    const sde_model *model;
    double *xout, *xm, *e_out;
    sde__noise_plan nz;
    double *tiles;
    uint64_t flags[SDE__MAX_THREADS];
} sde__langevin_job;
/* Returns the conversion's finiteness flags (0 without model); when they show a non-finite
 * score, nothing was written on long rows, and xout is garbage on short ones. */
uint64_t sde__run_langevin(sde__pc_work *w, sde__langevin_job *job);

/* Per-row norms |g_b| and |z_b| (Langevin on long rows; reference mode's batch means). The
 * noise rows are kept in zfull. Split over the pool by rows or, when there are fewer rows than
 * threads, by tiles of every row; the values are sde__row_norm's whatever the split. */
typedef struct sde__norms_job {
    size_t dim, batch;
    double *g;
    double *gn, *zn;
    sde__noise_plan nz;
    /* With model set, g holds the raw network output (sde__pc_score_call) and is converted
     * to the score in place as the norms read it, x being the state it was evaluated at: the
     * adapter's pass fused into this one, which reads all of g before anything is written. */
    const sde_model *model;
    const double *x;
} sde__norms_job;
/* Returns the OR of the conversion's finiteness flags (0 without model); when
 * sde__nonfinite_seen() of it, the norms were not formed. */
uint64_t sde__run_norms(sde__pc_work *w, sde__norms_job *job);

/* Euclidean norm of v[0..n) in a fixed summation order: per tile of SDE__PC_TILE elements
 * SDE__LANES interleaved partial sums (sde__lanes_sum), then the tile sums in tile order. A
 * row's norm so never depends on threads, batch splits or how its tiles were shared. */
double sde__row_norm(const double *v, size_t n);

/* ---- shared checks and helpers (pc_kernels.c) ----------------------------------------- */

/* linspace(start, end, n)[i] in PyTorch's operation order (from the nearer end). */
double sde__linspace_at(double start, double end, int64_t n, int64_t i);

/* The model must be built for the same process (kind and parameters) and dim. */
int sde__pc_check_model(const sde_process *own, size_t dim, const sde_model *model,
                        const char *func);
/* Common argument checks of a step: pointers, 1 <= batch <= max_batch, dim, sample range,
 * times in [0, T]. */
int sde__pc_check_step(const sde_process *p, const sde__pc_work *w, const sde_model *model,
                       const sde_noise *noise, const double *t, const double *x, size_t batch,
                       size_t dim, size_t sample_offset, const char *func);

/* Per-step context: what the step needs from its caller, and how to name it in messages. */
typedef struct sde__step_ctx {
    sde_model *model;
    sde_noise *noise;
    const double *t; /* [batch] */
    size_t batch, offset;
    const char *func; /* the public function, for messages */
    int in_sampler;   /* messages name the grid step */
    size_t step, nsteps;
    double tk;
    uint64_t calls; /* model calls made (incremented on success) */
} sde__step_ctx;

/* Re-record the last error (from a model call, a draw, a process callback) as a failure of
 * `what` ("Langevin corrector") at the context's step; returns rc. */
int sde__pc_step_failed(const sde__step_ctx *ctx, const char *what, int rc);

/* One model evaluation into w->score, counted, failures named by `what`. */
int sde__pc_score(sde__pc_work *w, sde__step_ctx *ctx, const double *x, const char *what);
/* The same in parts, for phases that convert the output themselves (sde__run_norms with a
 * model): the network call; then, with the phase's finiteness flags, the check and the count
 * (sde__pc_score_converted) -- or, when the step fails before that phase, its own conversion
 * pass and check (sde__pc_score_finish), so that errors come in the same order as with
 * sde__pc_score. */
int sde__pc_score_call(sde__pc_work *w, sde__step_ctx *ctx, const double *x, const char *what);
int sde__pc_score_converted(sde__pc_work *w, sde__step_ctx *ctx, uint64_t flags,
                            const char *what);
int sde__pc_score_finish(sde__pc_work *w, sde__step_ctx *ctx, const double *x,
                         const char *what);

/* ---- predictor and corrector configurations ------------------------------------------- */

typedef struct sde__pred_cfg {
    int kind;
    const sde_process *process;
    int probability_flow, reference;
} sde__pred_cfg;

typedef struct sde__corr_cfg {
    int kind;
    const sde_process *process;
    double snr;
    int64_t n_steps;
    int reference;
    int batch_norms; /* Langevin: batch-mean norms (also implied by reference) */
} sde__corr_cfg;

/* predictor.c */
const char *sde__pred_what(int kind); /* "Euler-Maruyama predictor", ... */
int sde__pred_check_new(const sde_process *p, int kind, const char *func);
int sde__pred_check_config(const sde__pred_cfg *cfg, const char *func);
int sde__pred_needs_drift(const sde_process *p, int kind);
/* One predictor step of ctx->batch rows, x in place. mean_only: x receives the mean and no
 * noise is added (the draw is still made); x_mean is then ignored. Counter restore is the
 * caller's job. */
int sde__predict(const sde__pred_cfg *cfg, sde__pc_work *w, sde__step_ctx *ctx, double dt,
                 double *x, double *x_mean, int mean_only);

/* corrector.c */
const char *sde__corr_what(int kind);
int sde__corr_check_new(const sde_process *p, int kind, const char *func);
int sde__corr_check_config(const sde__corr_cfg *cfg, const char *func);
/* alpha of the step size at one time (the configuration must pass the checks). */
double sde__corr_alpha1(const sde__corr_cfg *cfg, double t);
/* n_steps iterations. in_place: update x directly (the sampler's own buffer); otherwise the
 * intermediate iterations go through w->copy (required when n_steps > 1) so x is written
 * only by the last one. x_mean may be NULL. */
int sde__correct(const sde__corr_cfg *cfg, sde__pc_work *w, sde__step_ctx *ctx, double *x,
                 double *x_mean, int in_place);

/* Option plumbing shared by the three objects. */
int sde__pc_bool_option(int64_t value, const char *func, const char *name);
int sde__pc_int_option(int option, int64_t value, const char *func);
int sde__pc_real_option(int option, double value, const char *func);

#endif /* SDE_PC_PRIVATE_H */
