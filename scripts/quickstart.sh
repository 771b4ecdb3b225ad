#!/usr/bin/env bash
# Sets everything up and runs Berth's main job: a container from a busybox image.
#   sudo bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -p berth
install -m 0755 target/release/berth /usr/local/bin/berth
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
scripts/busybox-rootfs.sh "$tar"
berth import "$tar" busybox
berth images
berth run --rm busybox echo hello from a berth container
