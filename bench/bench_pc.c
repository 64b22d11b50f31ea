/* The PC sampler's own time per step, reverse diffusion + Langevin (one corrector step,
 * per-sample norms, the default options), as a ratio to the floor measured in the same run,
 * for a (128, 3*32*32) and a (1, 3*1024*1024) batch of doubles, with one and two threads.
 *
 * The "network" writes out = -x (the score of N(0, I)); the time spent inside it is measured
 * and subtracted, so "own" is everything the library does per step: the model adapter's pass
 * over the network output (conversion to a score and the finiteness check, split over the
 * sampler's threads like the updates), the noise, the norms, the updates, the pool.
 *
 * Traffic model of the floor (n = batch * dim doubles): a step is two updates (Langevin, then
 * reverse diffusion), each of which must read the state x and the score s and write x back:
 * 2 x (2n reads + n writes), measured as two passes of an in-place x += c s over arrays of the
 * step's size; plus the 2n normals the two updates add, measured as the time to generate them
 * into an L1-resident buffer (sde_noise_normal on 4096-value rows, no memory traffic). With two
 * threads both parts are measured with two threads (each its half). The floor does not count
 * the model adapter's pass over the network output, the norms' extra read of s and z (and, on
 * long rows, the noise's trip through memory between the norms and the update), nor anything
 * the network itself reads or writes.
 *
 * For scale: the reference implementation (score_sde_pytorch, float32) takes about 8.6 ms per
 * reverse-diffusion + Langevin step on (128, 3*32*32) on this machine's CPU.
 *
 * Usage: bench-pc [--quick] [output-file]   (--quick: tiny shapes, one repeat; a smoke test) */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sde/sde.h>

#include "benchutil.h"

enum { TILE = 4096, MAX_THREADS = 2 };

static int g_quick = 0;

static void die(const char *what)
{
    fprintf(stderr, "bench-pc: %s failed: %s\n", what, sde_last_error());
    exit(1);
}

/* ---- the network ---------------------------------------------------------------------- */

struct host {
    double seconds; /* time inside the callback */
};

static int net(const double *t, const double *x, double *out, size_t batch, size_t dim, void *u)
{
    (void)t;
    struct host *h = u;
    double t0 = bu_now();
    size_t n = batch * dim;
    for (size_t i = 0; i < n; i++)
        out[i] = -x[i];
    h->seconds += bu_now() - t0;
    return 0;
}

/* ---- floor parts, timed on 1 or 2 threads ------------------------------------------------ */

struct floor_job {
    int kind; /* 0: in-place x += c s, 1: generate normals into a tile */
    double *x, *s;
    size_t n;
    int nthreads;
    int repeats;
    pthread_barrier_t *bar;
    double best; /* thread 0: best wall time of one pass */
};

struct floor_arg {
    struct floor_job *job;
    int tid;
};

static void axpy_part(double *restrict x, const double *restrict s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += 1e-9 * s[i];
}

static void normals_part(sde_noise *h, double *tile, size_t first, size_t count)
{
    /* rows of TILE values: sample index = first / TILE + row, so each thread draws distinct
     * values, as the sampler's threads do */
    for (size_t done = 0; done < count; done += TILE) {
        size_t len = count - done < TILE ? count - done : TILE;
        if (sde_noise_normal(h, tile, 1, len, (first + done) / TILE) != SDE_OK)
            die("sde_noise_normal");
    }
}

static void *floor_thread(void *p)
{
    struct floor_arg *a = p;
    struct floor_job *j = a->job;
    size_t per = j->n / (size_t)j->nthreads, first = per * (size_t)a->tid;
    size_t count = a->tid == j->nthreads - 1 ? j->n - first : per;
    sde_noise *h = NULL;
    double *tile = NULL;
    if (j->kind == 1) {
        if (sde_noise_new_philox(&h, 99) != SDE_OK)
            die("sde_noise_new_philox");
        tile = bu_alloc(TILE);
    }
    for (int r = 0; r < j->repeats; r++) {
        pthread_barrier_wait(j->bar);
        double t0 = bu_now();
        if (j->kind == 0)
            axpy_part(j->x + first, j->s + first, count);
        else
            normals_part(h, tile, first, count);
        pthread_barrier_wait(j->bar);
        double dt = bu_now() - t0;
        if (a->tid == 0 && dt < j->best)
            j->best = dt;
    }
    sde_noise_free(h);
    free(tile);
    return NULL;
}

static double floor_time(int kind, double *x, double *s, size_t n, int nthreads, int repeats)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    struct floor_job job = {kind, x, s, n, nthreads, repeats, &bar, 1e300};
    struct floor_arg args[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    for (int t = 1; t < nthreads; t++) {
        args[t] = (struct floor_arg){&job, t};
        if (pthread_create(&th[t], NULL, floor_thread, &args[t]) != 0) {
            fprintf(stderr, "bench-pc: pthread_create failed\n");
            exit(1);
        }
    }
    args[0] = (struct floor_arg){&job, 0};
    floor_thread(&args[0]);
    for (int t = 1; t < nthreads; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&bar);
    return job.best;
}

/* ---- the sampler ---------------------------------------------------------------------- */

struct run {
    sde_sampler *sampler;
    sde_model *model;
    sde_noise *noise;
    const double *x0;
    double *xout;
    size_t batch, dim;
    struct host *host;
    double best_own; /* best (wall - host) of one run */
};

static void run_once(struct run *r)
{
    r->host->seconds = 0.0;
    sde_noise_set_counter(r->noise, 0);
    double t0 = bu_now();
    if (sde_sampler_run(r->sampler, r->model, r->noise, r->x0, r->xout, r->batch, r->dim, 0) !=
        SDE_OK)
        die("sde_sampler_run");
    double own = bu_now() - t0 - r->host->seconds;
    if (own < r->best_own)
        r->best_own = own;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            g_quick = 1;
        else
            path = argv[i];
    }
    struct shape { size_t batch, dim; };
    const struct shape full[] = {{128, 3 * 32 * 32}, {1, 3 * 1024 * 1024}};
    const struct shape quick[] = {{8, 3 * 8 * 8}, {1, 3 * 64 * 64}};
    const struct shape *shapes = g_quick ? quick : full;
    const int repeats = g_quick ? 1 : 7, steps = g_quick ? 3 : 20;

    char table[4096];
    int len = snprintf(table, sizeof table,
                       "# bench-pc: libscoresde %s, VP, reverse diffusion + Langevin (1 corrector "
                       "step), best of %d runs of %d steps\n"
                       "# floor = 2 passes of in-place x += c s (read x, s; write x) + 2n normals "
                       "into an L1 tile; own = wall - time in the network (out = -x)\n"
                       "# reference (score_sde_pytorch, float32, (128, 3*32*32)): ~8.6 ms/step\n"
                       "%-12s %3s %11s %11s %11s %11s %8s\n",
                       sde_version_string(), repeats, steps, "shape", "thr", "own ms/step",
                       "floor ms", "stream ms", "normals ms", "x floor");

    sde_process *p = NULL;
    if (sde_process_new_vp(&p, 0.1, 20.0, 1.0, 1000) != SDE_OK)
        die("sde_process_new_vp");
    for (int s = 0; s < 2; s++) {
        size_t batch = shapes[s].batch, dim = shapes[s].dim, n = batch * dim;
        double *x0 = bu_alloc(n), *xout = bu_alloc(n), *fx = bu_alloc(n), *fs = bu_alloc(n);
        struct host host = {0.0};
        sde_model *model = NULL;
        sde_noise *noise = NULL;
        if (sde_model_new(&model, p, dim, net, &host, SDE_OUTPUT_SCORE, SDE_TIME_CONTINUOUS) !=
            SDE_OK)
            die("sde_model_new");
        if (sde_noise_new_philox(&noise, 2024) != SDE_OK)
            die("sde_noise_new_philox");
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            sde_sampler *sm = NULL;
            if (sde_sampler_new(&sm, p, SDE_PREDICTOR_REVERSE_DIFFUSION, SDE_CORRECTOR_LANGEVIN,
                                dim, batch) != SDE_OK ||
                sde_sampler_set_int(sm, SDE_OPT_PC_STEPS, steps) != SDE_OK ||
                sde_sampler_set_int(sm, SDE_OPT_PC_THREADS, nt) != SDE_OK)
                die("sampler setup");
            struct run r = {sm, model, noise, x0, xout, batch, dim, &host, 1e300};
            run_once(&r); /* warm-up: first-touch of the scratch, pool start */
            r.best_own = 1e300;
            for (int k = 0; k < repeats; k++)
                run_once(&r);
            sde_sampler_free(sm);
            double own = r.best_own / steps;
            double stream = 2.0 * floor_time(0, fx, fs, n, nt, repeats + 2);
            double normals = floor_time(1, NULL, NULL, 2 * n, nt, repeats + 2);
            double fl = stream + normals;
            char shape[32];
            snprintf(shape, sizeof shape, "%zux%zu", batch, dim);
            len += snprintf(table + len, sizeof table - (size_t)len,
                            "%-12s %3d %11.3f %11.3f %11.3f %11.3f %8.2f\n", shape, nt,
                            1e3 * own, 1e3 * fl, 1e3 * stream, 1e3 * normals, own / fl);
        }
        sde_model_free(model);
        sde_noise_free(noise);
        free(x0);
        free(xout);
        free(fx);
        free(fs);
    }
    sde_process_free(p);
    fputs(table, stdout);
    if (path != NULL) {
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs(table, f) < 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(f);
    }
    return 0;
}
