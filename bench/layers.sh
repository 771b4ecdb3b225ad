#!/usr/bin/env bash
# Layer throughput: unpacking a multi-layer image (`berth load`) and committing a
# container's writable layer (`berth commit`), against tar on the same data:
#   bench/layers.sh [MiB]      (default 1024: many small files and some large ones)
# Needs root, python3, bc, e2fsprogs and the release build (built if missing).
#
# Each unpack runs on a freshly made ext4 filesystem (a loop-mounted file), so
# no run pays for the inodes an earlier one freed (ext4 skips recently
# deleted inodes, which made back-to-back runs on one filesystem vary 2x).
# RUNS=N (default 3) runs of each; the medians are printed.
set -euo pipefail
mib=${1:-1024}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then (cd "$here" && cargo build --release -q -p berth); fi
berth=${BERTH:-$here/target/release/berth}
work=$(mktemp -d /var/tmp/berth-layers.XXXXXX)
fs=$work/fs
trap 'umount -q "$fs" 2>/dev/null || true; rm -rf "$work"' EXIT
fresh() {
  umount -q "$fs" 2>/dev/null || true
  rm -f "$work/fs.img"
  truncate -s $((mib * 3 + 512))M "$work/fs.img"
  mkfs.ext4 -q -F "$work/fs.img"
  mkdir -p "$fs"
  mount -o loop "$work/fs.img" "$fs"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
B="$berth --root $work/root --runroot $work/run"

# Four layers: three of small files (4-64 KiB), one of large files (64 MiB each).
python3 "$here/bench/make-layers.py" "$work/data" "$mib"
for l in 0 1 2 3; do tar --numeric-owner -C "$work/data/layer$l" -cf "$work/layer$l.tar" .; done
# A docker-archive of the four layers.
python3 - "$work" <<'PY'
import hashlib, json, os, sys, tarfile
w = sys.argv[1]
diff = []
for l in range(4):
    h = hashlib.sha256()
    with open(f"{w}/layer{l}.tar", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    diff.append(h.hexdigest())
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff]}}).encode()
cfg = hashlib.sha256(config).hexdigest()
with tarfile.open(f"{w}/image.tar", "w") as t:
    for l, d in enumerate(diff):
        t.add(f"{w}/layer{l}.tar", arcname=f"blobs/sha256/{d}")
    for name, data in [(f"blobs/sha256/{cfg}", config),
                       ("manifest.json", json.dumps([{"Config": f"blobs/sha256/{cfg}", "RepoTags": ["bench:layers"],
                                                      "Layers": [f"blobs/sha256/{d}" for d in diff]}]).encode())]:
        info = tarfile.TarInfo(name); info.size = len(data)
        import io; t.addfile(info, io.BytesIO(data))
PY
rm -rf "$work/data"
sync
secs() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null || { echo "failed: $*" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
rate() { echo "scale=0; $mib / $1" | bc -l; }

echo "unpack of a 4-layer, ${mib} MiB image (medians of ${RUNS:-3} runs, each on a fresh ext4):"
# Each run is timed to the end of the command (the data in the page cache)
# and to the end of the sync after it (on the disk).
tars=(); loads=(); tars_nosync=(); loads_nosync=()
timed() {
  local s m e
  s=$(date +%s.%N)
  "$@" >/dev/null || { echo "failed: $*" >&2; exit 1; }
  m=$(date +%s.%N)
  sync
  e=$(date +%s.%N)
  echo "$(echo "$m - $s" | bc -l) $(echo "$e - $s" | bc -l)"
}
for _ in $(seq "${RUNS:-3}"); do
  fresh; sync
  # Each layer into its own directory, as a layer store keeps them (into one
  # directory, the small-file layers would overwrite each other's files and
  # less would reach the disk).
  read -r a b < <(timed bash -c "for l in 0 1 2 3; do mkdir -p $fs/x/l\$l && tar -C $fs/x/l\$l -xf $work/layer\$l.tar; done")
  tars_nosync+=("$a"); tars+=("$b")
  fresh; sync
  read -r a b < <(timed "$berth" --root "$fs/root" --runroot "$fs/run" load -i "$work/image.tar")
  loads_nosync+=("$a"); loads+=("$b")
done
umount -q "$fs"
t_tar=$(median "${tars[@]}")
t_berth=$(median "${loads[@]}")
t_tar_ns=$(median "${tars_nosync[@]}")
t_berth_ns=$(median "${loads_nosync[@]}")
printf '  to the page cache: tar -x %.2f s, berth load %.2f s (%.2fx)\n' "$t_tar_ns" "$t_berth_ns" "$(echo "$t_berth_ns / $t_tar_ns" | bc -l)"
echo "  with sync:"
printf '  tar -x (floor)  %6.2f s  %5s MB/s\n' "$t_tar" "$(rate "$t_tar")"
printf '  berth load      %6.2f s  %5s MB/s  (%.2fx tar; also hashes each layer and records its tar split)\n' "$t_berth" "$(rate "$t_berth")" "$(echo "$t_berth / $t_tar" | bc -l)"

echo "commit of a ${mib} MiB writable layer:"
$B import "$work/layer0.tar" bench:base >/dev/null
# The image has no program: the run fails (127) and leaves a created container.
$B run --name bench bench:base /none >/dev/null 2>&1 || true
id=$($B ps -aq --no-trunc | head -1)
upper="$work/root/containers/$id/upper"
for l in 1 2 3; do tar -C "$upper" -xf "$work/layer$l.tar"; done
rm -f "$work"/layer*.tar "$work/image.tar"; sync
t_tarc=$(secs bash -c "tar -C $upper -cf - . > $work/c.tar; sync")
rm -f "$work/c.tar"
t_gz=$(secs bash -c "tar -C $upper -cf - . | gzip -1 > $work/c.tar.gz; sync")
rm -f "$work/c.tar.gz"; sync
t_commit=$(secs bash -c "$B commit $id bench:committed && sync")
printf '  tar -c          %6.2f s\n  tar -c | gzip -1 %6.2f s\n  berth commit    %6.2f s  (tar + hash + store + unpack as the new layer)\n' "$t_tarc" "$t_gz" "$t_commit"
$B rm "$id" >/dev/null
