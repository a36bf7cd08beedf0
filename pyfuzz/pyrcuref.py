"""The acceleration baseline: a plain pure-Python executor of the rcuref subset of the model.

Programs of `get ADDR` and `put` on one VMA over 2-4 threads, run under the same schedulers as
the Rust core (the program's own list schedule, and PCT walks drawn from the same SplitMix64
stream), producing the same history, so that the same harness loop and the same oracle can judge
it and `pyfuzz bench speed` can state the Rust core's acceleration as a ratio measured in the
same run.  It follows lib/rcuref.c as the Rust core does (one unconditional fetch-add per get or
put, the slow paths deciding on the zone of the value found) and the engine's scheduling: every
shared access and every preemption switch is one step, and a thread runs from one to just before
the next.

It is written the way one would write it without the Rust core: generators for threads, a
yield before every shared access.  The VMA stays in the tree all along (its tree reference is
never dropped), so no put here can release it, and nothing is ever freed.
"""

from __future__ import annotations

MAXREF = 0x7FFFFFFF
SATURATED = 0xA0000000
RELEASED = 0xC0000000
DEAD = 0xE0000000
NOREF = 0xFFFFFFFF
SLOTS = 8
SLOT = 0  # the one VMA's slab slot
_MASK = 0xFFFFFFFF
_LIMIT = 1 << 64


class Outcome:
    """What the harness reads from a run, as from the Rust core's Outcome."""

    def __init__(self, events, steps, counter):
        self.events = events
        self.steps = steps
        self.final_counters = [counter] + [0] * (SLOTS - 1)
        self.digest = hash(tuple(events)) % _LIMIT


class _Machine:
    def __init__(self, start, end, preempt):
        self.start = start
        self.end = end
        self.preempt = preempt
        self.counter = 0
        self.events = []

    def setup(self):
        """vm_area_alloc (the memset, then rcuref_init), the fields, the tree, the folios."""
        ev = self.events
        ev.append(("alloc", -1, SLOT, 1))
        ev.append(("atomic", -1, SLOT, "store", "plain", 0, 0))
        ev.append(("ref_call", -1, SLOT, "init"))
        ev.append(("atomic", -1, SLOT, "store", "relaxed", 0, 0))
        ev.append(("ref_ret", -1, SLOT, "init", None))
        ev.append(("write", -1, SLOT, "vm_start", self.start))
        ev.append(("write", -1, SLOT, "vm_end", self.end))
        ev.append(("write", -1, SLOT, "vm_pgoff", self.start))
        ev.append(("tree_insert", -1, 0, SLOT, self.start, self.end, self.start))
        for page in range(self.start, self.end):
            ev.append(("mapping_store", -1, page, SLOT))
            ev.append(("folio_map", -1, page, True))

    def add(self, t, delta, op, order):
        old = self.counter
        self.counter = new = (old + delta) & _MASK
        self.events.append(("atomic", t, SLOT, op, order, old, new))
        return new

    def load(self, t):
        v = self.counter
        self.events.append(("atomic", t, SLOT, "load", "relaxed", v, v))
        return v

    def store(self, t, value, order):
        self.events.append(("atomic", t, SLOT, "store", order, self.counter, value))
        self.counter = value

    def thread(self, t, ops):
        """One program thread; every `yield` is a scheduling step before a shared access."""
        ev = self.events
        held = 0
        for i, (name, addr) in enumerate(ops):
            ev.append(("op_begin", t, i))
            if name == "get":
                yield
                ev.append(("lock", t, "read"))
                yield
                outcome = "noop"
                if self.start <= addr < self.end:
                    ev.append(("lookup", t, 0, SLOT))
                    ev.append(("ref_call", t, SLOT, "get"))
                    yield
                    ok = self.add(t, 1, "add", "relaxed") <= MAXREF
                    if not ok:
                        # the slow path classifies the zone it finds
                        yield
                        c = self.load(t)
                        if c >= RELEASED:
                            yield
                            self.store(t, DEAD, "relaxed")
                        else:
                            ok = True
                            if c > MAXREF:
                                ev.append(("warn", t, SLOT, "saturated"))
                                yield
                                self.store(t, SATURATED, "relaxed")
                    ev.append(("ref_ret", t, SLOT, "get", ok))
                    if ok:
                        held += 1
                    outcome = "held" if ok else "missed"
                yield
                ev.append(("unlock", t, "read"))
            elif held == 0:
                outcome = "noop"
            else:
                held -= 1
                if self.preempt:
                    yield
                    ev.append(("preempt_off", t))
                ev.append(("ref_call", t, SLOT, "put"))
                yield
                c = self.add(t, -1, "sub", "release")
                released = False
                if c > MAXREF:
                    # the slow path decides on the value its own fetch-sub produced
                    if c == NOREF:
                        yield
                        if self.counter == NOREF:
                            ev.append(("atomic", t, SLOT, "cas_ok", "release", NOREF, DEAD))
                            self.counter = DEAD
                            ev.append(("fence", t))
                            released = True
                        else:
                            ev.append(("atomic", t, SLOT, "cas_fail", "release", self.counter, self.counter))
                    elif c >= RELEASED:
                        ev.append(("warn", t, SLOT, "imbalanced_put"))
                        yield
                        self.store(t, DEAD, "relaxed")
                    else:
                        yield
                        self.store(t, SATURATED, "relaxed")
                ev.append(("ref_ret", t, SLOT, "put", released))
                if self.preempt:
                    yield
                    ev.append(("preempt_on", t))
                if released:
                    raise AssertionError("the tree's reference was dropped: no program of gets and puts can")
                outcome = "ok"
            ev.append(("op_end", t, i, outcome))


def run(vma, threads, scheduler, preempt=True) -> Outcome:
    """Run `threads` (lists of ("get", addr) / ("put", 0)) on one setup VMA `vma` = (start, end)
    under `scheduler` (ListSchedule or Pct); `preempt`: put=preempt (rcuref_put) or rcusafe."""
    m = _Machine(vma[0], vma[1], preempt)
    m.setup()
    gens = [m.thread(t, ops) for t, ops in enumerate(threads)]
    started = [False] * len(gens)
    live = [True] * len(gens)
    steps = 0
    while True in live:
        t = scheduler.next(live)
        g = gens[t]
        try:
            if not started[t]:
                started[t] = True
                next(g)   # up to its first access
            next(g)       # the access, then on to just before the next one
        except StopIteration:
            live[t] = False
        steps += 1
    return Outcome(m.events, steps, m.counter)


def _first_runnable_from(runnable, start):
    n = len(runnable)
    for k in range(n):
        if runnable[(start + k) % n]:
            return (start + k) % n
    raise ValueError("no runnable thread")


class ListSchedule:
    """A program's own schedule: (thread, steps) slices, then every thread to completion."""

    def __init__(self, slices):
        self.slices = list(slices)
        self.index = 0
        self.used = 0

    def next(self, runnable):
        while self.index < len(self.slices):
            t, steps = self.slices[self.index]
            if self.used < steps:
                self.used += 1
                return _first_runnable_from(runnable, t)
            self.index += 1
            self.used = 0
        return _first_runnable_from(runnable, 0)


class SplitMix:
    def __init__(self, seed):
        self.state = seed & (_LIMIT - 1)

    def below(self, n):
        self.state = (self.state + 0x9E3779B97F4A7C15) & (_LIMIT - 1)
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (_LIMIT - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (_LIMIT - 1)
        return (z ^ (z >> 31)) % max(n, 1)


class Pct:
    """PCT with the Rust core's draws: priorities shuffled, then depth - 1 change points."""

    def __init__(self, threads, depth, expected_steps, seed):
        rng = SplitMix(seed)
        self.priority = [i + depth for i in range(threads)]
        for i in range(threads - 1, 0, -1):
            j = rng.below(i + 1)
            self.priority[i], self.priority[j] = self.priority[j], self.priority[i]
        self.change_points = [rng.below(max(expected_steps, 1)) for _ in range(1, depth)]
        self.step = 0

    def _best(self, runnable):
        best = None
        for i, r in enumerate(runnable):
            if r and (best is None or self.priority[i] >= self.priority[best]):
                best = i
        return best

    def next(self, runnable):
        chosen = self._best(runnable)
        if self.step in self.change_points:
            k = self.change_points.index(self.step)
            self.priority[chosen] = k
            self.change_points[k] = -1
        self.step += 1
        return self._best(runnable)
