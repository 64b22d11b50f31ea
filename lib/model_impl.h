/* The layout of sde_model, shared by model.c and gmm.c (the built-in analytic model). */
#ifndef SDE_MODEL_IMPL_H
#define SDE_MODEL_IMPL_H

#include "sde_private.h"

struct sde_model {
    sde_process *process; /* own copy */
    size_t dim;
    sde_net_fn net;
    sde_jvp_fn jvp;
    void *user_data;
    int output, time_input;
    double *scratch; /* labels | a | s | raw, each sized by cap (raw: cap*dim) */
    size_t cap;
    double *jv; /* JVP result scratch, jv_cap*dim */
    size_t jv_cap;
    int busy; /* set while a host callback runs: re-entry is refused */
    int last_net_rc; /* raw status of the latest network call (drivers read a recoverable >0) */
    uint64_t calls;
    void *owned; /* user data the model owns (built-in models), freed with owned_free */
    void (*owned_free)(void *);
    /* Optional (issue 6, model wrappers): called when the scratch grows to `batch`, so a
     * wrapper can size its own scratch (and its base model's) outside the sampling loop. */
    int (*reserve_hook)(void *owned, size_t batch, const char *func);
};

/* sde_model_new with user data the model owns (ownership passes in even on failure). */
int sde__model_new_owned(sde_model **out, const sde_process *process, size_t dim,
                         sde_net_fn net, void *user_data, int output, int time_input,
                         void *owned, void (*owned_free)(void *), const char *func);

/* The network's time input for one sample at time t under `time_input` (::sde_time_input),
 * for any process the mode is defined on. On entry (*a, *s) are the continuous marginal at t;
 * on return they are the coefficients the output is converted with (the DDPM table's at the
 * truncated index for VP with SDE_TIME_REFERENCE_DISCRETE, unchanged otherwise). The caller
 * has checked t and the tables. Shared by the model adapter and the losses. */
void sde__time_label1(const sde_process *p, int time_input, double t, double *label,
                      double *a, double *s);

/* The score at (x, t) for the library's own drivers: the network writes straight into `work`
 * ([batch][dim], the driver's scratch) and the output is converted in place in one pass that
 * also checks finiteness. On error `work` holds garbage (it is scratch); nothing else is
 * touched. Saves the public sde_model_score()'s copy in the sampling loops. */
int sde__model_score_into(sde_model *m, const double *t, const double *x, double *work,
                          size_t batch, size_t dim, const char *func);

/* sde__model_score_into in three parts, so a driver can split the conversion pass over
 * threads (the PC steppers' pool): the checked network call (raw output into `work`, the
 * per-sample coefficients into the model's scratch); the in-place conversion of elements
 * [k0, k1) of row b, callable concurrently for disjoint parts, returning the OR of their
 * sde__nonfinite_flag()s; and, when any flag is set, the error naming the first bad element. */
int sde__model_score_call(sde_model *m, const double *t, const double *x, double *work,
                          size_t batch, size_t dim, const char *func);
uint64_t sde__model_score_convert(const sde_model *m, const double *x, double *work, size_t b,
                                  size_t k0, size_t k1);
int sde__model_score_failed(const double *t, const double *work, size_t batch, size_t dim,
                            const char *func);

/* The body of sde_model_eval, naming `func` in messages. */
int sde__model_eval(sde_model *m, const double *t, const double *x, double *raw_out,
                    double *score_out, double *x0_out, double *eps_out, size_t batch,
                    size_t dim, const char *func);

#endif
