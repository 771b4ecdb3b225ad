"""Writes the benchmarks' four layer directories under DIR: three of small
files (4-64 KiB), one of large files (64 MiB each), MIB MiB in all, each file
half random and half zeros (so gzip has something to do).

    python3 bench/make-layers.py DIR MIB
"""
import os
import random
import sys

root, mib = sys.argv[1], int(sys.argv[2])
random.seed(1)
total = mib << 20
large = total // 2
for layer in range(4):
    d = os.path.join(root, f"layer{layer}")
    os.makedirs(d)
    budget = large if layer == 3 else (total - large) // 3
    i = 0
    while budget > 0:
        size = min(budget, 64 << 20) if layer == 3 else random.randint(4 << 10, 64 << 10)
        sub = os.path.join(d, f"d{i // 500}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i}"), "wb") as f:
            f.write(os.urandom(size // 2) + bytes(size - size // 2))
        budget -= size
        i += 1
