/* The cross-cutting API: version, status names, thread-local errors, host messages, logging,
 * free(NULL), out-params on failure. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

START_TEST(version_macros_match_runtime)
{
    ck_assert_int_eq(sde_version_number(), SDE_VERSION_NUMBER);
    ck_assert_str_eq(sde_version_string(), SDE_VERSION_STRING);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", SDE_VERSION_MAJOR, SDE_VERSION_MINOR,
             SDE_VERSION_PATCH);
    ck_assert_str_eq(buf, sde_version_string());
    ck_assert_int_eq(SDE_VERSION_NUMBER,
                     SDE_VERSION_MAJOR * 10000 + SDE_VERSION_MINOR * 100 + SDE_VERSION_PATCH);
}
END_TEST

START_TEST(status_names_are_distinct)
{
    const int codes[] = {SDE_OK,          SDE_ABORTED,       SDE_E_NOMEM,
                         SDE_E_INVALID,   SDE_E_DIM,         SDE_E_STATE,
                         SDE_E_CALLBACK,  SDE_E_NUMERIC,     SDE_E_NOT_CONVERGED,
                         SDE_E_UNSUPPORTED};
    const int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(sde_status_name(codes[i]));
        ck_assert_str_ne(sde_status_name(codes[i]), "SDE_UNKNOWN_STATUS");
        ck_assert_str_ne(sde_status_string(codes[i]), "unknown status code");
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(sde_status_name(codes[i]), sde_status_name(codes[j]));
            ck_assert_str_ne(sde_status_string(codes[i]), sde_status_string(codes[j]));
        }
    }
    ck_assert_str_eq(sde_status_name(SDE_E_INVALID), "SDE_E_INVALID");
    ck_assert_str_eq(sde_status_name(12345), "SDE_UNKNOWN_STATUS");
    ck_assert_str_eq(sde_status_string(-999), "unknown status code");
    /* the fixed numbers are part of the ABI */
    ck_assert_int_eq(SDE_E_NOMEM, -1);
    ck_assert_int_eq(SDE_E_UNSUPPORTED, -8);
    ck_assert_int_eq(SDE_ABORTED, 1);
}
END_TEST

static void *fail_in_thread(void *arg)
{
    sde_process *p = NULL;
    int rc = sde_process_new_ve(&p, -1.0, 1.0, 1.0, 10);
    char *copy = malloc(512);
    snprintf(copy, 512, "%d|%s", rc, sde_last_error());
    (void)arg;
    return copy;
}

START_TEST(last_error_is_thread_local)
{
    sde_process *p = NULL;
    ck_assert_int_eq(sde_process_new_vp(&p, 0.5, 0.1, 1.0, 10), SDE_E_INVALID);
    ck_assert_ptr_null(p);
    ck_assert(strstr(sde_last_error(), "sde_process_new_vp") != NULL);
    ck_assert(strstr(sde_last_error(), "beta_max (0.10000000000000001)") != NULL);
    pthread_t th;
    void *res = NULL;
    ck_assert_int_eq(pthread_create(&th, NULL, fail_in_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, &res), 0);
    ck_assert(strstr((char *)res, "sigma_min (-1)") != NULL);
    free(res);
    /* the other thread's failure did not overwrite ours */
    ck_assert(strstr(sde_last_error(), "sde_process_new_vp") != NULL);
    sde_clear_error();
    ck_assert_str_eq(sde_last_error(), "");
}
END_TEST

static int failing_net(const double *t, const double *x, double *out, size_t batch, size_t dim,
                       void *u)
{
    (void)t, (void)x, (void)out, (void)batch, (void)dim;
    if (u != NULL)
        sde_set_error_message((const char *)u);
    return -2;
}

START_TEST(host_message_is_reported_once)
{
    sde_process *p = NULL;
    ck_assert_int_eq(sde_process_new_vp(&p, 0.1, 20, 1, 100), SDE_OK);
    sde_model *m = NULL;
    ck_assert_int_eq(sde_model_new(&m, p, 1, failing_net, "CUDA out of memory", SDE_OUTPUT_SCORE,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    double t = 0.5, x = 0, s = 0;
    tu_assert_fails_with(sde_model_score(m, &t, &x, &s, 1, 1), SDE_E_CALLBACK,
                         "CUDA out of memory");
    sde_model_free(m);
    /* a second model whose callback leaves no message gets the generic text, not a stale one */
    ck_assert_int_eq(sde_model_new(&m, p, 1, failing_net, NULL, SDE_OUTPUT_SCORE,
                                   SDE_TIME_CONTINUOUS), SDE_OK);
    sde_set_error_message("stale message from an earlier call");
    tu_assert_fails_with(sde_model_score(m, &t, &x, &s, 1, 1), SDE_E_CALLBACK, "returned -2");
    ck_assert(strstr(sde_last_error(), "stale") == NULL);
    sde_model_free(m);
    sde_process_free(p);
}
END_TEST

struct log_capture {
    int count;
    int level;
    char last[256];
};

static void capture(int level, const char *msg, void *u)
{
    struct log_capture *c = u;
    c->count++;
    c->level = level;
    snprintf(c->last, sizeof c->last, "%s", msg);
}

START_TEST(log_hook_receives_errors)
{
    struct log_capture c = {0, 0, ""};
    sde_log_set(capture, &c);
    sde_gmm *g = NULL;
    double mu = 0, v = -1, w = 1;
    ck_assert_int_eq(sde_gmm_new(&g, 1, 1, &mu, &v, &w), SDE_E_INVALID);
    sde_log_set(NULL, NULL);
    ck_assert_int_eq(c.count, 1);
    ck_assert_int_eq(c.level, SDE_LOG_ERROR);
    ck_assert_str_eq(c.last, sde_last_error());
    ck_assert_int_eq(sde_gmm_new(&g, 1, 1, &mu, &v, &w), SDE_E_INVALID);
    ck_assert_int_eq(c.count, 1); /* removed */
}
END_TEST

START_TEST(free_accepts_null)
{
    sde_process_free(NULL);
    sde_model_free(NULL);
    sde_gmm_free(NULL);
    sde_noise_free(NULL);
    ck_assert_int_eq(sde_process_kind(NULL), 0);
    ck_assert_uint_eq(sde_gmm_dim(NULL), 0);
    ck_assert_uint_eq(sde_noise_counter(NULL), 0);
}
END_TEST

/* Every option's number encodes its type (ints 100-999, reals 1000-1999), names are unique
 * and start with SDE_OPT_, bounds are ordered; unknown numbers are refused. */
START_TEST(option_table_is_consistent)
{
    int count = 0;
    const char *names[2000] = {0};
    for (int opt = 0; opt < 2000; opt++) {
        const char *name = sde_option_name(opt);
        double lo = 0, hi = 0;
        if (name == NULL) {
            ck_assert_int_eq(sde_option_type(opt), 0);
            ck_assert_int_eq(sde_option_bounds(opt, &lo, &hi), SDE_E_INVALID);
            continue;
        }
        count++;
        ck_assert_msg(strncmp(name, "SDE_OPT_", 8) == 0, "%d: %s", opt, name);
        int want = opt >= 1000 ? SDE_OPTION_REAL : SDE_OPTION_INT;
        ck_assert_msg(opt >= 100, "%s: number %d below the option ranges", name, opt);
        ck_assert_msg(sde_option_type(opt) == want, "%s: type %d for number %d", name,
                      sde_option_type(opt), opt);
        ck_assert_int_eq(sde_option_bounds(opt, &lo, &hi), SDE_OK);
        ck_assert_msg(lo <= hi, "%s: bounds [%g, %g]", name, lo, hi);
        for (int j = 0; j < opt; j++)
            if (names[j] != NULL)
                ck_assert_str_ne(names[j], name);
        names[opt] = name;
    }
    ck_assert_int_gt(count, 10);
    ck_assert_str_eq(sde_option_name(SDE_OPT_PC_SNR), "SDE_OPT_PC_SNR");
    ck_assert_int_eq(sde_option_type(SDE_OPT_PC_STEPS), SDE_OPTION_INT);
    double lo, hi;
    tu_assert_fails_with(sde_option_bounds(SDE_OPT_PC_SNR, NULL, &hi), SDE_E_INVALID, "lo");
    tu_assert_fails_with(sde_option_bounds(99999, &lo, &hi), SDE_E_INVALID, "99999");
}
END_TEST

/* sde_option_next walks exactly the numbers that have names, in increasing order; an
 * enumerated option names every value of its bounds (so a caller can list its choices) with
 * distinct SDE_ constants, and other options name none. */
START_TEST(option_enumeration_and_value_names)
{
    int walked = 0, prev = 0, enumerated = 0;
    for (int o = sde_option_next(0); o != 0; o = sde_option_next(o)) {
        ck_assert_int_gt(o, prev);
        for (int between = prev + 1; between < o; between++)
            ck_assert_ptr_null(sde_option_name(between));
        ck_assert_ptr_nonnull(sde_option_name(o));
        prev = o;
        walked++;
        double lo, hi;
        ck_assert_int_eq(sde_option_bounds(o, &lo, &hi), SDE_OK);
        if (sde_option_value_name(o, (int64_t)lo) == NULL) {
            ck_assert_ptr_null(sde_option_value_name(o, (int64_t)hi));
            continue;
        }
        enumerated++;
        ck_assert_int_eq(sde_option_type(o), SDE_OPTION_INT);
        ck_assert_ptr_null(sde_option_value_name(o, (int64_t)lo - 1));
        ck_assert_ptr_null(sde_option_value_name(o, (int64_t)hi + 1));
        for (int64_t v = (int64_t)lo; v <= (int64_t)hi; v++) {
            const char *name = sde_option_value_name(o, v);
            ck_assert_msg(name != NULL && strncmp(name, "SDE_", 4) == 0, "%s value %lld",
                          sde_option_name(o), (long long)v);
            for (int64_t u = (int64_t)lo; u < v; u++)
                ck_assert_str_ne(sde_option_value_name(o, u), name);
        }
    }
    for (int o = prev + 1; o < 6000; o++)
        ck_assert_ptr_null(sde_option_name(o));
    ck_assert_int_eq(sde_option_next(prev), 0);
    ck_assert_int_eq(sde_option_next(-5), sde_option_next(0));
    ck_assert_int_gt(walked, 50);
    ck_assert_int_eq(enumerated, 5);
    ck_assert_str_eq(sde_option_value_name(SDE_OPT_DDIM_SPACING, SDE_DDIM_SPACING_QUADRATIC),
                     "SDE_DDIM_SPACING_QUADRATIC");
    ck_assert_str_eq(sde_option_value_name(SDE_OPT_CTRL_METHOD, SDE_CTRL_SMC), "SDE_CTRL_SMC");
    ck_assert_ptr_null(sde_option_value_name(SDE_OPT_PC_STEPS, 1));
    ck_assert_ptr_null(sde_option_value_name(99999, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_add_test(tc, version_macros_match_runtime);
    tcase_add_test(tc, status_names_are_distinct);
    tcase_add_test(tc, last_error_is_thread_local);
    tcase_add_test(tc, host_message_is_reported_once);
    tcase_add_test(tc, log_hook_receives_errors);
    tcase_add_test(tc, free_accepts_null);
    tcase_add_test(tc, option_table_is_consistent);
    tcase_add_test(tc, option_enumeration_and_value_names);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
