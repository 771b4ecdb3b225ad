#!/usr/bin/env bash
# Pull throughput: `berth pull` of a multi-layer image from a registry on
# 127.0.0.1 (Debian's docker-registry) against `skopeo copy` of the same image
# to a directory (download and verify only: skopeo does not unpack):
#   bench/pull.sh [MiB]      (default 1024: many small files and some large ones)
# Needs root, python3, hyperfine, docker-registry, skopeo and the release build.
set -euo pipefail
mib=${1:-1024}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then (cd "$here" && cargo build --release -q -p berth); fi
berth=${BERTH:-$here/target/release/berth}
work=$(mktemp -d /var/tmp/berth-pull.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -n "${reg:-}" ] && kill "$reg" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export DOCKER_CONFIG=$work/docker
B="$berth --root $work/root --runroot $work/run"

cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

# Four layers: three of small files (4-64 KiB), one of large files (64 MiB
# each), half random and half zeros, as in bench/layers.sh.
python3 "$here/bench/make-layers.py" "$work/data" "$mib"
# The image: each layer imported, then stacked by commits of copies.
img=127.0.0.1:$port/bench/pull:v1
tar --numeric-owner -C "$work/data/layer0" -cf - . | $B import - bench:base >/dev/null
prev=bench:base
for l in 1 2 3; do
  $B create --name c$l --network none $prev true >/dev/null
  $B cp "$work/data/layer$l" c$l:/layer$l
  $B commit c$l bench:l$l >/dev/null
  $B rm c$l >/dev/null
  prev=bench:l$l
done
rm -rf "$work/data"
$B tag $prev "$img"
echo "pushing $mib MiB in 4 layers..."
push_start=$(date +%s.%N)
$B push -q "$img" >/dev/null
push_end=$(date +%s.%N)
compressed=$(du -sm "$work/registry" | cut -f1)
echo "push (gzip included): $(echo "$push_end - $push_start" | bc) s; $compressed MiB in the registry"

hyperfine --runs "${RUNS:-3}" --export-json "$work/pull.json" \
  --prepare "rm -rf $work/pulled $work/skopeo; sync; echo 3 > /proc/sys/vm/drop_caches || true" \
  -n "berth pull (download + verify + unpack)" \
  "$berth --root $work/pulled --runroot $work/run2 pull -q $img && sync" \
  -n "skopeo copy to dir: (download + verify)" \
  "skopeo copy -q --src-tls-verify=false docker://$img dir:$work/skopeo && sync" \
  -n "skopeo copy, then tar -xzf each layer (download, then unpack)" \
  "skopeo copy -q --src-tls-verify=false docker://$img dir:$work/skopeo && mkdir $work/skopeo/rootfs && for l in \$(python3 -c 'import json,sys; print(\" \".join(x[\"digest\"][7:] for x in json.load(open(sys.argv[1]))[\"layers\"]))' $work/skopeo/manifest.json); do tar -xzf $work/skopeo/\$l -C $work/skopeo/rootfs; done && sync"
python3 "$here/bench/medians.py" "$work/pull.json"
