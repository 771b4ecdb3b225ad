#!/usr/bin/env bash
# Sets up and runs the whole test suite (unit and end-to-end tests; as root).
#   sudo bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace
