"""Prints hyperfine's JSON results as a Markdown table of medians (ms)."""
import json
import sys

results = json.load(open(sys.argv[1]))["results"]
print("| command | median | mean | min |")
print("|---|---:|---:|---:|")
for r in results:
    print(f"| `{r['command']}` | {r['median']*1000:.1f} ms | {r['mean']*1000:.1f} ms | {r['min']*1000:.1f} ms |")
