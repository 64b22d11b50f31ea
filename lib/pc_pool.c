/* A small fork-join thread pool for the element-wise phases of the PC steppers and sampler.
 * Each run hands every thread the same function with its thread index, the caller taking
 * index 0, and returns when all have finished. Nothing here calls back into the host: the
 * model and noise callbacks run on the calling thread, outside the pool.
 *
 * Waiting: a step runs several short phases back to back (a few hundred microseconds each),
 * and waking a sleeping thread through the kernel can cost as much (on virtual machines, where
 * an idle vCPU halts, far more). So both sides first spin for a while on an atomic -- the
 * workers on the run's generation, the caller on the count of workers still running -- and
 * only then sleep on the condition variables; phases that follow each other closely never
 * sleep, and a pool left idle (a long network call) costs no CPU after the spin. */
#include <pthread.h>
#include <stdatomic.h>

#include "pc_private.h"

/* Spin iterations (each one CPU pause hint, tens of cycles) before sleeping: some tens of
 * microseconds, about the gap between the phases of one step. (Yielding the CPU inside the
 * spin was tried: the scheduler then tends to keep both threads on one core, and the phases
 * run one after the other.) */
enum { SPIN = 4096 };

static inline void cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

struct worker {
    struct sde__pool *pool;
    int tid;
    pthread_t thread;
};

struct sde__pool {
    int n; /* threads including the caller */
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    _Atomic uint64_t generation; /* bumped once per run, under the lock */
    atomic_int pending;          /* workers still running the current job */
    atomic_int quit;
    sde__pool_fn fn; /* written before the generation is bumped, read after it is seen */
    void *ctx;
    struct worker *workers; /* n - 1 */
    int started;            /* workers actually created */
};

/* Wait for a run newer than `seen` (or quit): spin, then sleep. Returns the new generation. */
static uint64_t wait_start(struct sde__pool *p, uint64_t seen)
{
    for (int i = 0; i < SPIN; i++) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed))
            return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
        pthread_cond_wait(&p->start, &p->lock);
    uint64_t g = atomic_load(&p->generation);
    pthread_mutex_unlock(&p->lock);
    return g;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct sde__pool *p = wk->pool;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_start(p, seen);
        if (atomic_load(&p->quit))
            return NULL;
        p->fn(p->ctx, wk->tid, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            /* the last one: wake the caller in case it went to sleep (it re-checks pending
             * under the lock before sleeping, so the signal cannot be lost) */
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

static void stop_workers(struct sde__pool *p)
{
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->workers[i].thread, NULL);
    p->started = 0;
}

int sde__pool_new(sde__pool **out, int nthreads, const char *func)
{
    *out = NULL;
    struct sde__pool *p = sde__calloc(1, sizeof *p);
    struct worker *wk = sde__calloc((size_t)nthreads - 1, sizeof *wk);
    if (p == NULL || wk == NULL) {
        sde__free(p);
        sde__free(wk);
        return sde__fail(SDE_E_NOMEM, func, "cannot allocate a pool of %d threads", nthreads);
    }
    p->n = nthreads;
    p->workers = wk;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    int init = 0;
    if (pthread_mutex_init(&p->lock, NULL) == 0) {
        init = 1;
        if (pthread_cond_init(&p->start, NULL) == 0) {
            init = 2;
            if (pthread_cond_init(&p->done, NULL) == 0)
                init = 3;
        }
    }
    int rc = SDE_OK;
    if (init < 3) {
        rc = sde__fail(SDE_E_NOMEM, func, "cannot initialise the thread pool's locks");
    } else {
        for (int i = 0; i < nthreads - 1; i++) {
            wk[i].pool = p;
            wk[i].tid = i + 1;
            if (pthread_create(&wk[i].thread, NULL, worker_main, &wk[i]) != 0) {
                rc = sde__fail(SDE_E_NOMEM, func, "cannot start worker thread %d of %d", i + 1,
                               nthreads - 1);
                break;
            }
            p->started++;
        }
    }
    if (rc != SDE_OK) {
        if (init == 3)
            stop_workers(p);
        if (init >= 3)
            pthread_cond_destroy(&p->done);
        if (init >= 2)
            pthread_cond_destroy(&p->start);
        if (init >= 1)
            pthread_mutex_destroy(&p->lock);
        sde__free(wk);
        sde__free(p);
        return rc;
    }
    *out = p;
    return SDE_OK;
}

void sde__pool_free(sde__pool *pool)
{
    if (pool == NULL)
        return;
    stop_workers(pool);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->start);
    pthread_mutex_destroy(&pool->lock);
    sde__free(pool->workers);
    sde__free(pool);
}

void sde__pool_run(sde__pool *pool, sde__pool_fn fn, void *ctx)
{
    if (pool == NULL) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);

    fn(ctx, 0, pool->n);

    for (int i = 0; i < SPIN; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->lock);
    while (atomic_load(&pool->pending) > 0)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

void sde__rows_of(size_t batch, int tid, int n, size_t *r0, size_t *r1)
{
    /* batch * tid fits: batch <= SIZE_MAX / 8 / dim and n <= 256 */
    *r0 = batch / (size_t)n * (size_t)tid + (batch % (size_t)n < (size_t)tid ? batch % (size_t)n
                                                                              : (size_t)tid);
    size_t len = batch / (size_t)n + ((size_t)tid < batch % (size_t)n ? 1 : 0);
    *r1 = *r0 + len;
}
