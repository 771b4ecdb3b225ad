#!/usr/bin/env bash
# Installs what Berth needs to build, run and be tested on Debian 12 (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(busybox-static zstd gzip util-linux iproute2 nftables curl procps ca-certificates pkg-config gcc skopeo hyperfine docker-registry apache2-utils openssl attr python3-venv tini libseccomp-dev git)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
# The docker CLI drives `berth daemon` in the tests: the one these machines
# have in /usr/local/bin, else Debian's. dockerd (Debian's docker.io) runs
# berth-runtime in its interop test, started by the test with a root and
# socket of its own; its service is not started: dockerd's firewall rules
# would change the host's forwarding under the tests.
if ! command -v dockerd >/dev/null || { ! command -v docker >/dev/null && [ ! -x /usr/local/bin/docker ]; }; then
  apt-get update -q
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -q --no-install-recommends docker.io
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# docker-compose 1.29 (Debian's) drives `berth daemon` in the tests too.
if ! command -v docker-compose >/dev/null; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends docker-compose
fi
# --userns=auto hands each container a range of the subordinate ids of the
# system user `berth` (docker's dockremap, podman's containers): above the
# ranges useradd gives users (up to 600100000 on Debian).
if ! getent passwd berth >/dev/null; then
  useradd --system --no-create-home --shell /usr/sbin/nologin berth
fi
for f in /etc/subuid /etc/subgid; do
  grep -q '^berth:' "$f" 2>/dev/null || echo 'berth:1000000000:1000000000' >> "$f"
done
# containerd (its runc v2 shim) and podman drive berth-runtime in its
# interop tests, each started by the test with its own root and socket;
# their services are not started (policy-rc.d refuses it while they install).
interop=()
command -v containerd >/dev/null || interop+=(containerd)
command -v podman >/dev/null || interop+=(podman conmon)
if [ ${#interop[@]} -gt 0 ]; then
  apt-get update -q
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -q --no-install-recommends "${interop[@]}"
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# docker-py (PyPI) in a virtual environment of the tests' own.
venv="$(pwd)/target/test-venv"
if ! "$venv/bin/python" -c 'import docker' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'docker>=7,<8'
fi
export BERTH_TEST_PYTHON="$venv/bin/python"
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "Rust (cargo) is required: install it with rustup" >&2; exit 1; }
