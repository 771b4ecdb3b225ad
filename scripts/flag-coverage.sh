#!/usr/bin/env bash
# Which of docker's commands and flags berth accepts: walks `docker --help`
# (every command and management subcommand, swarm's left out) and compares
# each command's flags with `berth <same command> --help`.
#
#   scripts/flag-coverage.sh [berth] [docker]    (defaults: target/debug/berth, docker)
#
# Prints the commands berth lacks, then per shared command the flags it
# lacks, then the totals the README quotes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
berth=${1:-$here/target/debug/berth}
docker=${2:-docker}
command -v "$docker" >/dev/null || { echo "no docker CLI: $docker" >&2; exit 1; }
[ -x "$berth" ] || { echo "no berth binary at $berth (cargo build -p berth)" >&2; exit 1; }
exec python3 - "$berth" "$docker" <<'EOF'
import re, subprocess, sys

berth, docker = sys.argv[1], sys.argv[2]
# Swarm's commands (and the plugin store and content trust, which need
# Docker Hub and swarm-era services) are out of scope.
SKIP = {"config", "node", "secret", "service", "stack", "swarm", "plugin",
        "trust", "checkpoint", "context", "manifest", "buildx", "compose",
        "scout", "debug", "init", "sbom", "ai", "desktop", "extension"}

def help_text(prog, words):
    r = subprocess.run([prog, *words, "--help"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/nonexistent",
                            "DOCKER_CLI_HINTS": "false"})
    return r.stdout + r.stderr, r.returncode

def section_words(text, names):
    out, on = [], False
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z ]*:\s*$", line):
            on = line.strip().rstrip(":") in names
            continue
        if on:
            m = re.match(r"^  (?:\* )?([a-z][a-z0-9-]*)\*?\s", line)
            if m:
                out.append(m.group(1))
    return out

def flags(text):
    out, on = set(), False
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z ]*:\s*$", line):
            on = line.strip().rstrip(":") == "Options"
            continue
        if on:
            m = re.match(r"^\s+(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)", line)
            if m and m.group(1) != "help":
                out.add(m.group(1))
    return out

def walk(words):
    text, _ = help_text(docker, words)
    subs = section_words(text, {"Commands", "Management Commands", "Common Commands"})
    yield words, text
    for s in subs:
        if not words and s in SKIP:
            continue
        yield from walk(words + [s])

missing_cmds, rows = [], []
total = have = 0
for words, dtext in walk([]):
    if not words:
        continue
    dflags = flags(dtext)
    btext, code = help_text(berth, words)
    known = code == 0 and "unrecognized subcommand" not in btext
    if not known:
        missing_cmds.append(" ".join(words))
        total += len(dflags)
        continue
    bflags = flags(btext)
    lack = sorted(dflags - bflags)
    total += len(dflags)
    have += len(dflags) - len(lack)
    rows.append((" ".join(words), len(dflags), lack))

cmds = len(rows) + len(missing_cmds)
print(f"Commands berth lacks ({len(missing_cmds)} of {cmds}):")
for c in missing_cmds:
    print(f"  {c}")
print("\nFlags berth lacks, by command:")
for name, n, lack in rows:
    if lack:
        print(f"  {name} ({n - len(lack)}/{n}): " + " ".join("--" + f for f in lack))
pct = 100 * have / total if total else 100
print(f"\nberth has {len(rows)} of docker's {cmds} commands and accepts "
      f"{have} of their {total} flags ({pct:.0f}%).")
EOF
