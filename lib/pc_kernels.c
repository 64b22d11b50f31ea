/* The element-wise phases of the PC steppers (fused row loops, split by rows over the pool),
 * the shared workspace, the noise plan, and the checks the three objects share. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"
#include "noise_private.h"
#include "pc_private.h"

/* ---- workspace ------------------------------------------------------------------------ */

static double *alloc_doubles(size_t n, const char *func, const char *what)
{
    double *p = sde__malloc_array(n, sizeof *p);
    if (p == NULL)
        sde__fail(SDE_E_NOMEM, func, "cannot allocate the %s (%zu doubles)", what, n);
    return p;
}

int sde__pc_work_init(sde__pc_work *w, size_t dim, size_t max_batch, int state, int drift,
                      const char *func)
{
    memset(w, 0, sizeof *w);
    w->dim = dim;
    w->max_batch = max_batch;
    w->threads = 1;
    size_t n = max_batch * dim; /* representable: checked by the callers */
    int ok = 1;
    if (state) {
        ok = (w->score = alloc_doubles(n, func, "score buffer")) != NULL &&
             (w->z = alloc_doubles(n, func, "noise buffer")) != NULL;
        if (ok && drift)
            ok = (w->drift = alloc_doubles(n, func, "drift buffer")) != NULL;
    }
    if (ok && max_batch > SIZE_MAX / sizeof(double) / SDE__ROW_COUNT) {
        sde__fail(SDE_E_DIM, func, "max_batch (%zu) is too large", max_batch);
        sde__pc_work_release(w);
        return SDE_E_DIM;
    }
    if (ok)
        ok = (w->rows = alloc_doubles(SDE__ROW_COUNT * max_batch, func, "per-sample arrays")) !=
             NULL;
    if (ok && state)
        ok = (w->tiles = alloc_doubles(SDE__PC_TILE, func, "noise tile")) != NULL;
    if (ok && state)
        ok = (w->sums = alloc_doubles(2 * max_batch * sde__pc_tiles_per_row(dim), func,
                                      "per-tile sums")) != NULL;
    if (!ok) {
        sde__pc_work_release(w);
        return SDE_E_NOMEM;
    }
    return SDE_OK;
}

void sde__pc_work_release(sde__pc_work *w)
{
    sde__pool_free(w->pool);
    sde__free(w->score);
    sde__free(w->z);
    sde__free(w->drift);
    sde__free(w->copy);
    sde__free(w->rows);
    sde__free(w->tiles);
    sde__free(w->sums);
    memset(w, 0, sizeof *w);
}

int sde__pc_work_set_threads(sde__pc_work *w, int threads, const char *func)
{
    if (threads == w->threads)
        return SDE_OK;
    sde__pool *pool = NULL;
    if (threads > 1)
        SDE__CHECK(sde__pool_new(&pool, threads, func));
    double *tiles = NULL;
    if (w->tiles != NULL) { /* only handles with state buffers use tiles */
        tiles = alloc_doubles((size_t)threads * SDE__PC_TILE, func, "noise tiles");
        if (tiles == NULL) {
            sde__pool_free(pool);
            return SDE_E_NOMEM;
        }
        sde__free(w->tiles);
        w->tiles = tiles;
    }
    sde__pool_free(w->pool);
    w->pool = pool;
    w->threads = threads;
    return SDE_OK;
}

int sde__pc_work_reserve_copy(sde__pc_work *w, const char *func)
{
    if (w->copy != NULL || w->score == NULL)
        return SDE_OK;
    w->copy = alloc_doubles(w->max_batch * w->dim, func, "corrector's working copy");
    return w->copy != NULL ? SDE_OK : SDE_E_NOMEM;
}

size_t sde__pc_work_bytes(const sde__pc_work *w)
{
    size_t state = w->max_batch * w->dim * sizeof(double);
    size_t n = 0;
    n += w->score ? state : 0;
    n += w->z ? state : 0;
    n += w->drift ? state : 0;
    n += w->copy ? state : 0;
    n += w->rows ? SDE__ROW_COUNT * w->max_batch * sizeof(double) : 0;
    n += w->tiles ? (size_t)w->threads * SDE__PC_TILE * sizeof(double) : 0;
    n += w->sums ? 2 * w->max_batch * sde__pc_tiles_per_row(w->dim) * sizeof(double) : 0;
    return n;
}

/* ---- noise ---------------------------------------------------------------------------- */

int sde__pc_draw(sde__pc_work *w, sde_noise *noise, size_t batch, size_t offset,
                 int need_values, int to_buffer, sde__noise_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->zfull = w->z;
    plan->offset = offset;
    plan->to_buffer = to_buffer;
    /* The built-in generator: take the draw counter and compute the values later, in the
     * phase, from any thread. The generator's last usable counter (2^32 - 1) goes through the
     * handle, which then refuses the next draw itself. */
    uint64_t seed = sde_noise_seed(noise), draw = sde_noise_counter(noise);
    if (sde__noise_is_philox(noise) && draw < UINT32_MAX) {
        SDE__CHECK(sde_noise_set_counter(noise, draw + 1));
        if (need_values) {
            plan->mode = SDE__NOISE_PHILOX;
            plan->seed = seed;
            plan->draw = draw;
        }
        return SDE_OK;
    }
    SDE__CHECK(sde_noise_normal(noise, w->z, batch, w->dim, offset));
    if (need_values) {
        plan->mode = SDE__NOISE_BUFFER;
        plan->z = w->z;
    }
    return SDE_OK;
}

void sde__noise_plan_to_buffer(sde__noise_plan *plan)
{
    if (plan->mode == SDE__NOISE_PHILOX) {
        plan->mode = SDE__NOISE_BUFFER;
        plan->z = plan->zfull;
    }
}

/* The noise of rows [r0, r0 + nr): from the buffer, or computed into the tile (or into the
 * full buffer when the rows do not fit, or when they must be kept). */
static const double *noise_rows(const sde__noise_plan *p, size_t r0, size_t nr, size_t dim,
                                double *tile)
{
    switch (p->mode) {
    case SDE__NOISE_BUFFER:
        return p->z + r0 * dim;
    case SDE__NOISE_PHILOX: {
        double *dst = (!p->to_buffer && nr * dim <= SDE__PC_TILE) ? tile : p->zfull + r0 * dim;
        sde__philox_fill(p->seed, p->draw, SDE_NOISE_NORMAL, 0.0, dst, nr, dim, p->offset + r0);
        return dst;
    }
    default:
        return NULL;
    }
}

/* Rows per tile: as many whole rows as fit, at least one. */
static size_t tile_rows(size_t dim) { return dim >= SDE__PC_TILE ? 1 : SDE__PC_TILE / dim; }

/* ---- row kernels ---------------------------------------------------------------------- */

/* Sum of squares of one tile's worth of values (n <= SDE__PC_TILE): sde__dot_fixed's
 * fixed-order lane partials, inlined here so that each clone (AVX2, AVX-512, see
 * noise_private.h) vectorises it; without contraction every clone rounds the same operations
 * the same way. */
SDE__CLONES
static double tile_sumsq(const double *v, size_t n) { return sde__dot_fixed(n, v, v); }

/* A row's squared norm is the sum, in tile order, of its tiles' sums: threads that share a
 * long row compute the tile sums of their own tiles, and the combination is the same
 * sequence of additions whoever computed them. */
static double sum_tiles(const double *sums, size_t ntiles)
{
    double s = 0.0;
    for (size_t t = 0; t < ntiles; t++)
        s += sums[t];
    return s;
}

double sde__row_norm(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t e0 = 0; e0 < n; e0 += SDE__PC_TILE)
        s += tile_sumsq(v + e0, n - e0 < SDE__PC_TILE ? n - e0 : SDE__PC_TILE);
    return sqrt(s);
}

/* Langevin's step size from the norms: e = 2 alpha (snr |z| / |g|)^2, 0 when |g| = 0. */
static double langevin_step_size(double snr, double alpha, double gn, double zn)
{
    if (!(gn > 0.0))
        return 0.0;
    double q = snr * zn / gn; /* the reference's operation order */
    return q * q * 2.0 * alpha;
}

/* One row of the affine update. The variants keep the inner loops free of branches. */
SDE__CLONES
static void affine_row(size_t n, double A, double C, double S, double D, const double *f,
                       const double *g, const double *x, const double *z, double *out,
                       double *xm)
{
    if (f != NULL) {
        for (size_t k = 0; k < n; k++) {
            double m = A * x[k] + D * f[k] + C * g[k];
            if (xm != NULL)
                xm[k] = m;
            out[k] = z != NULL ? m + S * z[k] : m;
        }
        return;
    }
    if (z == NULL) {
        if (xm == NULL) {
            for (size_t k = 0; k < n; k++)
                out[k] = A * x[k] + C * g[k];
        } else {
            for (size_t k = 0; k < n; k++) {
                double m = A * x[k] + C * g[k];
                xm[k] = m;
                out[k] = m;
            }
        }
        return;
    }
    if (xm == NULL) {
        for (size_t k = 0; k < n; k++)
            out[k] = (A * x[k] + C * g[k]) + S * z[k];
    } else {
        for (size_t k = 0; k < n; k++) {
            double m = A * x[k] + C * g[k];
            xm[k] = m;
            out[k] = m + S * z[k];
        }
    }
}

/* The noise of elements [e0, e0 + n) of row b of a long row: from the buffer, or computed
 * into the thread's tile (into the full buffer when it must be kept, or without a tile). */
static const double *noise_part(const sde__noise_plan *p, size_t b, size_t e0, size_t n,
                                size_t dim, double *tile)
{
    switch (p->mode) {
    case SDE__NOISE_BUFFER:
        return p->z + b * dim + e0;
    case SDE__NOISE_PHILOX: {
        double *dst = (!p->to_buffer && tile != NULL) ? tile : p->zfull + b * dim + e0;
        sde__philox_normals_part(p->seed, p->draw, dst, (uint64_t)(p->offset + b), e0, e0 + n);
        return dst;
    }
    default:
        return NULL;
    }
}

/* The work units of a phase over long rows: tiles t0 .. t1 - 1 of rows r0 .. r1 - 1. Whole
 * rows per thread when there are enough rows, else every row split by tile ranges. */
static void long_row_units(size_t batch, size_t ntiles, int tid, int nthreads, size_t *r0,
                           size_t *r1, size_t *t0, size_t *t1)
{
    *r0 = 0;
    *r1 = batch;
    *t0 = 0;
    *t1 = ntiles;
    if (batch >= (size_t)nthreads)
        sde__rows_of(batch, tid, nthreads, r0, r1);
    else
        sde__rows_of(ntiles, tid, nthreads, t0, t1);
}

/* Long rows (dim > SDE__PC_TILE): the update runs tile by tile along the row, each tile's
 * normals computed just before it is used (one pass over the arrays, no state-sized noise
 * buffer) or read from the buffer, and when there are fewer rows than threads the threads
 * share every row by element ranges (whole tiles). The values are the same whatever the
 * split: each element's normal comes from its own Philox block and the update is
 * element-wise. */
static void affine_long_rows(sde__affine_job *j, int tid, int nthreads, double *tile)
{
    const size_t dim = j->dim;
    size_t r0, r1, t0, t1;
    long_row_units(j->batch, sde__pc_tiles_per_row(dim), tid, nthreads, &r0, &r1, &t0, &t1);
    uint64_t flags = 0;
    for (size_t b = r0; b < r1; b++) {
        size_t off = b * dim;
        for (size_t t = t0; t < t1; t++) {
            size_t e0 = t * SDE__PC_TILE, n = dim - e0 < SDE__PC_TILE ? dim - e0 : SDE__PC_TILE;
            const double *z = j->add_noise ? noise_part(&j->nz, b, e0, n, dim, tile) : NULL;
            size_t o = off + e0;
            if (j->model != NULL) /* before the update overwrites x (xin may be xout) */
                flags |= sde__model_score_convert(j->model, j->xin, j->g, b, e0, e0 + n);
            affine_row(n, j->A[b], j->C[b], j->S[b], j->D != NULL ? j->D[b] : 0.0,
                       j->f != NULL ? j->f + o : NULL, j->g + o, j->xin + o, z, j->xout + o,
                       j->xm != NULL ? j->xm + o : NULL);
        }
    }
    j->flags[tid] = flags;
}

static void affine_worker(void *arg, int tid, int nthreads)
{
    sde__affine_job *j = arg;
    size_t r0, r1, dim = j->dim, per = tile_rows(dim);
    double *tile = j->tiles != NULL ? j->tiles + (size_t)tid * SDE__PC_TILE : NULL;
    if (dim > SDE__PC_TILE) {
        affine_long_rows(j, tid, nthreads, tile);
        return;
    }
    sde__rows_of(j->batch, tid, nthreads, &r0, &r1);
    uint64_t flags = 0;
    for (size_t r = r0; r < r1; r += per) {
        size_t nr = r1 - r < per ? r1 - r : per;
        const double *z = j->add_noise ? noise_rows(&j->nz, r, nr, dim, tile) : NULL;
        for (size_t b = r; b < r + nr; b++) {
            size_t off = b * dim;
            if (j->model != NULL)
                flags |= sde__model_score_convert(j->model, j->xin, j->g, b, 0, dim);
            affine_row(dim, j->A[b], j->C[b], j->S[b], j->D != NULL ? j->D[b] : 0.0,
                       j->f != NULL ? j->f + off : NULL, j->g + off, j->xin + off,
                       z != NULL ? z + (b - r) * dim : NULL, j->xout + off,
                       j->xm != NULL ? j->xm + off : NULL);
        }
    }
    j->flags[tid] = flags;
}

uint64_t sde__run_affine(sde__pc_work *w, sde__affine_job *job)
{
    job->tiles = w->tiles;
    sde__pool_run(w->pool, affine_worker, job);
    uint64_t flags = 0;
    for (int i = 0; i < w->threads; i++)
        flags |= job->flags[i];
    return flags;
}

/* Per-tile sums of squares of g and z (the noise kept in zfull), into sums[0 .. batch *
 * ntiles) and sums[batch * ntiles ..), row-major. Short rows (one tile each) draw their noise
 * a tile of rows at a time. With `model` set, g is first converted in place from the network
 * output (the model adapter's pass, fused: it reads the same tile), the finiteness flags of
 * each thread going to flags[tid]. */
typedef struct sums_job {
    size_t dim, batch;
    double *g;
    const sde_model *model;
    const double *x;
    sde__noise_plan nz; /* to_buffer set */
    double *sums;
    uint64_t flags[SDE__MAX_THREADS];
} sums_job;

/* Elements [e0, e0 + n) of row b: the fused conversion, then their sum of squares. */
static double g_part_sumsq(sums_job *j, size_t b, size_t e0, size_t n, uint64_t *flags)
{
    if (j->model != NULL)
        *flags |= sde__model_score_convert(j->model, j->x, j->g, b, e0, e0 + n);
    return tile_sumsq(j->g + b * j->dim + e0, n);
}

static void sums_worker(void *arg, int tid, int nthreads)
{
    sums_job *j = arg;
    const size_t dim = j->dim, nt = sde__pc_tiles_per_row(dim);
    double *gs = j->sums, *zs = j->sums + j->batch * nt;
    size_t r0, r1, t0, t1;
    uint64_t flags = 0;
    if (nt == 1) {
        size_t per = tile_rows(dim);
        sde__rows_of(j->batch, tid, nthreads, &r0, &r1);
        for (size_t r = r0; r < r1; r += per) {
            size_t nr = r1 - r < per ? r1 - r : per;
            const double *z = noise_rows(&j->nz, r, nr, dim, NULL);
            for (size_t b = r; b < r + nr; b++) {
                gs[b] = g_part_sumsq(j, b, 0, dim, &flags);
                zs[b] = tile_sumsq(z + (b - r) * dim, dim);
            }
        }
        j->flags[tid] = flags;
        return;
    }
    long_row_units(j->batch, nt, tid, nthreads, &r0, &r1, &t0, &t1);
    for (size_t b = r0; b < r1; b++)
        for (size_t t = t0; t < t1; t++) {
            size_t e0 = t * SDE__PC_TILE, n = dim - e0 < SDE__PC_TILE ? dim - e0 : SDE__PC_TILE;
            gs[b * nt + t] = g_part_sumsq(j, b, e0, n, &flags);
            zs[b * nt + t] = tile_sumsq(noise_part(&j->nz, b, e0, n, dim, NULL), n);
        }
    j->flags[tid] = flags;
}

uint64_t sde__run_norms(sde__pc_work *w, sde__norms_job *job)
{
    const size_t nt = sde__pc_tiles_per_row(job->dim);
    sums_job sj = {.dim = job->dim, .batch = job->batch, .g = job->g, .model = job->model,
                   .x = job->x, .nz = job->nz, .sums = w->sums};
    sj.nz.to_buffer = 1;
    sde__pool_run(w->pool, sums_worker, &sj);
    uint64_t flags = 0;
    for (int i = 0; i < w->threads; i++)
        flags |= sj.flags[i];
    if (sde__nonfinite_seen(flags))
        return flags; /* the score is not finite: no step */
    for (size_t b = 0; b < job->batch; b++) {
        job->gn[b] = sqrt(sum_tiles(w->sums + b * nt, nt));
        job->zn[b] = sqrt(sum_tiles(w->sums + (job->batch + b) * nt, nt));
    }
    return flags;
}

/* Short rows: noise into the thread's tile, (the conversion,) both norms and the update while
 * the rows are in cache. */
static void langevin_worker(void *arg, int tid, int nthreads)
{
    sde__langevin_job *j = arg;
    size_t r0, r1, dim = j->dim, per = tile_rows(dim);
    sde__rows_of(j->batch, tid, nthreads, &r0, &r1);
    double *tile = j->tiles + (size_t)tid * SDE__PC_TILE;
    uint64_t flags = 0;
    for (size_t r = r0; r < r1; r += per) {
        size_t nr = r1 - r < per ? r1 - r : per;
        const double *z = noise_rows(&j->nz, r, nr, dim, tile);
        for (size_t b = r; b < r + nr; b++) {
            size_t off = b * dim;
            const double *zb = z + (b - r) * dim;
            if (j->model != NULL)
                flags |= sde__model_score_convert(j->model, j->xin, j->g, b, 0, dim);
            double e = langevin_step_size(j->snr, j->alpha[b], sde__row_norm(j->g + off, dim),
                                          sde__row_norm(zb, dim));
            j->e_out[b] = e;
            affine_row(dim, 1.0, e, sqrt(e * 2.0), 0.0, NULL, j->g + off, j->xin + off, zb,
                       j->xout + off, j->xm != NULL ? j->xm + off : NULL);
        }
    }
    j->flags[tid] = flags;
}

uint64_t sde__run_langevin(sde__pc_work *w, sde__langevin_job *job)
{
    job->tiles = w->tiles;
    if (job->dim <= SDE__PC_TILE) {
        sde__pool_run(w->pool, langevin_worker, job);
        uint64_t flags = 0;
        for (int i = 0; i < w->threads; i++)
            flags |= job->flags[i];
        return flags;
    }
    /* Long rows: the norms need the whole row before the update can start, so two phases
     * split by tiles (the noise kept in the full buffer between them). */
    double *gn = sde__row(w, SDE__ROW_GN), *zn = sde__row(w, SDE__ROW_ZN);
    double *A = sde__row(w, SDE__ROW_A), *C = sde__row(w, SDE__ROW_C);
    double *S = sde__row(w, SDE__ROW_S);
    sde__norms_job nj = {.dim = job->dim, .batch = job->batch, .g = job->g, .gn = gn,
                         .zn = zn, .nz = job->nz, .model = job->model, .x = job->xin};
    uint64_t flags = sde__run_norms(w, &nj);
    if (sde__nonfinite_seen(flags))
        return flags;
    for (size_t b = 0; b < job->batch; b++) {
        double e = langevin_step_size(job->snr, job->alpha[b], gn[b], zn[b]);
        job->e_out[b] = e;
        A[b] = 1.0;
        C[b] = e;
        S[b] = sqrt(e * 2.0);
    }
    sde__affine_job aj = {.dim = job->dim, .batch = job->batch, .A = A, .C = C, .S = S,
                          .g = job->g, .xin = job->xin, .xout = job->xout, .xm = job->xm,
                          .add_noise = 1, .nz = job->nz};
    sde__noise_plan_to_buffer(&aj.nz);
    sde__run_affine(w, &aj);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

double sde__linspace_at(double start, double end, int64_t n, int64_t i)
{
    if (n == 1)
        return start;
    double step = (end - start) / (double)(n - 1);
    return i < n / 2 ? start + step * (double)i : end - step * (double)(n - 1 - i);
}

/* Processes compare equal when kind, T, N, prior std and the family's parameters agree.
 * (Custom processes are compared by those only: their callbacks are not visible here.) */
static int same_process(const sde_process *a, const sde_process *b)
{
    int kind = sde_process_kind(a);
    if (kind != sde_process_kind(b) || sde_process_t_end(a) != sde_process_t_end(b) ||
        sde_process_num_steps(a) != sde_process_num_steps(b) ||
        sde_process_prior_std(a) != sde_process_prior_std(b))
        return 0;
    static const char *const vp_names[] = {"beta_min", "beta_max"};
    static const char *const ve_names[] = {"sigma_min", "sigma_max"};
    const char *const *names = kind == SDE_PROCESS_VE ? ve_names : vp_names;
    if (kind == SDE_PROCESS_CUSTOM)
        return 1;
    for (int i = 0; i < 2; i++) {
        double va = 0.0, vb = 0.0;
        sde_process_param(a, names[i], &va);
        sde_process_param(b, names[i], &vb);
        if (va != vb)
            return 0;
    }
    return 1;
}

int sde__pc_check_model(const sde_process *own, size_t dim, const sde_model *model,
                        const char *func)
{
    SDE__CHECK(sde__check_ptr(model, func, "model"));
    if (sde_model_dim(model) != dim)
        return sde__fail(SDE_E_DIM, func, "model's dim (%zu) differs from dim (%zu)",
                         sde_model_dim(model), dim);
    if (!same_process(own, sde_model_process(model)))
        return sde__fail(SDE_E_INVALID, func,
                         "model is built for a different process (kind %d, N %lld) than this "
                         "one (kind %d, N %lld)",
                         sde_process_kind(sde_model_process(model)),
                         (long long)sde_process_num_steps(sde_model_process(model)),
                         sde_process_kind(own), (long long)sde_process_num_steps(own));
    return SDE_OK;
}

int sde__pc_check_step(const sde_process *p, const sde__pc_work *w, const sde_model *model,
                       const sde_noise *noise, const double *t, const double *x, size_t batch,
                       size_t dim, size_t sample_offset, const char *func)
{
    SDE__CHECK(sde__check_ptr(noise, func, "noise"));
    SDE__CHECK(sde__check_ptr(x, func, "x"));
    SDE__CHECK(sde__check_size(batch, func, "batch"));
    SDE__CHECK(sde__check_size(dim, func, "dim"));
    if (dim != w->dim)
        return sde__fail(SDE_E_DIM, func, "dim (%zu) differs from the dim it was created for "
                         "(%zu)", dim, w->dim);
    if (batch > w->max_batch)
        return sde__fail(SDE_E_DIM, func, "batch (%zu) exceeds max_batch (%zu)", batch,
                         w->max_batch);
    if ((uint64_t)(batch - 1) > UINT64_MAX - (uint64_t)sample_offset)
        return sde__fail(SDE_E_INVALID, func,
                         "sample_offset (%zu) + batch (%zu) exceeds 2^64 samples", sample_offset,
                         batch);
    SDE__CHECK(sde__pc_check_model(p, dim, model, func));
    if (t != NULL)
        SDE__CHECK(sde__check_times(t, batch, sde_process_t_end(p), func));
    return SDE_OK;
}

int sde__pc_step_failed(const sde__step_ctx *ctx, const char *what, int rc)
{
    char inner[768];
    snprintf(inner, sizeof inner, "%s", sde_last_error());
    if (ctx->in_sampler)
        return sde__fail(rc, ctx->func, "step %zu of %zu (t = %.17g), %s: %s", ctx->step,
                         ctx->nsteps, ctx->tk, what, inner);
    return sde__fail(rc, ctx->func, "%s: %s", what, inner);
}

/* The model adapter's conversion pass (score = c1 out + c2 x, and the finiteness check), split
 * over the pool like the update phases: by rows, or by element ranges when there are fewer rows
 * than threads. Each thread ORs its flags into its own slot. */
typedef struct convert_job {
    const sde_model *model;
    const double *x;
    double *work;
    size_t batch, dim;
    uint64_t flags[SDE__MAX_THREADS];
} convert_job;

static void convert_worker(void *arg, int tid, int nthreads)
{
    convert_job *j = arg;
    uint64_t flags = 0;
    size_t r0 = 0, r1 = j->batch, k0 = 0, k1 = j->dim;
    if (j->batch >= (size_t)nthreads) {
        sde__rows_of(j->batch, tid, nthreads, &r0, &r1);
    } else { /* whole cache lines per thread */
        sde__rows_of((j->dim + 7) / 8, tid, nthreads, &k0, &k1);
        k0 *= 8;
        k1 = k1 * 8 < j->dim ? k1 * 8 : j->dim;
    }
    for (size_t b = r0; b < r1 && k0 < k1; b++)
        flags |= sde__model_score_convert(j->model, j->x, j->work, b, k0, k1);
    j->flags[tid] = flags;
}

static const char score_func[] = "sde_model_score"; /* what the messages name */

int sde__pc_score_call(sde__pc_work *w, sde__step_ctx *ctx, const double *x, const char *what)
{
    int rc = sde__model_score_call(ctx->model, ctx->t, x, w->score, ctx->batch, w->dim,
                                   score_func);
    return rc != SDE_OK ? sde__pc_step_failed(ctx, what, rc) : SDE_OK;
}

int sde__pc_score_converted(sde__pc_work *w, sde__step_ctx *ctx, uint64_t flags,
                            const char *what)
{
    if (sde__nonfinite_seen(flags))
        return sde__pc_step_failed(ctx, what,
                                   sde__model_score_failed(ctx->t, w->score, ctx->batch, w->dim,
                                                           score_func));
    ctx->calls++;
    return SDE_OK;
}

int sde__pc_score_finish(sde__pc_work *w, sde__step_ctx *ctx, const double *x,
                         const char *what)
{
    convert_job job = {.model = ctx->model, .x = x, .work = w->score, .batch = ctx->batch,
                       .dim = w->dim};
    sde__pool_run(w->pool, convert_worker, &job);
    uint64_t flags = 0;
    for (int i = 0; i < w->threads; i++)
        flags |= job.flags[i];
    return sde__pc_score_converted(w, ctx, flags, what);
}

int sde__pc_score(sde__pc_work *w, sde__step_ctx *ctx, const double *x, const char *what)
{
    SDE__CHECK(sde__pc_score_call(w, ctx, x, what));
    return sde__pc_score_finish(w, ctx, x, what);
}

/* ---- options -------------------------------------------------------------------------- */

int sde__pc_bool_option(int64_t value, const char *func, const char *name)
{
    if (value != 0 && value != 1)
        return sde__fail(SDE_E_INVALID, func, "%s (%lld) must be 0 or 1", name,
                         (long long)value);
    return SDE_OK;
}

int sde__pc_int_option(int option, int64_t value, const char *func)
{
    const char *name = sde_option_name(option);
    double lo = 0.0, hi = 0.0;
    if (name == NULL || sde_option_type(option) != SDE_OPTION_INT ||
        sde_option_bounds(option, &lo, &hi) != SDE_OK)
        return sde__fail(SDE_E_INVALID, func, "option (%d) is not an integer option", option);
    if (!((double)value >= lo && (double)value <= hi))
        return sde__fail(SDE_E_INVALID, func, "%s (%lld) must be in [%.17g, %.17g]", name,
                         (long long)value, lo, hi);
    return SDE_OK;
}

int sde__pc_real_option(int option, double value, const char *func)
{
    const char *name = sde_option_name(option);
    double lo = 0.0, hi = 0.0;
    if (name == NULL || sde_option_type(option) != SDE_OPTION_REAL ||
        sde_option_bounds(option, &lo, &hi) != SDE_OK)
        return sde__fail(SDE_E_INVALID, func, "option (%d) is not a real option", option);
    if (!(isfinite(value) && value >= lo && value <= hi))
        return sde__fail(SDE_E_INVALID, func, "%s (%.17g) must be finite and in [%.17g, %.17g]",
                         name, value, lo, hi);
    return SDE_OK;
}
