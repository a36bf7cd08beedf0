"""How often the code as written (no mutant) meets get_recentre_cmpxchg_revives' window, on the
official command's program stream and walks: `python window.py INPUTS`. A run counts when one
thread's get slow path has re-read a dead counter and, before its re-centring store, another
thread's increment lands on that counter: the one place where the mutant's compare-exchange fails.
Also counted: the runs with any get on a dead counter (the path the window sits on)."""
import random
import sys

from pyfuzz import _core
from pyfuzz.bench import MUTANT_CONFIG, WALK_DEPTH, random_input

RELEASED = 0xC000_0000
engine = _core.Engine(MUTANT_CONFIG, "none")
programs, walks = random.Random(2024), random.Random(2025)
dead_gets, windows = 0, []
for i in range(int(sys.argv[1])):
    outcome = engine.run_bytes_with(random_input(programs), "pct", walks.getrandbits(64), WALK_DEPTH)
    rereads, dead, hit = set(), False, False
    for ev in outcome.events:
        if ev[0] != "atomic":
            continue
        t, slot, op, old = ev[1], ev[2], ev[3], ev[5]
        if op == "load" and old >= RELEASED:
            rereads.add((t, slot))
            dead = True
        elif op == "store":
            rereads.discard((t, slot))
        elif op == "add" and old >= RELEASED and any(s == slot and u != t for u, s in rereads):
            hit = True
    dead_gets += dead
    if hit:
        windows.append(i)
print(f"{int(sys.argv[1]):,} programs: a get on a dead counter in {dead_gets:,} runs; another thread's "
      f"increment between a dead get's re-read and its store in {len(windows)} (programs {windows})")
