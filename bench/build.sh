#!/usr/bin/env bash
# Build speed: a cold build and a fully cached rebuild of a 10-step Dockerfile,
# berth vs `buildah bud` (Debian's buildah, if installed) on the same context
# and the same busybox base image (buildah runs RUN with --isolation chroot,
# which shares the host network; berth uses --network none for RUN). Needs root, hyperfine, busybox-static.
#
#   bench/build.sh [runs]      (default 10 runs per command)
set -euo pipefail
runs=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then (cd "$here" && cargo build --release -q -p berth); fi
berth=${BERTH:-$here/target/release/berth}
command -v hyperfine >/dev/null || { echo "missing hyperfine: apt-get install -y hyperfine" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
B="$berth --root $work/root --runroot $work/run --bridge bbench0"
cleanup() {
  $B network rm bridge >/dev/null 2>&1 || true
  ip link del bbench0 2>/dev/null || true
  if command -v buildah >/dev/null; then
    buildah --root "$work/buildah" --runroot "$work/buildah-run" rm --all >/dev/null 2>&1 || true
    buildah --root "$work/buildah" --runroot "$work/buildah-run" rmi --all --force >/dev/null 2>&1 || true
    umount -R "$work/buildah" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$here/scripts/busybox-rootfs.sh" "$work/rootfs.tar"
$B import "$work/rootfs.tar" busybox >/dev/null

mkdir -p "$work/ctx/src"
for i in $(seq 1 200); do head -c 4096 /dev/urandom > "$work/ctx/src/f$i"; done
cat > "$work/ctx/Dockerfile" <<'DF'
FROM busybox
ENV A=1
WORKDIR /app
COPY src /app/src
RUN echo one > /one
RUN echo two > /two
LABEL x=y
EXPOSE 80
USER root
CMD ["cat", "/one"]
DF

export B work
cmds=(
  -n "berth build (cold, --no-cache)" "$B build -q --no-cache --network none -t bench $work/ctx"
  -n "berth build (fully cached)" "$B build -q --network none -t bench $work/ctx"
)
if command -v buildah >/dev/null; then
  BU="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay"
  # The same base image, given to buildah through a docker archive. buildah's
  # chroot isolation shares the host's network (berth's RUNs use none).
  $B save -o "$work/busybox.tar" busybox
  $BU pull -q "docker-archive:$work/busybox.tar" >/dev/null
  $BU tag "$($BU images -q | head -1)" localhost/busybox:latest
  sed 's/^FROM busybox/FROM localhost\/busybox/' "$work/ctx/Dockerfile" > "$work/Dockerfile.buildah"
  cmds+=(
    -n "buildah bud (cold, --no-cache)" "$BU bud -q --no-cache --isolation chroot --layers -f $work/Dockerfile.buildah -t bench $work/ctx"
    -n "buildah bud (cached, --layers)" "$BU bud -q --isolation chroot --layers -f $work/Dockerfile.buildah -t bench $work/ctx"
  )
else
  echo "buildah not installed (apt-get install -y buildah): measuring berth alone" >&2
fi
hyperfine --warmup 1 --runs "$runs" --export-json "$work/results.json" "${cmds[@]}"
python3 "$here/bench/medians.py" "$work/results.json"
