#!/bin/sh
# The campaigns of BENCHMARKS.md, "Why the guidance does not pay on the hard tier": each hard row,
# seeds 0-2 unless $SEEDS, --jobs 1, a run-count budget (so the load does not move the counts).
# Usage: sh bench-results/search7-campaigns.sh RUNS ROW...   (from the repository's root;
# SEEDS="3 4 5" for other seeds, WALKS=fixed OUT=bench-results/search7/fixed-walks for the harness's
# fixed 16 walks per input)
set -e
runs=$1; shift
out=${OUT:-bench-results/search7}
for row in "$@"; do
  for seed in ${SEEDS:-0 1 2}; do
    .venv/bin/python bench-results/search7-shape.py campaign "$row" --runs "$runs" --seed "$seed" --out "$out" --walks "${WALKS:-power}"
    gzip -f "$out/campaign-$row-$seed.jsonl"
    rm -f "$out/campaign-$row-$seed.out"
  done
done
