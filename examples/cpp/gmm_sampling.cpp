// sde-cpp-gmm-sampling: libscoresde from C++17, written only against the public headers.
//
// Build against an installed library:
//   c++ -std=c++17 gmm_sampling.cpp $(pkg-config --cflags --libs scoresde) -o gmm_sampling
//
// What it shows (docs/cpp.md walks through it):
//  - RAII: every handle lives in a std::unique_ptr whose deleter is its sde_*_free function;
//  - errors: a negative status becomes an sde::error exception carrying sde_status_name() and
//    the message of sde_last_error();
//  - the host network as a C++ lambda, bridged to the C callback through user_data. No
//    exception may cross the C boundary: the trampoline catches it, returns a failure status
//    (the library then returns SDE_E_CALLBACK with the caller's arrays untouched), and the
//    exception is rethrown after the library call returns;
//  - threads: the sampler runs its element-wise work on 2 threads, while the network is only
//    ever called on the calling thread.
//
// The "network" is the exact score of a 2-D Gaussian mixture, written here in plain C++, so the
// samples can be checked: the program prints one line per check ("ok ..." or "FAIL ...") and a
// last line "PASS: ..." (exit 0) or "FAIL: ..." (exit 1). Checks: the lambda's score equals
// sde_gmm_eval(); every recovered component weight and mean is within 5 standard errors and
// every component variance within 5 standard errors (relative, sqrt(2/(n dim))) of the truth;
// the network ran only on the calling thread; a network that throws surfaces as that
// exception, with SDE_E_CALLBACK from the library and the output array untouched.
#include <sde/sde.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sde {

// A failed libscoresde call: its status and "SDE_E_...: <the library's message>" as what().
class error : public std::runtime_error {
public:
    error(int status, const std::string &message) : std::runtime_error(message), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

// Throws sde::error for a negative status; returns SDE_OK or a positive non-error status
// (SDE_ABORTED) unchanged. The library's message already names the function and argument.
inline int check(int status)
{
    if (status >= 0)
        return status;
    // Copy the message first: it is valid only until the next libscoresde call on this thread.
    std::string detail = sde_last_error();
    throw error(status, std::string(sde_status_name(status)) + ": " + detail);
}

// Owning handles: std::unique_ptr with the handle's free function as its deleter.
template <typename T, void (*Free)(T *)>
struct deleter {
    void operator()(T *p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T *)>
using handle = std::unique_ptr<T, deleter<T, Free>>;

using process = handle<sde_process, sde_process_free>;
using gmm = handle<sde_gmm, sde_gmm_free>;
using model = handle<sde_model, sde_model_free>;
using noise = handle<sde_noise, sde_noise_free>;
using sampler = handle<sde_sampler, sde_sampler_free>;

// Calls a constructor `int ctor(T **out, args...)` and returns the owning handle, or throws.
template <typename Handle, typename Ctor, typename... Args>
Handle make(Ctor ctor, Args &&...args)
{
    typename Handle::pointer p = nullptr;
    check(ctor(&p, std::forward<Args>(args)...));
    return Handle(p);
}

// A host network as any C++ callable `void(const double *t, const double *x, double *out,
// size_t batch, size_t dim)` that may throw. The model borrows this object (user_data), so it
// must outlive the model and never move: copying and moving are disabled.
template <typename Net>
class network {
public:
    explicit network(Net net) : net_(std::move(net)) {}
    network(const network &) = delete;
    network &operator=(const network &) = delete;

    // The sde_net_fn trampoline. noexcept: an exception escaping into C would be undefined
    // behaviour, so it is parked here and the library sees a fatal failure (-1).
    static int call(const double *t, const double *x, double *out, size_t batch, size_t dim,
                    void *user_data) noexcept
    {
        auto *self = static_cast<network *>(user_data);
        try {
            self->net_(t, x, out, batch, dim);
            return 0;
        } catch (const std::exception &e) {
            sde_set_error_message(e.what()); // the library's message then carries this text
            self->pending_ = std::current_exception();
        } catch (...) {
            self->pending_ = std::current_exception();
        }
        return -1;
    }

    // Use right after a library call that may have called the network: rethrows what the
    // network threw, else behaves as sde::check().
    int check(int status)
    {
        if (pending_) {
            std::exception_ptr e = std::exchange(pending_, nullptr);
            std::rethrow_exception(e);
        }
        return sde::check(status);
    }

    model make_model(const sde_process *p, size_t dim, int output, int time_input)
    {
        return make<model>(sde_model_new, p, dim, &network::call, static_cast<void *>(this),
                           output, time_input);
    }

private:
    Net net_;
    std::exception_ptr pending_;
};

} // namespace sde

namespace {

constexpr size_t K = 3, DIM = 2, BATCH = 4000;
constexpr double pi = 3.14159265358979323846;
const double means[K * DIM] = {2.0, 0.0, -1.0, 1.7, -1.0, -1.7};
const double variances[K] = {0.04, 0.09, 0.06};
const double weights[K] = {0.5, 0.3, 0.2};

int failures = 0;

void report(bool ok, const std::string &what)
{
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    failures += ok ? 0 : 1;
}

// The exact score of the mixture carried to time t (sde/gmm.h gives the formula), for
// x_t = a x0 + s eps with a, s from the process: what a perfectly trained network returns.
void mixture_score(const sde_process *p, const double *t, const double *x, double *out,
                   size_t batch, size_t dim)
{
    std::vector<double> a(batch), s(batch); // may throw std::bad_alloc: the bridge catches it
    sde::check(sde_process_marginal(p, t, a.data(), s.data(), batch));
    for (size_t b = 0; b < batch; b++) {
        double logit[K], V[K], top = -INFINITY, total = 0.0;
        for (size_t k = 0; k < K; k++) {
            V[k] = a[b] * a[b] * variances[k] + s[b] * s[b];
            double d2 = 0.0;
            for (size_t d = 0; d < dim; d++) {
                double diff = a[b] * means[k * dim + d] - x[b * dim + d];
                d2 += diff * diff;
            }
            logit[k] = std::log(weights[k]) - 0.5 * dim * std::log(2 * pi * V[k]) - d2 / (2 * V[k]);
            top = std::max(top, logit[k]);
        }
        for (size_t k = 0; k < K; k++)
            total += (logit[k] = std::exp(logit[k] - top));
        for (size_t d = 0; d < dim; d++) {
            double sum = 0.0;
            for (size_t k = 0; k < K; k++)
                sum += logit[k] / total * (a[b] * means[k * dim + d] - x[b * dim + d]) / V[k];
            out[b * dim + d] = sum;
        }
    }
}

int run()
{
    // VP(0.1, 20) with N = 500: the reverse-diffusion predictor steps one discrete index at a
    // time, so the sampler keeps its default of N grid steps.
    auto vp = sde::make<sde::process>(sde_process_new_vp, 0.1, 20.0, 1.0, int64_t{500});
    auto mixture = sde::make<sde::gmm>(sde_gmm_new, K, DIM, means, variances, weights);
    const sde_process *process = vp.get();
    const std::thread::id caller = std::this_thread::get_id();
    size_t calls = 0, foreign_calls = 0;

    // The host network: a lambda capturing what it needs, bridged through user_data.
    auto lambda = [&](const double *t, const double *x, double *out, size_t batch, size_t dim) {
        calls++;
        foreign_calls += std::this_thread::get_id() != caller;
        mixture_score(process, t, x, out, batch, dim);
    };
    sde::network<decltype(lambda)> net(lambda);
    sde::model model = net.make_model(vp.get(), DIM, SDE_OUTPUT_SCORE, SDE_TIME_CONTINUOUS);

    // 1. The lambda's score against the library's own closed form.
    {
        const double t[4] = {1e-3, 0.1, 0.5, 1.0};
        const double x[4 * DIM] = {2.1, 0.1, -1.0, 1.0, 0.3, -0.4, 3.0, 3.0};
        double mine[4 * DIM], ref[4 * DIM], worst = 0.0;
        char line[160];
        net.check(sde_model_score(model.get(), t, x, mine, 4, DIM));
        sde::check(sde_gmm_eval(mixture.get(), vp.get(), t, x, ref, nullptr, 4, DIM));
        for (size_t i = 0; i < 4 * DIM; i++)
            worst = std::max(worst, std::fabs(mine[i] - ref[i]) / (1.0 + std::fabs(ref[i])));
        std::snprintf(line, sizeof line, "the lambda's score equals sde_gmm_eval() (worst "
                      "relative difference %.1e, bound 1e-12)", worst);
        report(worst < 1e-12, line);
    }

    // 2. Sample: reverse diffusion + annealed Langevin, 500 steps, 2 threads, denoised output.
    auto pc = sde::make<sde::sampler>(sde_sampler_new, vp.get(), SDE_PREDICTOR_REVERSE_DIFFUSION,
                                      SDE_CORRECTOR_ALD, DIM, BATCH);
    sde::check(sde_sampler_set_real(pc.get(), SDE_OPT_PC_SNR, 0.16));
    sde::check(sde_sampler_set_int(pc.get(), SDE_OPT_PC_THREADS, 2));
    auto philox = sde::make<sde::noise>(sde_noise_new_philox, uint64_t{7});
    std::vector<double> x(BATCH * DIM);
    calls = 0;
    net.check(sde_sampler_run(pc.get(), model.get(), philox.get(), nullptr, x.data(), BATCH,
                              DIM, 0));
    report(foreign_calls == 0 && calls == 1000,
           "the network was called " + std::to_string(calls) +
               " times (500 predictor + 500 corrector), all on the calling thread");

    // 3. Statistics per component, samples assigned to their most likely component.
    std::vector<double> ones(BATCH, 1.0), zeros(BATCH, 0.0), resp(BATCH * K);
    sde::check(sde_gmm_responsibilities(mixture.get(), ones.data(), zeros.data(), x.data(),
                                        resp.data(), BATCH, DIM));
    double count[K] = {}, sum[K][DIM] = {}, sumsq[K] = {};
    for (size_t b = 0; b < BATCH; b++) {
        size_t best = std::max_element(&resp[b * K], &resp[b * K] + K) - &resp[b * K];
        count[best]++;
        for (size_t d = 0; d < DIM; d++)
            sum[best][d] += x[b * DIM + d];
    }
    for (size_t b = 0; b < BATCH; b++) {
        size_t best = std::max_element(&resp[b * K], &resp[b * K] + K) - &resp[b * K];
        for (size_t d = 0; d < DIM; d++) {
            double dev = x[b * DIM + d] - sum[best][d] / count[best];
            sumsq[best] += dev * dev;
        }
    }
    for (size_t k = 0; k < K; k++) {
        char line[256];
        double n = count[k], w = n / BATCH, se_w = std::sqrt(weights[k] * (1 - weights[k]) / BATCH);
        std::snprintf(line, sizeof line, "component %zu: weight %.3f (true %.2f, bound %.3f)", k, w,
                      weights[k], 5 * se_w);
        report(std::fabs(w - weights[k]) <= 5 * se_w, line);
        double mean_err = 0.0, se_m = std::sqrt(variances[k] / n);
        for (size_t d = 0; d < DIM; d++)
            mean_err = std::max(mean_err, std::fabs(sum[k][d] / n - means[k * DIM + d]));
        std::snprintf(line, sizeof line, "component %zu: mean (%+.3f, %+.3f) (true (%+.1f, %+.1f), "
                      "bound %.3f)", k, sum[k][0] / n, sum[k][1] / n, means[k * DIM],
                      means[k * DIM + 1], 5 * se_m);
        report(mean_err <= 5 * se_m, line);
        double var = sumsq[k] / (DIM * (n - 1)), rel_se = std::sqrt(2.0 / (DIM * n));
        std::snprintf(line, sizeof line, "component %zu: variance %.4f (true %.2f, relative bound "
                      "%.3f)", k, var, variances[k], 5 * rel_se);
        report(std::fabs(var / variances[k] - 1.0) <= 5 * rel_se, line);
    }

    // 4. A network that throws: the exception comes back out of the library call.
    auto failing = [&](const double *t, const double *x_in, double *out, size_t batch, size_t dim) {
        if (++calls > 5)
            throw std::runtime_error("simulated network failure");
        mixture_score(process, t, x_in, out, batch, dim);
    };
    sde::network<decltype(failing)> bad_net(failing);
    sde::model bad_model = bad_net.make_model(vp.get(), DIM, SDE_OUTPUT_SCORE, SDE_TIME_CONTINUOUS);
    std::vector<double> untouched(x);
    calls = 0;
    int status = sde_sampler_run(pc.get(), bad_model.get(), philox.get(), nullptr, x.data(), BATCH,
                                 DIM, 0);
    std::string message = sde_last_error();
    try {
        bad_net.check(status);
        report(false, "a throwing network: no exception came back");
    } catch (const std::runtime_error &e) {
        report(status == SDE_E_CALLBACK && std::string(e.what()) == "simulated network failure" &&
                   message.find("simulated network failure") != std::string::npos && x == untouched,
               std::string("a throwing network: the library returned ") + sde_status_name(status) +
                   " (\"" + message + "\"), the exception \"" + e.what() +
                   "\" was rethrown, and the output array is untouched");
    }

    // 5. A library error as an exception: an option value out of range.
    try {
        sde::check(sde_sampler_set_real(pc.get(), SDE_OPT_PC_SNR, -1.0));
        report(false, "an invalid option value was accepted");
    } catch (const sde::error &e) {
        report(e.status() == SDE_E_INVALID, std::string("a library error as sde::error: ") +
                                                e.what());
    }
    return failures;
}

} // namespace

int main()
{
    try {
        int bad = run();
        std::printf("%s\n", bad == 0 ? "PASS: every check holds"
                                     : "FAIL: some checks do not hold");
        return bad == 0 ? 0 : 1;
    } catch (const std::exception &e) { // every handle was freed by its unique_ptr
        std::printf("FAIL: %s\n", e.what());
        return 1;
    }
}
