#!/usr/bin/env bash
# The test command: set-up, format and lint checks, then every crate's unit and integration
# tests (including the conformance tests against ../shared when it is present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
