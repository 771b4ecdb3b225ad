#!/usr/bin/env bash
# Sets everything up and runs Berth's main job: a container from a busybox image.
#   sudo bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -p berth -p berth-oci-runtime
install -m 0755 target/release/berth /usr/local/bin/berth
install -m 0755 target/release/berth-monitor /usr/local/bin/berth-monitor
install -m 0755 target/release/berth-runtime /usr/local/bin/berth-runtime
# Tab completion for bash (and zsh, fish where they are installed).
mkdir -p /usr/share/bash-completion/completions
berth completion bash > /usr/share/bash-completion/completions/berth
if [ -d /usr/share/zsh/vendor-completions ]; then berth completion zsh > /usr/share/zsh/vendor-completions/_berth; fi
if [ -d /usr/share/fish/vendor_completions.d ]; then berth completion fish > /usr/share/fish/vendor_completions.d/berth.fish; fi
# A man page per command (man berth-run), from the same definitions.
berth man-pages /usr/local/share/man/man1
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
scripts/busybox-rootfs.sh "$tar"
berth import "$tar" busybox
berth images
berth run --rm busybox echo hello from a berth container
