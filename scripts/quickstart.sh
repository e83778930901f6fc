#!/usr/bin/env bash
# The main job on a fresh machine: install build prerequisites, build, fetch the local models,
# ingest the sample handbook, and ask the assistant questions about it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release
target/release/askacme models fetch
target/release/askacme safety train
target/release/askacme ingest examples/handbook
if [ $# -gt 0 ]; then
  questions=("$@")
else
  questions=("How long is parental leave?" "What is the minimum password length?" "What's the CEO's favorite color?")
fi
for question in "${questions[@]}"; do
  echo
  echo "Q: $question"
  target/release/askacme ask "$question"
done
