#!/usr/bin/env bash
# The daemon, as a docker user meets it: `docker run --rm --network none busybox true`
# through `berth daemon` vs Debian's dockerd (docker.io: containerd + runc), with the
# same docker CLI and the same busybox rootfs; and the API's latency listing 100
# containers (`GET /containers/json?all=1` with curl on each socket).
# dockerd runs with state of its own (--data-root, --exec-root, its own socket,
# --iptables=false --bridge=none: it touches neither the firewall nor a bridge) and is
# stopped at the end. Needs root, hyperfine, curl, busybox-static, docker.io.
#
#   bench/daemon.sh [runs]      (default 20 runs per command)
set -euo pipefail
runs=${1:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then (cd "$here" && cargo build --release -q -p berth); fi
berth=${BERTH:-$here/target/release/berth}
for t in hyperfine curl dockerd; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y hyperfine curl docker.io" >&2; exit 1; }
done
docker=docker
[ -x /usr/local/bin/docker ] && docker=/usr/local/bin/docker

work=$(mktemp -d /tmp/berth-bench-daemon.XXXXXX)
B="$berth --root $work/root --runroot $work/run --bridge bdbench0"
bsock=$work/berth.sock
dsock=$work/docker.sock
bpid= dpid=
cleanup() {
  if [ -n "$dpid" ]; then
    DOCKER_HOST=unix://$dsock $docker rm -f $(DOCKER_HOST=unix://$dsock $docker ps -aq) >/dev/null 2>&1 || true
    kill "$dpid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
  fi
  if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; fi
  $B rm -f $($B ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  $B network rm bridge >/dev/null 2>&1 || true
  ip link del bdbench0 2>/dev/null || true
  umount -R "$work/docker" 2>/dev/null || true
  umount -R "$work/docker-exec" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$here/scripts/busybox-rootfs.sh" "$work/rootfs.tar"

# berth daemon
$B import "$work/rootfs.tar" busybox >/dev/null
$B daemon -H "unix://$bsock" >"$work/berth.log" 2>&1 &
bpid=$!
# dockerd, with containerd of its own under its exec root
dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" -H "unix://$dsock" \
  --pidfile "$work/dockerd.pid" --iptables=false --ip6tables=false --bridge=none \
  >"$work/dockerd.log" 2>&1 &
dpid=$!
for s in "$bsock" "$dsock"; do
  for _ in $(seq 100); do
    DOCKER_HOST=unix://$s $docker version >/dev/null 2>&1 && break
    sleep 0.2
  done
  DOCKER_HOST=unix://$s $docker version >/dev/null || { echo "no daemon on $s" >&2; cat "$work"/*.log >&2; exit 1; }
done
DOCKER_HOST=unix://$dsock $docker import "$work/rootfs.tar" busybox >/dev/null
echo "docker CLI $($docker --version | cut -d' ' -f3 | tr -d ,), dockerd $(dockerd --version | cut -d' ' -f3 | tr -d ,)"

hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/run.json" \
  -n "berth daemon" "env DOCKER_HOST=unix://$bsock $docker run --rm --network none busybox true" \
  -n "dockerd" "env DOCKER_HOST=unix://$dsock $docker run --rm --network none busybox true"

for s in "$bsock" "$dsock"; do
  for _ in $(seq 100); do
    DOCKER_HOST=unix://$s $docker create --network none busybox true >/dev/null
  done
done
hyperfine -N --warmup 5 --runs $((runs * 5)) --export-json "$work/list.json" \
  -n "berth daemon: list 100" "curl -sf --unix-socket $bsock -o /dev/null http://d/containers/json?all=1" \
  -n "dockerd: list 100" "curl -sf --unix-socket $dsock -o /dev/null http://d/containers/json?all=1"

for f in run list; do python3 "$here/bench/medians.py" "$work/$f.json"; done
