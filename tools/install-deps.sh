#!/bin/sh
# The one list of Debian packages libscoresde needs to build, test and document itself
# (Debian 12 "bookworm" names). Installs only the packages that are missing: if any is, runs
# `apt-get update` once, then a non-interactive `apt-get install`. Run as root (or with sudo
# available). `sh tools/install-deps.sh --list` prints the list and exits.
set -eu

# build: meson ninja-build pkg-config gcc g++ libc6-dev binutils python3 (meson's own, and
#        /usr/bin/python3 for the ABI tests); libraries: libopenblas-dev (vector kernels),
#        check (unit tests), libjson-c-dev (conformance runner), libpng-dev;
# python: python3-numpy python3-pytest (the Python binding's tests and examples, python/),
#         python3-torch (CPU; the "plug your own network in" example), python3-matplotlib
#         (tools/make_figures.py, which draws the guide's figures);
# docs:  doxygen
PACKAGES="meson ninja-build pkg-config gcc g++ libc6-dev binutils python3 libopenblas-dev check libjson-c-dev libpng-dev doxygen python3-numpy python3-pytest python3-torch python3-matplotlib"

if [ "${1:-}" = "--list" ]; then
    for pkg in $PACKAGES; do echo "$pkg"; done
    exit 0
fi

missing=""
for pkg in $PACKAGES; do
    # shellcheck disable=SC2016 # ${Status} is a dpkg-query field, not a shell variable
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $pkg" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "install-deps: all required packages are installed"
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "install-deps: missing packages:$missing" >&2
        echo "install-deps: run this script as root to install them" >&2
        exit 1
    fi
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086 # $missing is a space-separated list of package names
$sudo apt-get install -y -q --no-install-recommends $missing
