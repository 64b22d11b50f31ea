/* NFE and wall time of the likelihood against the ODE tolerance, on a (16, 3*32*32) state with
 * the exact Gaussian-mixture score and its exact JVP as the "network" (one Rademacher probe,
 * per-sample DOPRI5), and the library's own time per right-hand-side evaluation (wall time
 * minus the time spent in the host's score and JVP callbacks) as a ratio to the memory-traffic
 * floor of the same run.
 *
 * Traffic model (one "array" = one state of batch x (D+1) doubles, the augmented state; the
 * likelihood's own D-wide arrays are counted as such too; R = array read, W = array written):
 * the solver's passes are bu_dopri5_traffic's (benchutil.h; per-sample mode, from the solver's
 * step statistics). The likelihood adds, counted from lib/likelihood.c with a host JVP, one
 * Rademacher probe, a VP process and no dequantisation:
 * - per RHS call: the state is unpacked (1R + 1W), the model adapter probes the score for
 *   non-finite values (1R), the probability-flow drift reads x and the score and writes the
 *   drift (2R + 1W), which is packed into the derivative (1R + 1W); the JVP adapter (model.c)
 *   checks the host's J v (1R) and converts it into the likelihood's buffer (reading J v and
 *   the probe: 2R + 1W), and the probe's quadratic form reads the probe and J v (2R):
 *   10R + 4W;
 * - per run: the check and copy of x, the probe draw and its check, the unpacked end state and
 *   the prior's log-density (5R + 3W).
 * The floor prices R and W with benchutil's stream kernel (bu_stream_prices, vectorised like
 * the library's loops) on arrays of batch x (D+1) doubles, measured in the same run:
 * floor = R r + W w. It leaves out the per-row scalar work and what the host callbacks touch.
 * Usage: bench-likelihood [output-file]   (the table is printed and, if given, written there) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <sde/sde.h>

#include "benchutil.h"

enum { B = 16, D = 3 * 32 * 32, K = 4 };

struct host {
    const sde_gmm *gmm;
    const sde_process *p;
    double seconds; /* time inside the callbacks */
};

static int net(const double *t, const double *x, double *out, size_t batch, size_t dim, void *u)
{
    struct host *h = u;
    double t0 = bu_now();
    int rc = sde_gmm_eval(h->gmm, h->p, t, x, out, NULL, batch, dim);
    h->seconds += bu_now() - t0;
    return rc;
}

static int jvp(const double *t, const double *x, const double *v, double *jv, size_t batch,
               size_t dim, void *u)
{
    struct host *h = u;
    double t0 = bu_now();
    int rc = sde_gmm_score_jvp(h->gmm, h->p, t, x, v, jv, batch, dim);
    h->seconds += bu_now() - t0;
    return rc;
}

struct run {
    sde_likelihood *lik;
    sde_noise *noise;
    const double *x;
    double *bpd;
    struct host *host;
    double host_seconds; /* of the run with the best own time */
    double best_own;     /* best (wall - host) of one run */
};

static void run_once(void *p)
{
    struct run *r = p;
    r->host->seconds = 0.0;
    sde_noise_set_counter(r->noise, 0);
    double t0 = bu_now();
    if (sde_likelihood_compute(r->lik, r->noise, r->x, B, D, 0, NULL, r->bpd, NULL, NULL, NULL) !=
        SDE_OK) {
        fprintf(stderr, "likelihood failed: %s\n", sde_last_error());
        exit(1);
    }
    double own = bu_now() - t0 - r->host->seconds;
    if (own < r->best_own) {
        r->best_own = own;
        r->host_seconds = r->host->seconds;
    }
}

int main(int argc, char **argv)
{
    double *mu = bu_alloc(K * D), var[K] = {0.05, 0.1, 0.2, 0.3}, w[K] = {0.4, 0.3, 0.2, 0.1};
    for (size_t k = 0; k < K; k++)
        for (size_t j = 0; j < D; j++)
            mu[k * D + j] = 0.5 * sin(1.3 * (double)k + 0.01 * (double)j);
    sde_process *p = NULL;
    sde_gmm *g = NULL;
    sde_model *m = NULL;
    sde_noise *noise = NULL;
    struct host host = {NULL, NULL, 0.0};
    if (sde_process_new_vp(&p, 0.1, 20.0, 1.0, 1000) != SDE_OK ||
        sde_gmm_new(&g, K, D, mu, var, w) != SDE_OK || sde_noise_new_philox(&noise, 7) != SDE_OK)
        return 1;
    host.gmm = g;
    host.p = p;
    if (sde_model_new(&m, p, D, net, &host, SDE_OUTPUT_SCORE, SDE_TIME_CONTINUOUS) != SDE_OK ||
        sde_model_set_jvp(m, jvp) != SDE_OK)
        return 1;
    double *x = bu_alloc(B * D), bpd[B];
    if (sde_gmm_sample(g, noise, x, B, D, 0) != SDE_OK)
        return 1;
    double pr = 1e300, pw = 1e300; /* the floor's prices, best of two measurements */
    for (int pass = 0; pass < 2; pass++) {
        double rd, wr;
        bu_stream_prices((size_t)B * (D + 1), 9, &rd, &wr);
        pr = fmin(pr, rd);
        pw = fmin(pw, wr);
    }

    char table[2048];
    int len = snprintf(table, sizeof table,
                       "# bench-likelihood: libscoresde %s, one thread, best of 5, VP, "
                       "%dx%d, K=%d mixture, Rademacher k=1, host JVP, DOPRI5 per-sample\n"
                       "# floor: per NFE 11R+4W, per step attempt 34R+6W and per accepted step "
                       "2R+2W (per row), per run 16R+6W; stream prices per array of %dx%d "
                       "doubles: read %.2f us, write %.2f us\n"
                       "%-8s %6s %6s %6s %10s %12s %12s %12s %8s %12s\n",
                       sde_version_string(), B, D, K, B, D + 1, 1e6 * pr, 1e6 * pw, "tol",
                       "nfe", "acc", "rej", "wall ms", "host ms", "lib us/nfe", "floor us/nfe",
                       "x floor", "bpd[0]");
    const double tols[3] = {1e-3, 1e-4, 1e-5};
    for (int i = 0; i < 3; i++) {
        sde_likelihood *l = NULL;
        if (sde_likelihood_new(&l, m, SDE_ODE_DOPRI5, B) != SDE_OK ||
            sde_likelihood_set_real(l, SDE_OPT_ODE_RTOL, tols[i]) != SDE_OK ||
            sde_likelihood_set_real(l, SDE_OPT_ODE_ATOL, tols[i]) != SDE_OK)
            return 1;
        struct run r = {l, noise, x, bpd, &host, 0.0, 1e300};
        double t = bu_best_time(run_once, &r, 5);
        uint64_t nfe = 0, acc = 0, rej = 0;
        const sde_ode_solver *sv = sde_likelihood_solver(l);
        if (sde_likelihood_get_nfe(l, &nfe) != SDE_OK ||
            sde_ode_solver_get_accepted_steps(sv, &acc) != SDE_OK ||
            sde_ode_solver_get_rejected_steps(sv, &rej) != SDE_OK)
            return 1;
        double R, W;
        bu_dopri5_traffic(nfe, acc, rej, 1, B, &R, &W);
        R += 10.0 * (double)nfe + 5.0;
        W += 4.0 * (double)nfe + 3.0;
        double floor = (R * pr + W * pw) / (double)nfe;
        double lib = r.best_own / (double)nfe;
        len += snprintf(table + len, sizeof table - (size_t)len,
                        "%-8.0e %6llu %6llu %6llu %10.1f %12.1f %12.1f %12.1f %8.2f %12.5f\n",
                        tols[i], (unsigned long long)nfe, (unsigned long long)acc,
                        (unsigned long long)rej, 1e3 * t, 1e3 * r.host_seconds, 1e6 * lib,
                        1e6 * floor, lib / floor, bpd[0]);
        sde_likelihood_free(l);
    }
    fputs(table, stdout);
    if (argc > 1) {
        FILE *f = fopen(argv[1], "w");
        if (f == NULL || fputs(table, f) < 0) {
            perror(argv[1]);
            return 1;
        }
        fclose(f);
    }
    sde_noise_free(noise);
    sde_model_free(m);
    sde_gmm_free(g);
    sde_process_free(p);
    free(mu);
    free(x);
    return 0;
}
