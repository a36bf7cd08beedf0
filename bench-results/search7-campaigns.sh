#!/bin/sh
# The campaigns of BENCHMARKS.md, "Why the guidance does not pay on the hard tier": each hard row,
# seeds 0-2, --jobs 1, a run-count budget (so the load does not move the counts).
# Usage: sh bench-results/search7-campaigns.sh RUNS ROW...   (from the repository's root)
set -e
runs=$1; shift
for row in "$@"; do
  for seed in 0 1 2; do
    .venv/bin/python bench-results/search7-shape.py campaign "$row" --runs "$runs" --seed "$seed" --out bench-results/search7
    gzip -f "bench-results/search7/campaign-$row-$seed.jsonl"
    rm -f "bench-results/search7/campaign-$row-$seed.out"
  done
done
