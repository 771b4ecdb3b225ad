#!/usr/bin/env bash
# Container start-to-exit latency: berth (the engine, also in a user namespace
# of its own with --userns=auto, and its runtime as the runc-compatible
# berth-runtime) vs crun vs runc on the same busybox rootfs, with `unshare` and
# the same namespaces as the floor. Needs root, hyperfine, crun, runc,
# busybox-static and python3 (Debian packages). Prints the medians.
#
#   bench/start-latency.sh [runs]      (default 50 runs per command)
#
# crun refuses hosts with a "hybrid" cgroup layout (v1 controllers plus an
# empty cgroup2 mount): every command runs in one private mount namespace
# where /sys/fs/cgroup/unified is unmounted, so all are measured alike.
set -euo pipefail
runs=${1:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then (cd "$here" && cargo build --release -q -p berth); fi
berth=${BERTH:-$here/target/release/berth}
# The --userns=auto row takes its ranges from the user berth's subordinate
# ids (scripts/setup.sh adds them).
grep -q '^berth:' /etc/subuid && grep -q '^berth:' /etc/subgid || {
  echo "no subordinate ids for the user berth: run scripts/setup.sh" >&2; exit 1; }
if [ -z "${BERTH_RUNTIME:-}" ]; then (cd "$here" && cargo build --release -q -p berth-oci-runtime); fi
berth_runtime=${BERTH_RUNTIME:-$here/target/release/berth-runtime}
for t in hyperfine crun runc busybox; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y hyperfine crun runc busybox-static" >&2; exit 1; }
done

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
# Run state on tmpfs, where each engine keeps it by default (berth's
# /run/berth, runc's /run/runc, crun's /run/crun).
run=$(mktemp -d /run/berth-bench.XXXXXX)
# The bridge case uses a bridge of its own, removed (with its NAT set
# entries) at the end.
br=bbench$$
cleanup() {
  "$berth" --root "$work/root" --runroot "$run/berth" rm -f bench >/dev/null 2>&1 || true
  if ip link show "$br" >/dev/null 2>&1; then
    subnet=$("$berth" --root "$work/root" --runroot "$run/berth" --bridge "$br" network inspect -f '{{(index .IPAM.Config 0).Subnet}}' bridge 2>/dev/null || true)
    ip link delete "$br" 2>/dev/null || true
    [ -n "$subnet" ] && printf 'delete element ip berth nets { %s }\ndelete element ip berth bridges { "%s" }\n' "$subnet" "$br" | nft -f - 2>/dev/null || true
  fi
  rm -rf "$work" "$run"
}
trap cleanup EXIT

# One busybox rootfs, used as a tarball by berth and as a bundle (made once)
# by berth-runtime, crun and runc.
"$here/scripts/busybox-rootfs.sh" "$work/rootfs.tar"
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/rootfs.tar"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
B="$berth --root $work/root --runroot $run/berth --bridge $br"
$B import "$work/rootfs.tar" busybox >/dev/null

R="$berth_runtime --root $run/berth-runtime"
export B R work
unshare -m --propagation private bash -c '
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  hyperfine -N --warmup 5 --runs '"$runs"' --export-json "$work/results.json" \
    -n "berth run --rm busybox true (default bridge network)" "$B run --rm busybox true" \
    -n "berth run --rm --network none busybox true" "$B run --rm --network none busybox true" \
    -n "berth run --rm --network none --security-opt seccomp=unconfined busybox true" "$B run --rm --network none --security-opt seccomp=unconfined busybox true" \
    -n "berth run --rm --network none --userns=auto busybox true" "$B run --rm --network none --userns=auto busybox true" \
    -n "berth run --rm --network host busybox true" "$B run --rm --network host busybox true" \
    -n "berth-runtime run" "$R run -b $work/bundle bench-berth-runtime" \
    -n "crun run" "crun run -b $work/bundle bench-crun" \
    -n "runc run" "runc run -b $work/bundle bench-runc" \
    -n "unshare (floor)" "unshare --pid --fork --mount --uts --ipc --net --cgroup true"
'
# Medians, which the README's performance section records.
python3 "$here/bench/medians.py" "$work/results.json"
