#!/usr/bin/env bash
# Runs the official `openai` Python package, unmodified, against `askacme serve` with the tiny
# local model: plain chat, streamed chat, embeddings, and an error.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-target/debug/askacme}"
python="${ASKACME_PYTHON:-python3}"

deps=target/pydeps
if ! PYTHONPATH="$deps" "$python" -c 'import openai' >/dev/null 2>&1; then
  PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --target "$deps" \
    'openai>=1.50,<3' >"$deps.log" 2>&1 || { cat "$deps.log" >&2; exit 1; }
fi

work=$(mktemp -d)
port=$(( 20000 + RANDOM % 20000 ))
cat > "$work/askacme.toml" <<TOML
[server]
warm_up = ["tiny", "embed"]
[storage]
data_dir = "$work"
models_dir = "${ASKACME_HOME:-$HOME/.local/share/askacme}/models"
TOML
"$binary" --config "$work/askacme.toml" serve --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT

for _ in $(seq 1 120); do
  if "$python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz')" 2>/dev/null; then
    break
  fi
  kill -0 $server 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.5
done
PYTHONPATH="$deps" "$python" scripts/openai_compat.py "http://127.0.0.1:$port/v1"
