import json, sys, statistics, math
from collections import defaultdict
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
by = defaultdict(dict)
for r in rows: by[(r["mutant"], r["method"])][r["seed"]] = r
mutants = sorted({m for m, _ in by}, key=lambda m: [r["mutant"] for r in rows].index(m))
methods = sorted({x for _, x in by}, key=lambda m: [r["method"] for r in rows].index(m))
for mu in mutants:
    base = by.get((mu, "pyfuzz"), {})
    for me in methods:
        d = by.get((mu, me))
        if not d: continue
        runs = [r["runs"] if r["found"] else None for r in d.values()]
        found = [x for x in runs if x is not None]
        secs = [r["seconds"] for r in d.values() if r["found"]]
        line = f"{mu:24s} {me:20s} n={len(d):2d} found={len(found):2d} median runs={statistics.median(found) if found else '-':>9} mean={round(statistics.mean(found)) if found else '-':>8} median s={statistics.median(secs) if secs else '-':.3}"
        if me != "pyfuzz" and base:
            common = [s for s in d if s in base and d[s]["found"] and base[s]["found"]]
            fewer = sum(d[s]["runs"] < base[s]["runs"] for s in common)
            more = sum(d[s]["runs"] > base[s]["runs"] for s in common)
            gm = math.exp(statistics.mean(math.log(d[s]["runs"] / base[s]["runs"]) for s in common)) if common else float("nan")
            line += f"  vs pyfuzz: fewer {fewer} more {more} equal {len(common)-fewer-more} geomean {gm:.2f}x"
        print(line)
