"""Other ways to hunt the same bugs with the same core and oracle, for `pyfuzz bench bugs`.

Every method runs the mutant under the same configuration with the same time budget and stops
at the first violation the oracle reports. They differ only in how programs and interleavings
are chosen:

* ``pyfuzz``: the libFuzzer campaign (coverage from the instrumented core and interleavings);
  ``pyfuzz-full`` the same with reads-from and hand-off features too, ``pyfuzz-branches``
  without interleaving features; ``pyfuzz-fixed`` the default with the same number of walks for
  every input (the harness's walk schedule off); ``pyfuzz-steer`` the default with steering (a kept
  input's most novel walk seed passed on to its mutants); ``pyfuzz-no-entropic`` the default
  without libFuzzer's entropic power schedule; ``pyfuzz-no-counters`` the default with
  libFuzzer's ``-use_counters=0`` (a counter is one feature, whatever its value).
* ``random``: uniformly random program bytes, uniformly random thread choice at every step.
* ``pct``: uniformly random program bytes, PCT scheduling (random priorities, depth 3).
* ``pct-walk``: the same, at the depth of the PCT walks the pyfuzz harness runs on every input:
  the harness's own walk without libFuzzer, so the gap to ``pyfuzz`` is what the feedback buys.
* ``pct-8``, ``pos``, ``surw``, ``delay-3``: the other samplers of the core (sched.rs) on the
  same random programs: PCT with depth 8, partial order sampling, a walk weighted by each
  thread's remaining steps, and round robin with 3 random delays.
* ``hypothesis``: a Hypothesis stateful machine that grows a program rule by rule (setup, ops,
  schedule slices) and runs it on the core after every rule.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass

from . import _core
from .check import judge
from .files import scratch_directory
from .harness import WALK_DEPTH
from .model import DistinctHistories
from .program import random_input

# The blind methods: the scheduler each walks its random programs with, and the PCT depth.
BLIND = {"random": ("random", 0), "pct": ("pct", 3), "pct-walk": ("pct", WALK_DEPTH), "pct-8": ("pct", 8),
         "pos": ("pos", 0), "surw": ("surw", 0), "delay-3": ("delay", 3)}
# The campaign methods, each with the interleaving feedback it reports (feedback.rs): the
# access-class pairs (the default), those with reads-from pairs and hand-off sequences, or none
# (branch coverage alone); the others differ from the default in the sets below.
FEEDBACK = {"pyfuzz": "pairs", "pyfuzz-full": "full", "pyfuzz-branches": "off", "pyfuzz-fixed": "pairs",
            "pyfuzz-steer": "pairs", "pyfuzz-no-entropic": "pairs", "pyfuzz-no-counters": "pairs"}
# The campaign methods whose harness gives every input WALKS_PER_INPUT walks (harness.py).
FIXED_WALKS = {"pyfuzz-fixed"}
# The campaign methods whose kept inputs pass their most novel walk's seed to their mutants
# (harness.py's steering, PYFUZZ_WALKS=steer).
STEERED = {"pyfuzz-steer"}
# The campaign methods run without libFuzzer's entropic power schedule (campaign.py).
NO_ENTROPIC = {"pyfuzz-no-entropic"}
# The campaign methods whose libFuzzer counts a counter as one feature, met or not, instead of one
# per bucket of its value (campaign.py, PYFUZZ_COUNTERS).
NO_COUNTERS = {"pyfuzz-no-counters"}
METHODS = (*FEEDBACK, *BLIND, "hypothesis")


@dataclass
class Attempt:
    method: str
    mutant: str
    config: str
    seed: int
    found: bool
    seconds: float  # to the first violation, or the whole budget
    executions: int
    kind: str | None
    startup: float | None = None  # pyfuzz: the part of `seconds` spent starting the campaign
    # Runs (schedules executed: a campaign's inputs each run under their own schedule and their
    # walks) to the first violation or in the whole budget; for the blind methods, `executions`.
    runs: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def config_label(config: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def _attempt(method, mutant, config, seed, found, seconds, executions, kind, startup=None, runs=None) -> Attempt:
    return Attempt(method, mutant, config_label(config), seed, found, round(seconds, 4), executions, kind,
                   None if startup is None else round(startup, 4), executions if runs is None else runs)


def blind_search(method: str, config: dict[str, str], mutant: str, budget: float, seed: int) -> Attempt:
    """The `BLIND` methods: no feedback, every distinct history checked."""
    scheduler, depth = BLIND[method]
    rng = random.Random(seed)
    engine = _core.Engine(config, mutant)
    histories = DistinctHistories(config)
    executions = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < budget:
        data = random_input(rng)
        outcome = engine.run_bytes_with(data, scheduler, rng.getrandbits(64), depth)
        executions += 1
        violation = histories.judge(outcome)
        if violation is not None:
            return _attempt(method, mutant, config, seed, True, time.monotonic() - start, executions, violation.kind)
    return _attempt(method, mutant, config, seed, False, elapsed, executions, None)


def hypothesis_machine(config: dict[str, str], mutant: str, budget: float, seed: int) -> Attempt:
    import hypothesis.core
    from hypothesis import HealthCheck, Phase, Verbosity, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

    limits = _core.LIMITS
    pages = limits["pages"]
    state = {"executions": 0, "found": None}
    start = time.monotonic()

    class OutOfTime(Exception):
        pass

    class ProtocolViolation(AssertionError):
        pass

    @st.composite
    def setups(draw):
        vmas, cursor = [], 0
        for _ in range(draw(st.integers(1, limits["setup_vmas"]))):
            start_page = cursor + draw(st.integers(0, 1))
            end = start_page + draw(st.integers(1, 4))
            if end > pages:
                break
            counter = draw(st.sampled_from([None] * 14 + [0x7FFFFFFF, 0xA0000000]))
            vmas.append((start_page, end, counter))
            cursor = end
        return vmas

    @st.composite
    def ops(draw):
        name = draw(st.sampled_from(["rmap", "rmap", "munmap", "mmap", "split", "merge", "fork", "get", "put"]))
        addr = draw(st.integers(0, pages - 1))
        if name == "put":
            return ("put", 0, 0, False)
        fail = name in ("mmap", "split", "fork") and draw(st.booleans())
        if name == "mmap":
            length = draw(st.integers(1, 4))
            return ("mmap", min(addr, pages - length), length, fail)
        return (name, addr, 0, fail)

    class ProgramMachine(RuleBasedStateMachine):
        @initialize(setup=setups(), threads=st.integers(*limits["threads"]))
        def begin(self, setup, threads):
            self.setup, self.threads, self.schedule = setup, [[] for _ in range(threads)], []

        @rule(data=st.data(), op=ops())
        def add_op(self, data, op):
            thread = self.threads[data.draw(st.integers(0, len(self.threads) - 1))]
            # as long as the decoder's threads, so that every method searches the same programs
            if len(thread) < limits["decoded_ops"]:
                thread.append(op)

        @rule(data=st.data(), steps=st.integers(1, 32))
        def add_slice(self, data, steps):
            if len(self.schedule) < limits["schedule"]:
                self.schedule.append((data.draw(st.integers(0, len(self.threads) - 1)), steps))

        @invariant()
        def protocol_holds(self):
            if not hasattr(self, "threads"):
                return
            if time.monotonic() - start > budget:
                raise OutOfTime()
            outcome = _core.run((self.setup, self.threads, self.schedule), config, mutant)
            state["executions"] += 1
            violation = judge(outcome, config)
            if violation is not None:
                state["found"] = (time.monotonic() - start, violation.kind)
                raise ProtocolViolation(str(violation))

    # Hypothesis's pytest plugin seeds runs this way (--hypothesis-seed).
    hypothesis.core.global_force_seed = seed
    try:
        run_state_machine_as_test(
            ProgramMachine,
            settings=settings(
                max_examples=10**9, stateful_step_count=50, deadline=None, database=None,
                phases=[Phase.generate], suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
            ),
        )
    except (OutOfTime, ProtocolViolation):
        pass
    except Exception:
        # Hypothesis replays a failing example; when the budget ran out mid-example the replay
        # does not fail the same way and Hypothesis calls the test flaky. Either way the state
        # says what happened; anything else is a real error.
        if state["found"] is None and time.monotonic() - start <= budget:
            raise
    finally:
        hypothesis.core.global_force_seed = None
    if state["found"] is not None:
        seconds, kind = state["found"]
        return _attempt("hypothesis", mutant, config, seed, True, seconds, state["executions"], kind)
    return _attempt("hypothesis", mutant, config, seed, False, time.monotonic() - start, state["executions"], None)


def pyfuzz_campaign(method: str, config: dict[str, str], mutant: str, budget: float, seed: int) -> Attempt:
    from .campaign import run_campaign

    os.environ["PYFUZZ_FEEDBACK"] = FEEDBACK[method]  # inherited by the harness process
    os.environ["PYFUZZ_WALKS"] = "fixed" if method in FIXED_WALKS else "steer" if method in STEERED else "power"
    os.environ["PYFUZZ_ENTROPIC"] = "0" if method in NO_ENTROPIC else "1"
    os.environ["PYFUZZ_COUNTERS"] = "0" if method in NO_COUNTERS else "1"
    with scratch_directory("pyfuzz-bench-") as tmp:
        result = run_campaign(config, mutant, int(budget), None, tmp, seed + 1, minimize_finding=False)
    f = result.finding
    if f is None:
        return _attempt(method, mutant, config, seed, False, result.seconds, result.executions, None,
                        runs=result.runs)
    return _attempt(method, mutant, config, seed, True, f.seconds, f.executions, f.kind, f.startup, runs=f.runs)


def run_method(method: str, config: dict[str, str], mutant: str, budget: float, seed: int) -> Attempt:
    if method in FEEDBACK:
        return pyfuzz_campaign(method, config, mutant, budget, seed)
    if method == "hypothesis":
        return hypothesis_machine(config, mutant, budget, seed)
    return blind_search(method, config, mutant, budget, seed)
