/* NFE and wall time of the probability-flow ODE sampler (sde_ode_sampler_decode, DOPRI5)
 * against the tolerance (rtol = atol = 1e-3, 1e-4, 1e-5), per-sample and whole-batch step-size
 * control, on a (16, 3*32*32) state with the exact Gaussian-mixture score as the "network"
 * (sde_gmm_eval inside a host callback that accumulates the time spent in it), and the
 * library's own time per NFE (wall time minus the time inside the callback, divided by the
 * NFE) as a ratio to the memory-traffic floor of the same run. Decode (latent -> data) is
 * timed rather than sample, so that the prior draw (normals, not solver work) is left out; the
 * latents are one prior draw made beforehand.
 *
 * Traffic model (one "array" = one state of n = batch * dim doubles; R = array read, W = array
 * written): the solver's own passes are bu_dopri5_traffic's (benchutil.h: per step attempt
 * 34R + 6W, per row in per-sample mode; per accepted row in per-sample mode 2R + 2W; per RHS
 * call the finiteness check, 1R; per run 11R + 3W). The sampler adds, counted from
 * lib/ode_sampler.c, model.c and process_reverse.c:
 * - per RHS call: the model adapter's in-place score conversion with a SCORE-output model only
 *   probes the output for non-finite values (1R); the probability-flow drift
 *   dydt = c x - (g^2/2) score reads the stage input and the score and writes dydt (2R + 1W);
 * - per run: the check and copy of z and the copy out (2R + 2W).
 * So per NFE 4R + 1W in all, as before; the floor prices R and W with benchutil's stream
 * kernel (bu_stream_prices, vectorised like the library's loops) on state-sized arrays,
 * measured in the same run: floor = R r + W w. It leaves out the per-row scalar work (step
 * control) and everything the network reads and writes.
 *
 * Scratch memory: the solver allocates sde_ode_method_num_buffers(DOPRI5) = 9 state-sized
 * buffers (y, stage / new state, K_0..K_6), the sampler 3 more (state, score, denoising work)
 * and the model's reserve 1 (its raw output buffer, unused by the ODE path), all at creation.
 *
 * Target (not asserted): own time per NFE <= 1.5x the floor.
 *
 * Usage: bench-ode [--quick] [output-file]   (--quick: a tiny shape, one repeat; a smoke test) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sde/sde.h>

#include "benchutil.h"

enum { K = 4 };

static void die(const char *what)
{
    fprintf(stderr, "bench-ode: %s failed: %s\n", what, sde_last_error());
    exit(1);
}

struct host {
    const sde_gmm *gmm;
    const sde_process *p;
    double seconds; /* time inside the callback */
};

static int net(const double *t, const double *x, double *out, size_t batch, size_t dim, void *u)
{
    struct host *h = u;
    double t0 = bu_now();
    int rc = sde_gmm_eval(h->gmm, h->p, t, x, out, NULL, batch, dim);
    h->seconds += bu_now() - t0;
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            path = argv[i];
    }
    const size_t B = quick ? 4 : 16, D = quick ? 3 * 8 * 8 : 3 * 32 * 32, n = B * D;
    const int repeats = quick ? 1 : 5;

    double *mu = bu_alloc(K * D), var[K] = {0.05, 0.1, 0.2, 0.3}, wts[K] = {0.4, 0.3, 0.2, 0.1};
    for (size_t k = 0; k < K; k++)
        for (size_t j = 0; j < D; j++)
            mu[k * D + j] = 0.5 * sin(1.3 * (double)k + 0.01 * (double)j);
    sde_process *p = NULL;
    sde_gmm *g = NULL;
    sde_model *m = NULL;
    sde_noise *noise = NULL;
    struct host host = {NULL, NULL, 0.0};
    if (sde_process_new_vp(&p, 0.1, 20.0, 1.0, 1000) != SDE_OK)
        die("sde_process_new_vp");
    if (sde_gmm_new(&g, K, D, mu, var, wts) != SDE_OK)
        die("sde_gmm_new");
    if (sde_noise_new_philox(&noise, 7) != SDE_OK)
        die("sde_noise_new_philox");
    host.gmm = g;
    host.p = p;
    if (sde_model_new(&m, p, D, net, &host, SDE_OUTPUT_SCORE, SDE_TIME_CONTINUOUS) != SDE_OK)
        die("sde_model_new");
    double *z = bu_alloc(n), *x = bu_alloc(n);
    if (sde_process_prior_sample(p, noise, z, B, D, 0) != SDE_OK)
        die("sde_process_prior_sample");

    /* the floor's prices per state-sized array, measured now (twice; the smaller is kept, as
     * for every other time here) */
    double rv = 1e300, wv = 1e300;
    for (int pass = 0; pass < 2; pass++) {
        double r, w;
        bu_stream_prices(n, repeats + 4, &r, &w);
        rv = fmin(rv, r);
        wv = fmin(wv, w);
    }

    int nbuf = sde_ode_method_num_buffers(SDE_ODE_DOPRI5);
    const int sampler_bufs = 3, model_bufs = 1;
    double state_mb = (double)n * sizeof(double) / (1024.0 * 1024.0);

    char table[4096];
    int len = snprintf(
        table, sizeof table,
        "# bench-ode: libscoresde %s, one thread, VP, %zux%zu, K=%d mixture (exact score via "
        "sde_gmm_eval), sde_ode_sampler_decode T -> eps=1e-3, DOPRI5, rtol = atol = tol, best "
        "of %d\n"
        "# scratch: solver %d + sampler %d (+ model reserve %d) state-sized buffers of %zu "
        "doubles (%.3f MiB each) = %.2f MiB\n"
        "# floor: per NFE 4R+1W, per step attempt 34R+6W (per row in per-sample mode), per "
        "accepted step 2R+2W per-sample / 0 whole-batch, per run 13R+5W (R/W = state array "
        "read/written)\n"
        "# stream prices per state array (benchutil's vectorised kernel): read %.2f us, "
        "write %.2f us\n"
        "# own = wall - time in the network callback; acc/rej: summed over rows in per-sample "
        "mode\n"
        "%-8s %-6s %6s %7s %6s %9s %9s %11s %11s %8s\n",
        sde_version_string(), B, D, K, repeats, nbuf, sampler_bufs, model_bufs, n, state_mb,
        (nbuf + sampler_bufs + model_bufs) * state_mb, 1e6 * rv, 1e6 * wv, "mode", "tol", "nfe",
        "acc", "rej", "wall ms", "host ms", "own us/nfe", "floor us/nfe", "x floor");

    const double tols[3] = {1e-3, 1e-4, 1e-5};
    double worst = 0.0;
    for (int per_sample = 1; per_sample >= 0; per_sample--) {
        for (int i = 0; i < 3; i++) {
            sde_ode_sampler *s = NULL;
            if (sde_ode_sampler_new(&s, m, SDE_ODE_DOPRI5, B) != SDE_OK ||
                sde_ode_sampler_set_int(s, SDE_OPT_ODE_PER_SAMPLE, per_sample) != SDE_OK ||
                sde_ode_sampler_set_real(s, SDE_OPT_ODE_RTOL, tols[i]) != SDE_OK ||
                sde_ode_sampler_set_real(s, SDE_OPT_ODE_ATOL, tols[i]) != SDE_OK)
                die("sampler setup");
            double best_wall = 1e300, best_own = 1e300, best_host = 0.0;
            for (int k = 0; k < repeats + 1; k++) { /* the first run warms up (first touch) */
                host.seconds = 0.0;
                double t0 = bu_now();
                if (sde_ode_sampler_decode(s, NULL, z, x, B, D, 0) != SDE_OK)
                    die("sde_ode_sampler_decode");
                double wall = bu_now() - t0, own = wall - host.seconds;
                if (k == 0 && repeats > 1)
                    continue;
                if (wall < best_wall)
                    best_wall = wall;
                if (own < best_own) {
                    best_own = own;
                    best_host = host.seconds;
                }
            }
            uint64_t nfe = 0, acc = 0, rej = 0;
            const sde_ode_solver *sv = sde_ode_sampler_solver(s);
            if (sde_ode_sampler_get_nfe(s, &nfe) != SDE_OK ||
                sde_ode_solver_get_accepted_steps(sv, &acc) != SDE_OK ||
                sde_ode_solver_get_rejected_steps(sv, &rej) != SDE_OK)
                die("statistics");
            /* the traffic of the run, in state arrays: the solver's, plus the sampler's */
            double R, W;
            bu_dopri5_traffic(nfe, acc, rej, per_sample, B, &R, &W);
            R += 3.0 * (double)nfe + 2.0;
            W += 1.0 * (double)nfe + 2.0;
            double floor = (R * rv + W * wv) / (double)nfe;
            double own = best_own / (double)nfe;
            if (own / floor > worst)
                worst = own / floor;
            len += snprintf(table + len, sizeof table - (size_t)len,
                            "%-8s %-6.0e %6llu %7llu %6llu %9.2f %9.2f %11.2f %11.2f %8.2f\n",
                            per_sample ? "sample" : "batch", tols[i], (unsigned long long)nfe,
                            (unsigned long long)acc, (unsigned long long)rej, 1e3 * best_wall,
                            1e3 * best_host, 1e6 * own, 1e6 * floor, own / floor);
            sde_ode_sampler_free(s);
        }
    }
    len += snprintf(table + len, sizeof table - (size_t)len,
                    "# worst own / floor: %.2f (target <= 1.5, not asserted)\n", worst);

    fputs(table, stdout);
    if (path != NULL) {
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs(table, f) < 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(f);
    }
    sde_noise_free(noise);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
    free(mu);
    free(z);
    free(x);
    return 0;
}
