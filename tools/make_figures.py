#!/usr/bin/python3
"""Make the guide's figures (docs/figures.md) with libscoresde's Python package, and check the
data they show.

  marginal_std.png  the marginal std s(t) of VP, sub-VP and VE from sde_process_marginal(),
                    with the closed forms of docs/guide.md overplotted;
  trajectories.png  forward noising (the DDPM discretisation, sde_process_discretize()) and
                    reverse-SDE sampling (the PC sampler's trajectory recording) of a 1-D
                    two-component mixture, over its perturbed density p_t(x);
  pf_vs_sde.png     probability-flow ODE paths against reverse-SDE paths from the same prior
                    points, and the distribution of both samplers' outputs against p_0.

Every run checks what the figures show and prints one line per check, then "PASS: ..." (exit
0) or "FAIL: ..." (exit 1): the library's marginal std equals the closed form; the forward
chain's mean and variance follow the DDPM tables; the outputs of both samplers match the
mixture's weights, mean and variance; the probability-flow run ignores its noise. With
--check nothing is written and matplotlib is not needed (the meson test 'figures' runs this).
Seeds are fixed, so the figures are reproducible.

Regenerate the committed PNGs from a build directory `build`:
  /usr/bin/python3 tools/make_figures.py --library build/lib/libscoresde.so.0
"""

import argparse
import io
import os
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent

# The data: a 1-D mixture with two well separated components (the VP prior is N(0, 1)).
MEANS = np.array([[-1.5], [1.0]])
VARIANCES = np.array([0.04, 0.09])
WEIGHTS = np.array([0.35, 0.65])
VP_ARGS = dict(beta_min=0.1, beta_max=20.0, T=1.0, N=1000)
VE_ARGS = dict(sigma_min=0.01, sigma_max=50.0, T=1.0, N=1000)
N_STATS = 4000   # samples behind every statistical check and histogram
N_PATHS = 10     # paths drawn per panel (every 4th step: the recorded states, subsampled)
Z_BOUND = 5.0    # statistical bounds, in standard errors

problems = []


def report(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        problems.append(what)


def within(name, got, want, se, z=Z_BOUND):
    report(abs(got - want) <= z * se,
           f"{name}: {got:.4f} (expected {want:.4f}, bound {z:g} SE = {z * se:.4f})")


def moments(x):
    """Mean, variance and their standard errors of a 1-D sample."""
    x = np.asarray(x).reshape(-1)
    n = x.size
    m, v = x.mean(), x.var(ddof=1)
    m4 = np.mean((x - m) ** 4)
    return m, v, np.sqrt(v / n), np.sqrt(max(m4 - v * v, 0.0) / n)


def mixture_moments():
    m = float(WEIGHTS @ MEANS[:, 0])
    v = float(WEIGHTS @ (VARIANCES + MEANS[:, 0] ** 2)) - m * m
    return m, v


# ---- data ---------------------------------------------------------------------------------

def marginal_data(sde):
    """s(t) of VP, sub-VP, VE from the library, and the closed forms."""
    t = np.linspace(0.0, 1.0, 201)
    bmin, bmax = VP_ARGS["beta_min"], VP_ARGS["beta_max"]
    smin, smax = VE_ARGS["sigma_min"], VE_ARGS["sigma_max"]
    log_a = -t * t * (bmax - bmin) / 4 - t * bmin / 2
    one_minus_a2 = -np.expm1(2 * log_a)          # 1 - a^2 without cancellation at small t
    sigma = smin * (smax / smin) ** t
    closed = {"VP": np.sqrt(one_minus_a2), "sub-VP": one_minus_a2, "VE": sigma,
              "VE (from the data)": np.sqrt(sigma ** 2 - smin ** 2)}
    vp, subvp = sde.Process.vp(**VP_ARGS), sde.Process.subvp(**VP_ARGS)
    ve = sde.Process.ve(**VE_ARGS)
    lib = {"VP": vp.marginal(t)[1], "sub-VP": subvp.marginal(t)[1], "VE": ve.marginal(t)[1],
           "VE (from the data)": ve.marginal_std_from_data(t)}
    for name in closed:
        # error relative to max(|closed form|, 1e-3): three of the stds are 0 at t = 0
        err = np.max(np.abs(lib[name] - closed[name]) / np.maximum(np.abs(closed[name]), 1.0e-3))
        report(err <= 1e-12, f"marginal std of {name} equals the closed form on 201 times "
                             f"(worst relative error {err:.1e}, bound 1e-12)")
    return t, lib, closed


def forward_chain(sde, vp, gmm, batch, seed):
    """x_0 from the mixture, then the N forward DDPM steps x <- x + f + G z. Returns the time
    of each state (step k at t = k/N, for plotting) and the states (N+1, batch)."""
    N = vp.N
    noise = sde.Noise.philox(seed)
    x = gmm.sample(noise, batch)
    # a time inside each discrete index i: i(t) = floor(t (N-1)/T) must be i
    t_idx = np.minimum((np.arange(N) + 0.25) / (N - 1), vp.T)
    if not np.array_equal(vp.discrete_index(t_idx), np.arange(N)):
        raise RuntimeError("the step times do not hit every discrete index once")
    states = np.empty((N + 1, batch))
    states[0] = x[:, 0]
    for i in range(N):
        f, G = vp.discretize(t_idx[i], x)
        z = noise.normal(batch, 1)
        x = x + f + G[:, None] * z
        states[i + 1] = x[:, 0]
    return np.arange(N + 1) / N, states


def sampler_run(sde, vp, model, x_init, seed, probability_flow, record):
    """Euler-Maruyama on the reverse SDE (or the probability-flow ODE) from x_init, with the
    last mean returned (denoising). Returns (grid, trajectory (N+1, batch) or None, output)."""
    batch = x_init.shape[0]
    with sde.Sampler(vp, "euler_maruyama", "none", dim=1, max_batch=batch,
                     probability_flow=int(probability_flow)) as pc:
        grid = pc.time_grid()
        buf = pc.set_trajectory(np.arange(grid.size), batch) if record else None
        with sde.Noise.philox(seed) as noise:
            out = pc.run(model, noise, x_init=x_init)
        return grid, (None if buf is None else buf[:, :, 0].copy()), out[:, 0]


def check_samples(name, gmm, x):
    """Per component (samples assigned to their most likely component): weight, mean and
    variance; then the overall mean and variance, against the mixture."""
    comp = np.argmax(gmm.responsibilities(1.0, 0.0, x.reshape(-1, 1)), axis=1)
    n = x.size
    for k in range(WEIGHTS.size):
        mine = x[comp == k]
        within(f"{name}: weight of component {k}", mine.size / n, WEIGHTS[k],
               np.sqrt(WEIGHTS[k] * (1 - WEIGHTS[k]) / n))
        within(f"{name}: mean of component {k}", mine.mean(), MEANS[k, 0],
               np.sqrt(VARIANCES[k] / mine.size))
        within(f"{name}: variance of component {k}", mine.var(ddof=1), VARIANCES[k],
               VARIANCES[k] * np.sqrt(2.0 / mine.size))
    m0, v0 = mixture_moments()
    m, v, se_m, se_v = moments(x)
    within(f"{name}: mean", m, m0, se_m)
    within(f"{name}: variance", v, v0, se_v)


def trajectory_data(sde):
    vp = sde.Process.vp(**VP_ARGS)
    gmm = sde.Gmm(MEANS, VARIANCES, WEIGHTS)
    model = sde.Model.from_gmm(vp, gmm)

    # forward: after the step at index i the DDPM chain is sqrt(alphabar_i) x0 + sqrt(1 -
    # alphabar_i) z exactly, so mean and variance follow the table
    t_fwd, fwd = forward_chain(sde, vp, gmm, N_STATS, seed=11)
    ab = vp.table("alphas_cumprod")
    m0, v0 = mixture_moments()
    for i in (99, 299, 999):
        m, v, se_m, se_v = moments(fwd[i + 1])
        within(f"forward chain after {i + 1} steps: mean", m, np.sqrt(ab[i]) * m0, se_m)
        within(f"forward chain after {i + 1} steps: variance", v, ab[i] * v0 + 1 - ab[i], se_v)

    # reverse SDE and probability-flow ODE from the same prior points
    with sde.Noise.philox(12) as noise:
        prior = vp.prior_sample(noise, N_STATS, 1)
    grid, sde_paths, sde_out = sampler_run(sde, vp, model, prior, 13, False, record=True)
    _, pf_paths, pf_out = sampler_run(sde, vp, model, prior, 13, True, record=True)
    _, _, pf_other = sampler_run(sde, vp, model, prior, 99, True, record=False)
    check_samples("reverse SDE output", gmm, sde_out)
    check_samples("probability-flow ODE output", gmm, pf_out)
    report(np.array_equal(pf_out, pf_other),
           "the probability-flow run does not depend on the noise seed (bit-identical)")
    report(np.array_equal(sde_paths[0], prior[:, 0]) and np.array_equal(pf_paths[0], prior[:, 0]),
           "both recorded trajectories start at the same prior points")
    ms, vs, se_ms, se_vs = moments(sde_out)
    mp, vpf, se_mp, se_vp = moments(pf_out)
    within("PF-ODE mean minus reverse-SDE mean", mp - ms, 0.0, np.hypot(se_ms, se_mp))
    within("PF-ODE variance minus reverse-SDE variance", vpf - vs, 0.0, np.hypot(se_vs, se_vp))

    # the density p_t(x) behind the paths
    tt = np.linspace(1e-3, 1.0, 160)
    xx = np.linspace(-3.2, 3.2, 160)
    T, X = np.meshgrid(tt, xx)
    dens = np.exp(gmm.logp(vp, T.reshape(-1), X.reshape(-1, 1))).reshape(X.shape)
    p0 = np.exp(gmm.logp(vp, np.zeros(xx.size), xx[:, None]))
    return dict(t_fwd=t_fwd, fwd=fwd, grid=grid, sde_paths=sde_paths, pf_paths=pf_paths,
                sde_out=sde_out, pf_out=pf_out, tt=tt, xx=xx, dens=dens, p0=p0,
                fwd_comp=np.argmax(gmm.responsibilities(1.0, 0.0, fwd[0][:, None]), axis=1))


# ---- figures ------------------------------------------------------------------------------

def save(fig, path):
    """PNG with a 96-colour palette: a few times smaller than matplotlib's RGBA output."""
    from PIL import Image   # installed with matplotlib
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    buf.seek(0)
    image = Image.open(buf).convert("RGB").quantize(colors=96, dither=Image.Dither.NONE)
    image.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def plot_marginals(plt, data, out):
    t, lib, closed = data
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    every = slice(None, None, 10)
    for name, color in (("VP", "C0"), ("sub-VP", "C1")):
        left.plot(t, lib[name], color=color, label=f"{name} (library)")
        left.plot(t[every], closed[name][every], "o", ms=3.5, mfc="none", color=color,
                  label=f"{name} closed form")
    left.set(xlabel="t", ylabel="marginal std s(t)", title="VP(0.1, 20) and sub-VP(0.1, 20)")
    left.legend(fontsize=8, loc="lower right")
    for name, color in (("VE", "C2"), ("VE (from the data)", "C3")):
        right.plot(t, lib[name], color=color, label=f"{name} (library)")
        right.plot(t[every], closed[name][every], "o", ms=3.5, mfc="none", color=color,
                   label="closed form")
    right.set(xlabel="t", yscale="log",
              title="VE(0.01, 50): σ(t), and √(σ(t)² − σ_min²) from the data")
    right.set_ylim(1e-3, 100)
    right.legend(fontsize=8, loc="lower right")
    save(fig, out / "marginal_std.png")
    plt.close(fig)


def density_background(ax, d):
    """p_t(x) as filled contours (a few flat levels also keep the PNG small)."""
    root = np.sqrt(d["dens"])   # the square root shows the wide marginals at large t too
    ax.contourf(d["tt"], d["xx"], root, levels=np.linspace(0, root.max(), 9), cmap="Greys",
                alpha=0.6)
    ax.set_xlim(0, 1)
    ax.set_ylim(d["xx"][0], d["xx"][-1])


def plot_trajectories(plt, d, out):
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True,
                                      constrained_layout=True)
    density_background(left, d)
    for b in range(N_PATHS):
        left.plot(d["t_fwd"][::4], d["fwd"][::4, b], lw=0.7, color=f"C{d['fwd_comp'][b]}")
    left.set(xlabel="t", ylabel="x", title="forward noising: data at t = 0 to noise at t = 1")
    density_background(right, d)
    comp = (d["sde_out"][:N_PATHS] > -0.25).astype(int)   # the midpoint between the means
    for b in range(N_PATHS):
        right.plot(d["grid"][::4], d["sde_paths"][::4, b], lw=0.7, color=f"C{comp[b]}")
    right.set(xlabel="t", title="reverse-time SDE: prior at t = 1 to data at t = 0")
    right.annotate("", xy=(0.05, -3.0), xytext=(0.95, -3.0),
                   arrowprops=dict(arrowstyle="->", color="k"))
    save(fig, out / "trajectories.png")
    plt.close(fig)


def plot_pf_vs_sde(plt, d, out):
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True,
                                      gridspec_kw=dict(width_ratios=[1.6, 1]))
    density_background(left, d)
    for b in range(8):
        color = f"C{b}"
        left.plot(d["grid"][::4], d["sde_paths"][::4, b], lw=0.5, color=color, alpha=0.8)
        left.plot(d["grid"], d["pf_paths"][:, b], lw=1.6, color=color)
    left.plot([], [], lw=1.6, color="k", label="probability-flow ODE")
    left.plot([], [], lw=0.5, color="k", label="reverse SDE")
    left.legend(fontsize=8, loc="upper left")
    left.set(xlabel="t", ylabel="x", title="the same 8 prior points, both samplers")
    bins = np.linspace(-2.6, 2.4, 60)
    right.hist(d["sde_out"], bins=bins, density=True, alpha=0.45, label="reverse SDE")
    right.hist(d["pf_out"], bins=bins, density=True, histtype="step", lw=1.4,
               label="probability-flow ODE")
    right.plot(d["xx"], d["p0"], "k", lw=1, label="data density p_0")
    right.set(xlabel="x", title=f"{N_STATS} samples each")
    right.legend(fontsize=8)
    save(fig, out / "pf_vs_sde.png")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only compute and check the data (no PNG, no matplotlib)")
    ap.add_argument("--library", help="path of libscoresde.so.0 (sets SCORESDE_LIBRARY)")
    ap.add_argument("--out", type=pathlib.Path, default=SRC / "docs" / "img",
                    help="output directory (default docs/img of the source tree)")
    args = ap.parse_args()
    if args.library:
        os.environ["SCORESDE_LIBRARY"] = args.library
    sys.path.insert(0, str(SRC / "python"))
    import scoresde as sde

    marg = marginal_data(sde)
    traj = trajectory_data(sde)
    if not args.check:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.rcParams.update({"font.size": 9, "axes.titlesize": 9})
        args.out.mkdir(parents=True, exist_ok=True)
        plot_marginals(plt, marg, args.out)
        plot_trajectories(plt, traj, args.out)
        plot_pf_vs_sde(plt, traj, args.out)
    if problems:
        print(f"FAIL: {len(problems)} check(s) do not hold")
        return 1
    print("PASS: every figure's data checks out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
