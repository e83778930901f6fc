#!/usr/bin/env bash
# Installs what the end-to-end browser test (tests/browser/ui.mjs) needs:
# Debian's chromium, node + npm, and playwright-core in tests/browser (with typescript, which
# the test command uses to type-check the UI's modules).
# Idempotent and quiet; never downloads a browser build.
set -euo pipefail
cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

CHROMIUM_BIN="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_BIN" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser-setup: installing Debian's chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser-setup: $CHROMIUM_BIN not found; install it with:" >&2
    echo "  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium" >&2
    exit 1
  fi
  if [ ! -x "$CHROMIUM_BIN" ]; then
    echo "browser-setup: chromium installed but $CHROMIUM_BIN is missing" >&2
    exit 1
  fi
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser-setup: '$tool' not found; install Node.js 20+ with npm (e.g. apt-get install -y nodejs npm)" >&2
    exit 1
  fi
done

cd tests/browser
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
fi
