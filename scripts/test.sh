#!/usr/bin/env bash
# The test command: lint (rustfmt, clippy, the web UI's type check), build, fetch the models the
# tests use (SmolLM2, MiniLM and the default answering model Qwen2.5-Coder-1.5B), install what
# the browser test drives (Debian's Chromium, playwright-core from npm), check the official
# OpenAI Python client against a running server, then the Rust test suite (the browser test
# included).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/browser-setup.sh
cargo fmt --all -- --check
tests/browser/node_modules/.bin/tsc -p ui/jsconfig.json # the web UI's JSDoc types
cargo clippy --all-targets -- -D warnings
# One build for the binary and the tests: `cargo build` would resolve features without the
# dev-dependencies and compile most dependencies a second time for `cargo test`.
cargo test --tests --no-run
target/debug/askacme models fetch smollm2-135m-instruct all-minilm-l6-v2 qwen2.5-coder-1.5b-instruct
scripts/openai_compat.sh target/debug/askacme
cargo test --tests
