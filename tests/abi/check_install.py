#!/usr/bin/python3
"""Install gate: `meson install` into a temporary DESTDIR, then build a consumer program that
lives outside the source tree using only `pkg-config --cflags --libs scoresde` (pointed into
the DESTDIR with PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR), as C99 and as C++11, and run it
against the installed library. Also checks the installed file names, the SONAME, that every
public header landed under include/sde/ unchanged, and that the consumer resolves the library
from the DESTDIR. The temporary directory is removed unless --keep is given.

With --cxx-example (the C++17 example, examples/cpp/gmm_sampling.cpp), the example is built the
way its header comment says, `c++ -std=c++17 gmm_sampling.cpp $(pkg-config --cflags --libs
scoresde) ...` (the command is read from that comment, so the documented command is the tested
one), plus -Wall -Wextra -pedantic -Werror, and run against the installed library; its output
must end with "PASS: ..." and contain no "FAIL" line.

When the library was built with sanitizers (-Db_sanitize=..., passed as --sanitize, or seen in
the library's DT_NEEDED entries), the consumer is compiled with the same -fsanitize flags,
since an uninstrumented executable cannot load an ASan-instrumented library.
"""

import argparse
import filecmp
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

problems = []


def fail(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def ok(msg):
    print("ok   " + msg)


def run(argv, env=None, check=True):
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    if check and res.returncode != 0:
        raise RuntimeError(f"command failed ({res.returncode}): {shlex.join(argv)}\n"
                           f"{res.stdout}{res.stderr}")
    return res


def dynamic_entries(path, tag):
    out = run(["readelf", "-d", str(path)]).stdout
    return re.findall(r"\(" + tag + r"\)\s+[^\[]*\[([^\]]+)\]", out)


def sanitizer_flags(option, lib):
    kinds = []
    if option and option != "none":
        kinds = option.split(",")
    else:  # sanitizers added some other way (c_args): look at what the library needs
        needed = " ".join(dynamic_entries(lib, "NEEDED"))
        for name, kind in (("libasan", "address"), ("libubsan", "undefined"),
                           ("libtsan", "thread"), ("liblsan", "leak")):
            if name in needed:
                kinds.append(kind)
    if not kinds:
        return []
    return ["-fsanitize=" + ",".join(kinds), "-fno-omit-frame-pointer"]


def documented_command(source):
    """The build command in the example's header comment: `// c++ ... $(pkg-config ...) ...`."""
    for line in source.read_text().splitlines():
        m = re.match(r"//\s+(c\+\+ .*\$\(pkg-config --cflags --libs scoresde\).*)$", line)
        if m:
            return m.group(1)
        if not line.startswith("//"):
            break
    return None


def cxx_example(args, cxx, work, flags, extra, run_env):
    """Build the C++ example with its documented command against the DESTDIR, run, check."""
    src = work / args.cxx_example.name
    shutil.copyfile(args.cxx_example, src)
    doc = documented_command(src)
    if doc is None:
        fail(f"{src.name}: no `c++ ... $(pkg-config --cflags --libs scoresde)` line in its "
             "header comment")
        return
    words = shlex.split(doc.replace("$(pkg-config --cflags --libs scoresde)", "@PKG@"))
    argv = cxx + [w for word in words[1:]
                  for w in (flags if word == "@PKG@" else [word])] + extra
    res = subprocess.run(argv, capture_output=True, text=True, cwd=work)
    if res.returncode != 0:
        fail(f"{src.name} does not build with its documented command ({doc}):\n"
             f"{shlex.join(argv)}\n{res.stdout}{res.stderr}")
        return
    ok(f"{src.name} builds with `{doc}` against the installed library")
    exes = [w for i, w in enumerate(words) if i > 0 and words[i - 1] == "-o"]
    exe = work / (exes[0] if exes else "a.out")
    res = run([str(exe)], env=run_env, check=False)
    sys.stdout.write("".join("     | " + line + "\n" for line in res.stdout.splitlines()))
    if res.stderr:
        sys.stdout.write("".join("     ! " + line + "\n" for line in res.stderr.splitlines()))
    lines = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    if res.returncode != 0:
        fail(f"{src.name} exited with {res.returncode}")
    elif not lines or not lines[-1].startswith("PASS:") or any(
            line.startswith("FAIL") for line in lines):
        fail(f"{src.name}: its output does not end with PASS or has a FAIL line")
    else:
        ok(f"{src.name} runs against the installed library and its checks pass")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--builddir", required=True, type=pathlib.Path)
    ap.add_argument("--src-include", required=True, type=pathlib.Path)
    ap.add_argument("--consumer", required=True, type=pathlib.Path)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--cxx", default="")
    ap.add_argument("--cxx-example", type=pathlib.Path)
    ap.add_argument("--sanitize", default="none")
    ap.add_argument("--version", required=True)
    ap.add_argument("--so-version", required=True)
    ap.add_argument("--soname", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sde-install-"))
    try:
        destdir = tmp / "destdir"
        run(shlex.split(args.meson) + ["install", "-C", str(args.builddir), "--no-rebuild",
                                       "--quiet", "--destdir", str(destdir)])
        ok(f"meson install --destdir {destdir}")

        pcs = sorted(destdir.rglob("pkgconfig/scoresde.pc"))
        if len(pcs) != 1:
            fail(f"expected one installed scoresde.pc, found {[str(p) for p in pcs]}")
            return 1
        pcdir = pcs[0].parent
        libdir = pcdir.parent
        ok(f"scoresde.pc installed in {pcdir.relative_to(destdir)}")

        # The library: real file, SONAME link, development link.
        real = libdir / f"libscoresde.so.{args.so_version}"
        so_link = libdir / args.soname
        dev_link = libdir / "libscoresde.so"
        if not real.is_file() or real.is_symlink():
            fail(f"{real.name} is not installed as a regular file in {libdir}")
        else:
            got = dynamic_entries(real, "SONAME")
            if got != [args.soname]:
                fail(f"installed {real.name} has SONAME {got}, expected {args.soname}")
            else:
                ok(f"{real.name} has SONAME {args.soname}")
        for link in (so_link, dev_link):
            if not link.is_symlink() or link.resolve() != real.resolve():
                fail(f"{link.name} is not a symlink to {real.name}")
            else:
                ok(f"{link.name} -> {os.readlink(link)}")

        # The headers: every public header (and the generated version.h), byte for byte.
        incdirs = sorted(p for p in destdir.rglob("include/sde") if p.is_dir())
        if len(incdirs) != 1:
            fail(f"expected one installed include/sde directory, found {incdirs}")
            return 1
        incdir = incdirs[0]
        src_headers = sorted((args.src_include / "sde").glob("*.h"))
        for h in src_headers:
            inst = incdir / h.name
            if not inst.is_file():
                fail(f"{h.name} is not installed under include/sde/")
            elif not filecmp.cmp(h, inst, shallow=False):
                fail(f"installed {h.name} differs from the source")
        if not (incdir / "version.h").is_file():
            fail("the generated version.h is not installed under include/sde/")
        ok(f"{len(src_headers)} headers + version.h installed under "
           f"{incdir.relative_to(destdir)}")

        # pkg-config, as an outside consumer would use it.
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = os.pathsep.join(
            [str(pcdir)] + [p for p in env.get("PKG_CONFIG_PATH", "").split(os.pathsep) if p])
        env["PKG_CONFIG_SYSROOT_DIR"] = str(destdir)
        modversion = run(["pkg-config", "--modversion", "scoresde"], env=env).stdout.strip()
        if modversion != args.version:
            fail(f"pkg-config --modversion scoresde is {modversion}, expected {args.version}")
        flags = shlex.split(run(["pkg-config", "--cflags", "--libs", "scoresde"], env=env).stdout)
        ok(f"pkg-config --cflags --libs scoresde: {shlex.join(flags)}")
        san = sanitizer_flags(args.sanitize, real)
        if san:
            print(f"note: sanitizer build; consumer compiled with {shlex.join(san)}")

        # Build the consumer as C99 and as C++11, outside the tree.
        work = tmp / "consumer"
        work.mkdir()
        src = work / "consumer.c"
        shutil.copyfile(args.consumer, src)
        builds = [("C99", shlex.split(args.cc), ["-std=c99"], "consumer-c")]
        if args.cxx:
            builds.append(("C++11", shlex.split(args.cxx), ["-std=c++11", "-x", "c++"],
                           "consumer-cxx"))
        warn = ["-pedantic", "-Wall", "-Wextra", "-Werror"]
        # Only the DESTDIR's libdir: `meson test` puts the build tree's lib/ on
        # LD_LIBRARY_PATH, and the consumer must not find the library there.
        run_env = dict(env, LD_LIBRARY_PATH=str(libdir))
        for lang, cmd, std, exe_name in builds:
            exe = work / exe_name
            # -x c++ applies to the files after it, so the source comes right after it and
            # "-x none" restores detection for anything pkg-config adds.
            argv = cmd + std + warn + san + [str(src), "-x", "none", "-o", str(exe)] + flags + ["-lm"]
            res = run(argv, check=False)
            if res.returncode != 0:
                fail(f"consumer does not build as {lang}: {shlex.join(argv)}\n{res.stdout}{res.stderr}")
                continue
            ok(f"consumer builds as {lang}")
            if args.soname not in dynamic_entries(exe, "NEEDED"):
                fail(f"{lang} consumer does not record NEEDED {args.soname}")
            # Where does the dynamic loader find the library? (ldd without running the program)
            trace_env = dict(run_env, LD_TRACE_LOADED_OBJECTS="1")
            trace = run([str(exe)], env=trace_env, check=False).stdout
            m = re.search(re.escape(args.soname) + r"\s*=>\s*(\S+)", trace)
            if not m or not pathlib.Path(m.group(1)).resolve().is_relative_to(destdir.resolve()):
                fail(f"{lang} consumer does not resolve {args.soname} inside the DESTDIR:\n{trace}")
            res = run([str(exe)], env=run_env, check=False)
            sys.stdout.write("".join("     | " + line + "\n" for line in res.stdout.splitlines()))
            if res.stderr:
                sys.stdout.write("".join("     ! " + line + "\n" for line in res.stderr.splitlines()))
            if res.returncode != 0:
                fail(f"{lang} consumer exited with {res.returncode}")
            else:
                ok(f"{lang} consumer runs against the installed library")
        if args.cxx and args.cxx_example:
            cxx_example(args, shlex.split(args.cxx), work, flags, warn + san, run_env)
    except RuntimeError as e:
        fail(str(e))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print("OK: installed library, headers and pkg-config file work for an outside consumer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
