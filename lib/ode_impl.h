/* The layout of sde_ode_solver and the internals shared by the ode_*.c files. Never installed.
 *
 *   ode_methods.c   method table: Butcher tableaux, dense-output matrices, orders, buffers
 *   ode_solver.c    creation, options, statistics, argument checks, public entry points
 *   ode_fixed.c     fixed-step driver (Euler, Heun, RK4)
 *   ode_adaptive.c  embedded Runge-Kutta driver (DOPRI5, BS3): per-sample or whole-batch
 *   ode_sampler.c   the probability-flow ODE sampler, encode / decode */
#ifndef SDE_ODE_IMPL_H
#define SDE_ODE_IMPL_H

#include "sde_private.h"

enum { SDE__ODE_MAX_STAGES = 7, SDE__ODE_MAX_BUFFERS = 9, SDE__ODE_MAX_DENSE = 4 };

/* One method. Adaptive methods are explicit FSAL embedded pairs in scipy's notation: `stages`
 * stages with nodes c[], matrix a[] (row-major stages x stages, strictly lower), weights b[];
 * the FSAL derivative at the new point is stage `stages`; e[] (stages + 1 entries) gives the
 * error estimate h sum_j e_j K_j; p[] ((stages + 1) x n_dense, row-major) the continuous
 * extension y(t_old + x h) = y_old + h sum_j K_j sum_m p[j][m] x^(m+1). */
typedef struct sde__ode_method {
    int method;
    const char *name;
    int order;
    int err_order; /* order of the embedded estimate; 0 for fixed-step methods */
    int buffers;   /* state-sized scratch buffers */
    int stages;
    const double *c, *a, *b, *e, *p;
    int n_dense;
} sde__ode_method;

/* The method's entry, or NULL for an unknown number. */
const sde__ode_method *sde__ode_method_find(int method);

struct sde_ode_solver {
    const sde__ode_method *m;
    size_t max_batch, dim;

    /* options */
    int64_t max_steps, num_steps;
    int per_sample, dense;
    double rtol, atol, first_step, min_step, max_step;

    /* scratch: m->buffers state-sized buffers in one block */
    double *block;
    double *buf[SDE__ODE_MAX_BUFFERS];
    /* per row / per group (a group is one row in per-sample mode, the batch otherwise) */
    double *trow;  /* [max_batch] the times handed to the RHS */
    double *gt;    /* [max_batch] current time of each group */
    double *gh;    /* [max_batch] signed step being attempted */
    double *ghabs; /* [max_batch] step-size magnitude carried between steps */
    double *gmin;  /* [max_batch] minimum step at the current time */
    double *gtmp;  /* [max_batch] initial-step work */
    uint64_t *gacc, *grej; /* [max_batch] accepted / rejected steps */
    size_t *gnext;         /* [max_batch] next output index */
    unsigned char *gflag;  /* [max_batch] SDE__ODE_G_* */

    /* statistics of the last integration */
    uint64_t nfe, accepted, rejected;
    double t_reached;
    size_t last_batch;
    int last_per_sample;

    int busy;
};

enum { SDE__ODE_G_DONE = 1, SDE__ODE_G_RETRY = 2 };

/* One integration call: its arguments and derived shape. */
typedef struct sde__ode_run {
    sde_ode_solver *s;
    sde_ode_rhs_fn rhs;
    void *user;
    double t0, t1, dir;
    size_t batch, dim, n;   /* n = batch * dim */
    int per_sample;
    size_t n_groups, glen, rows_per_group;
    size_t n_out;
    const double *t_out;
    double *y_out;
    const char *func; /* public function named in messages */
} sde__ode_run;

/* Result of one RHS evaluation: SDE_OK, SDE__ODE_RECOVERABLE (the callback returned > 0 and
 * the caller may retry), or an error status with the message recorded. */
enum { SDE__ODE_RECOVERABLE = 1 };
int sde__ode_call(sde__ode_run *r, const double *y, double *dydt, int adaptive);

/* Copy the state rows of group g (or everything) into output k. */
void sde__ode_emit(sde__ode_run *r, size_t k, size_t g, const double *src);

/* The drivers: integrate buf[0] (already holding y0) from t0 to t1. They fill the per-group
 * statistics; the caller sums them and publishes the result. */
int sde__ode_fixed(sde__ode_run *r);
int sde__ode_adaptive(sde__ode_run *r);

/* The body of the public integrate functions, naming `func` in messages. `per_sample` is 0 or
 * 1 to override the option (the sampler's reference mode), -1 to use it. */
int sde__ode_integrate(sde_ode_solver *s, sde_ode_rhs_fn rhs, void *user, double t0, double t1,
                       double *y, size_t n_out, const double *t_out, double *y_out, size_t batch,
                       size_t dim, int per_sample, const char *func);

/* Option plumbing shared with the sampler: the solver's own options. */
int sde__ode_solver_option(int option); /* 1 if `option` is a solver option */
int sde__ode_set_int(sde_ode_solver *s, int option, int64_t value, const char *func);
int sde__ode_set_real(sde_ode_solver *s, int option, double value, const char *func);
int sde__ode_get_int(const sde_ode_solver *s, int option, int64_t *value, const char *func);
int sde__ode_get_real(const sde_ode_solver *s, int option, double *value, const char *func);
/* Check an option's type and bounds against the option table (message names func). */
int sde__ode_option_check(int option, int type, double value, const char *func);

/* The constructor arguments every probability-flow driver (ODE sampler, likelihood) takes:
 * `model` not NULL, `method` a solver method, 1 <= max_batch, and max_batch rows of
 * `row_doubles` doubles addressable; then reserves the model's scratch for max_batch, so that
 * runs do not allocate. Messages name `func`. */
int sde__ode_driver_args(sde_model *model, int method, size_t max_batch, size_t row_doubles,
                         const char *func);

#endif
