#!/usr/bin/env bash
# The main job on a fresh machine: install build prerequisites, build, fetch the local models,
# and answer a question through the gateway with the default local model.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release
target/release/askacme models fetch
question="${1:-Explain in two sentences what an LLM gateway does for a company.}"
echo "Q: $question"
target/release/askacme chat --model strong --temperature 0 --max-tokens 200 "$question"
