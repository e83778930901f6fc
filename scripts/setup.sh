#!/usr/bin/env bash
# Checks (and, as root with apt-get, installs) what building and fetching models needs:
# cmake and libclang for llama.cpp's build, Python with pip for `askacme models fetch`, and
# WordNet (Debian's wordnet-base) for the semantic cache's guard.
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
# bindgen loads libclang.so / libclang-N.so; libclang-cpp (present on many machines) is not it.
if ! ldconfig -p 2>/dev/null | grep -Eq '\slibclang(-[0-9.]+)?\.so' \
  && ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1; then
  missing+=(libclang-dev)
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is not installed; install Rust from rustup first" >&2; exit 1; }
python="${ASKACME_PYTHON:-python3}"
"$python" -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
[ -f /usr/share/wordnet/index.noun ] || missing+=(wordnet-base)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}. On Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
