#!/usr/bin/env bash
# Writes a busybox root filesystem tarball from Debian's busybox-static:
#   scripts/busybox-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: busybox-rootfs.sh OUT.tar}
bb=/bin/busybox   # from busybox-static: one static binary, no libraries needed
[ -x "$bb" ] || { echo "busybox-static is not installed (apt-get install -y busybox-static)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,home,var,usr/bin,usr/sbin,sbin,proc,sys,dev}
cp "$bb" "$dir/bin/busybox"
for app in $("$bb" --list); do
  [ "$app" = busybox ] || ln -s busybox "$dir/bin/$app"
done
chmod 1777 "$dir/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
# As in docker's busybox:glibc image: without it, glibc asks DNS before
# /etc/hosts, so container names on user networks would depend on the
# host's nameserver answering (or failing) fast.
printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
tar --numeric-owner -C "$dir" -cf "$out" .
