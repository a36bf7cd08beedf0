"""A fuzz campaign: libFuzzer harness workers in child processes, their progress followed and
summed, their new inputs gathered into one corpus directory, and each finding turned into a
minimized, replayable program file (one per signature).

Every worker is `python -m pyfuzz.harness` writing new inputs into a private directory; the
campaign copies each complete one (libFuzzer names an input by the SHA-1 of its bytes, so a file
whose name is not its hash is still being written) into the corpus directory by write and
rename, and with several workers into the other workers' directories too, which libFuzzer
re-reads every second. A campaign killed at any moment therefore leaves a corpus of whole
inputs, and the next one on the same directory starts from all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, model
from .check import Verdict, decode, execute
from .files import InUse, holding, scratch_directory, write_atomically
from .harness import FINDING_EXIT
from .minimize import reduce
from .program import INPUT_LEN, Program, ProgramError, load, random_input, save
from .signature import signature

STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)")
FINAL = re.compile(r"^stat::(number_of_executed_units|average_exec_per_sec):\s+(\d+)")
SEED = re.compile(r"^INFO: Seed: (\d+)")
LIBFUZZER_INPUT = re.compile(r"[0-9a-f]{40}")
# How often the campaign copies new inputs into the corpus: what a SIGKILL can lose.
SYNC_SECONDS = 1.0
# A worker asked to stop (Ctrl-C, the end of a campaign) gets this long before SIGKILL.
STOP_GRACE_SECONDS = 10.0


class CampaignError(RuntimeError):
    pass


class CorpusInUse(CampaignError):
    pass


@dataclass
class Finding:
    kind: str
    message: str
    program: Program  # minimized unless the campaign was told not to
    original: Program
    path: Path
    verdict: Verdict
    seconds: float  # from the campaign's start to the violation
    startup: float  # of those, the start-up: the harness process, libFuzzer, the instrumented core
    executions: int  # executions up to and including the violating one, in the finding worker
    signature: str = ""
    duplicates: int = 0  # later violations (distinct histories) with the same signature, not saved again
    runs: int = 0  # runs (own schedules and walks) up to and including the violating one, in that worker


@dataclass
class CampaignResult:
    config: dict[str, str]
    mutant: str
    jobs: int = 1
    seconds: float = 0.0
    executions: int = 0
    exec_per_second: int = 0
    runs: int = 0  # the inputs' runs (own schedules and walks), as the workers last reported them
    checked: int = 0
    coverage: int = 0  # libFuzzer's cov (code edges and interleaving pairs), max over workers
    features: int = 0  # libFuzzer's ft, max over workers
    interleavings: int = 0  # distinct interleaving pairs met, union over workers
    corpus_entries: int = 0
    loaded: int = 0  # inputs in the corpus directory when the campaign started
    corpus_dir: Path | None = None
    seed: int | None = None
    instrumented: bool = False
    coverage_source: str = ""
    oracle: str = ""  # which build of the oracle judged the histories (model.ORACLE_NAME)
    interrupted: bool = False
    stopped: str = ""  # why the campaign stopped early on its own: a file it could not write
    findings: list[Finding] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)

    @property
    def finding(self) -> Finding | None:
        return self.findings[0] if self.findings else None


# From an empty corpus libFuzzer starts with the empty input and grows programs a few bytes at a
# time, while most protocol mistakes break in the first handful of full-size random programs. So
# every worker also reads this many random inputs, drawn from its seed, from a directory
# libFuzzer only reads (new inputs go to the worker's own directory).
RANDOM_INPUTS = 64


def _write_random_inputs(directory: Path, seed: int) -> None:
    directory.mkdir()
    rng = random.Random(seed)
    for i in range(RANDOM_INPUTS):
        (directory / f"random-{i:02d}").write_bytes(random_input(rng))


def libfuzzer_env(core: Path | None, config: dict[str, str]) -> dict[str, str]:
    """The environment of a harness child: the very pyfuzz package this process runs, the
    instrumented core if there is one, and the configuration to run. `python -P` keeps the
    working directory off sys.path, so a source checkout's uncompiled pyfuzz/ cannot shadow an
    installed package in the child. A fixed hash seed: atheris feeds Python's own coverage to
    libFuzzer too, and code that walks a set or dict of strings would otherwise take other
    branches in every process, and a campaign's seed would no longer decide its inputs."""
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYFUZZ_CORE=str(core or ""), PYTHONHASHSEED="0",
                PYFUZZ_CONFIG=",".join(f"{k}={v}" for k, v in config.items()))


def harness_command(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "pyfuzz.harness", *args]


def _harness_args(seconds: int, seed: int, dirs: list[Path], work: Path, reload: bool) -> list[str]:
    return harness_command(
        f"-max_total_time={seconds}",
        # Compare values as features fill the corpus with inputs that differ in how the decoder
        # read their bytes, not in how threads met; without them every narrow race and the seed's
        # race were found sooner (30 seeds each, BENCHMARKS.md).
        "-use_value_profile=0",
        "-print_final_stats=1",
        # libFuzzer re-reads its corpus directory every second when told to; what that re-read
        # adds depends on wall-clock timing, so a single worker never does (the same seed runs
        # the same inputs), while several workers do to pick up each other's inputs.
        f"-reload={int(reload)}",
        f"-max_len={INPUT_LEN[1]}",
        "-len_control=0",
        # libFuzzer's entropic power schedule (its default) spends about half of the campaign's
        # CPU outside the oracle on per-feature bookkeeping: without it the campaign ran 1.23x
        # the runs per CPU second, and needed as many runs to the deep two's violations over 16
        # seeds each, but about 1.5x the runs to the seed's own race over 10 (BENCHMARKS.md,
        # "Steering and the entropic schedule"; again in the eighth session over 30 seeds, 1.65x
        # and a longer median time). So it stays; PYFUZZ_ENTROPIC=0 (`bench bugs --method
        # pyfuzz-no-entropic`) turns it off.
        f"-entropic={os.environ.get('PYFUZZ_ENTROPIC', '1')}",
        # libFuzzer makes a counter's value bucket (1, 2, 3, 4-7, ..., 128+) a feature of its own.
        # A harness input is 17 to 256 runs, so a hot edge's sancov counter (it wraps at 256)
        # lands in a bucket that is noise, and those features keep the entropic schedule's rare
        # list long. PYFUZZ_COUNTERS=0 (`bench bugs --method pyfuzz-no-counters`) makes a counter
        # one feature: 1.6x the checked runs per CPU second, the deep two found in 2.3-3.4x less
        # time over 30 seeds, but the seed's race needed more runs on 15 of 30 seeds (4 fewer)
        # and a longer median time (BENCHMARKS.md, "Eighth session: the campaign itself"). So the
        # buckets stay.
        f"-use_counters={os.environ.get('PYFUZZ_COUNTERS', '1')}",
        "-timeout=20",
        "-rss_limit_mb=8192",
        f"-artifact_prefix={work}{os.sep}",
        f"-seed={seed}",
        *map(str, dirs),
    )


@dataclass
class _Status:
    executions: int = 0
    exec_per_second: int = 0
    runs: int = 0
    coverage: int = 0
    features: int = 0
    checked: int = 0
    interleavings: frozenset = frozenset()
    duplicates: dict = field(default_factory=dict)  # signature -> repeats the worker did not write


class _Worker:
    def __init__(self, index: int, seed: int, seconds: int, work: Path, corpus: Path, env: dict,
                 events: queue.Queue, reload: bool) -> None:
        self.seed = seed
        self.dir = work / f"worker-{index}"
        self.out = self.dir / "out"
        self.out.mkdir(parents=True)
        _write_random_inputs(self.dir / "random-inputs", seed)
        self.findings = self.dir / "findings"
        self.findings.mkdir()
        self.collected: set[str] = set()  # finding files taken from self.findings
        self.stats_file = self.dir / "stats.json"
        self.status = _Status()
        self.core: str | None = None  # the core module the harness's engine came from
        self.stopping = False
        env = dict(env, PYFUZZ_FINDINGS=str(self.findings), PYFUZZ_STATS=str(self.stats_file),
                   PYFUZZ_PARENT=str(os.getpid()))
        self.proc = subprocess.Popen(
            _harness_args(seconds, seed, [self.out, corpus, self.dir / "random-inputs"], self.dir, reload),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            # Ctrl-C reaches the campaign alone, which stops its workers in order.
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(events,), daemon=True).start()

    def _read(self, events: queue.Queue) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            events.put((self, line.rstrip("\n")))
        events.put((self, None))

    def stop(self) -> None:
        if self.proc.poll() is None and not self.stopping:
            self.stopping = True
            self.proc.send_signal(signal.SIGTERM)  # libFuzzer prints its final stats and exits

    def read_stats(self) -> None:
        try:
            stats = json.loads(self.stats_file.read_text())
        except (OSError, ValueError):
            return
        self.status.checked = stats["checked"]
        self.status.executions = max(self.status.executions, stats["executions"])
        self.status.runs = max(self.status.runs, stats.get("runs", 0))
        self.status.interleavings = frozenset(stats.get("interleavings", ()))
        self.status.duplicates = stats.get("duplicates", {})
        self.core = stats.get("core", self.core)

    def new_findings(self) -> list[dict]:
        """The findings the harness wrote since the last call (whole files only: it writes each
        by rename, under a name that orders them)."""
        names = sorted(n for n in os.listdir(self.findings) if n.endswith(".json") and not n.startswith("."))
        found = []
        for name in names:
            if name not in self.collected:
                self.collected.add(name)
                found.append(json.loads((self.findings / name).read_text()))
        return found


@contextlib.contextmanager
def _stop_requests_set(stop: threading.Event):
    """While the workers run, Ctrl-C and SIGTERM only set `stop`, which the campaign's loop reads
    between events. A KeyboardInterrupt raised at an arbitrary point could leave the event queue's
    lock held, and stopping the workers would then hang. Off the main thread (where no signal
    handler can be set) the default behaviour stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Campaign:
    def __init__(self, config, mutant, seconds, corpus, artifacts, seed, jobs, progress, shrink,
                 keep_going, work: Path) -> None:
        self.config, self.mutant, self.artifacts = config, mutant, artifacts
        self.shrink, self.keep_going, self.progress = shrink, keep_going, progress
        self.work, self.jobs = work, jobs
        self.corpus = corpus
        self.known = {p.name for p in self.corpus.iterdir() if p.is_file()}
        core = build.instrumented_core()
        self.core = core
        self.result = CampaignResult(
            config=config, mutant=mutant, jobs=jobs, seed=seed, loaded=len(self.known),
            instrumented=core is not None, coverage_source=build.describe(core), oracle=model.ORACLE_NAME,
        )
        self.signatures: dict[str, Finding] = self._saved_signatures()
        self.repeats: dict[str, int] = {}  # signature -> findings of it a worker wrote but not saved
        known = work / "known-signatures"
        known.write_text("".join(f"{sig}\n" for sig in self.signatures))
        self.env = dict(libfuzzer_env(core, config), PYFUZZ_MUTANT=mutant, PYFUZZ_KNOWN=str(known),
                        PYFUZZ_KEEP_GOING=str(int(keep_going)))
        self.seconds = seconds
        self.events: queue.Queue = queue.Queue()
        self.workers: list[_Worker] = []
        self.live: set[_Worker] = set()
        self.seed = seed
        self.started = time.monotonic()
        self.started_wall = time.time()

    def _saved_signatures(self) -> dict[str, Finding]:
        """Findings already in the artifacts directory, by signature, so that a campaign resumed
        on it saves only new ones. Files that do not replay as findings are left alone, and so are
        findings under another configuration or mutant: a different bug, even with the same
        signature."""
        saved: dict[str, Finding] = {}
        if not self.artifacts.is_dir():
            return saved
        for path in sorted(self.artifacts.glob("*.txt")):
            if path.name.endswith(".orig.txt"):
                continue
            try:
                program = load(path)
            except ProgramError:
                continue
            if program.config_dict != self.config or program.mutant != self.mutant:
                continue
            verdict = execute(program)
            if verdict.violation is not None:
                v = verdict.violation
                sig = signature(verdict)
                saved.setdefault(sig, Finding(v.kind, v.message, program, program, path, verdict, 0.0, 0.0, 0,
                                              signature=sig))
        return saved

    def run(self) -> CampaignResult:
        for index in range(self.jobs):
            worker = _Worker(index, self.seed + index, self.seconds, self.work, self.corpus, self.env,
                             self.events, reload=self.jobs > 1)
            self.workers.append(worker)
            self.live.add(worker)
        last_sync = time.monotonic()
        stop = threading.Event()
        try:
            with _stop_requests_set(stop):
                while self.live and not stop.is_set() and not self.result.stopped:
                    try:
                        worker, line = self.events.get(timeout=0.25)
                    except queue.Empty:
                        pass
                    else:
                        if line is None:
                            self._writing(self._exited, worker)
                        else:
                            self._absorb(worker, line)
                    if time.monotonic() - last_sync >= SYNC_SECONDS:
                        last_sync = time.monotonic()
                        self._writing(self._sync)
                        for w in self.live:
                            w.read_stats()
                    self._update()
        except BaseException:  # a pyfuzz bug: never leave the workers running
            self._stop_all()
            raise
        self.result.interrupted = stop.is_set()
        self._stop_all()
        self._writing(self._sync)
        self._update()
        wrong = {w.core for w in self.workers if w.core is not None} - {str(self.core)}
        if self.core is not None and wrong:  # never a campaign that says one coverage and ran another
            raise CampaignError(f"the harness ran the core {', '.join(sorted(map(str, wrong)))}, "
                                f"not {self.core or 'the normal build'}")
        return self.result

    def _stop_all(self) -> None:
        """Stop the workers and wait for them (SIGKILL after the grace period); a finding written
        meanwhile is still collected. A second Ctrl-C here only shortens the wait."""
        for w in self.live:
            w.stop()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.live:
            try:
                worker, line = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                for w in list(self.live):
                    if w.proc.poll() is None:
                        w.proc.kill()
                    else:  # dead, though something it started still holds its output open
                        self._writing(self._exited, w, stop_others=False)
                deadline = time.monotonic() + STOP_GRACE_SECONDS
                continue
            except KeyboardInterrupt:
                self.result.interrupted = True
                for w in self.live:
                    w.proc.kill()
                continue
            if line is None:
                self._writing(self._exited, worker, stop_others=False)
            else:
                self._absorb(worker, line)

    def _writing(self, step, *args, **kwargs) -> None:
        """Run a step that writes into the corpus or artifacts directory. A file it cannot write
        (a full disk, a directory made read-only or removed under a running campaign) stops the
        campaign as Ctrl-C would, with its summary: everything saved until then stays whole."""
        try:
            step(*args, **kwargs)
        except OSError as e:
            if not self.result.stopped:
                what = f"cannot write {e.filename}" if e.filename else "cannot write"
                self.result.stopped = f"{what}: {e.strerror or e}"

    def _absorb(self, worker: _Worker, line: str) -> None:
        self.result.log_tail = (self.result.log_tail + [line])[-20:]
        s = worker.status
        if m := STATUS.match(line):
            s.executions, s.coverage, s.features = int(m[1]), int(m[3]), int(m[4])
            s.exec_per_second = int(m[6])
        elif m := FINAL.match(line):
            if m[1] == "number_of_executed_units":
                s.executions = int(m[2])
            else:
                s.exec_per_second = int(m[2])
        elif (m := SEED.match(line)) and worker is self.workers[0]:
            self.result.seed = int(m[1])

    def _update(self) -> None:
        r, statuses = self.result, [w.status for w in self.workers]
        r.seconds = time.monotonic() - self.started
        r.executions = sum(s.executions for s in statuses)
        r.runs = sum(s.runs for s in statuses)
        r.checked = sum(s.checked for s in statuses)
        # Live, the sum of the running workers' rates; at the end, of each worker's average.
        running = [w.status for w in self.live] or statuses
        r.exec_per_second = sum(s.exec_per_second for s in running)
        if r.exec_per_second == 0 and r.seconds > 0:  # no worker lived to report a rate
            r.exec_per_second = int(r.executions / r.seconds)
        r.coverage = max(s.coverage for s in statuses)
        r.features = max(s.features for s in statuses)
        r.interleavings = len(frozenset().union(*(s.interleavings for s in statuses)))
        r.corpus_entries = len(self.known)
        for sig, finding in self.signatures.items():
            finding.duplicates = self.repeats.get(sig, 0) + sum(s.duplicates.get(sig, 0) for s in statuses)
            if finding.duplicates and finding not in r.findings:  # saved by an earlier campaign
                r.findings.append(finding)
        if self.progress is not None:
            self.progress(r)

    def _sync(self) -> None:
        for worker in self.workers:
            for raw in worker.new_findings():
                self._collect(raw)
            try:
                names = os.listdir(worker.out)
            except FileNotFoundError:
                continue
            for name in names:
                if name in self.known or not LIBFUZZER_INPUT.fullmatch(name):
                    continue
                try:
                    data = (worker.out / name).read_bytes()
                except FileNotFoundError:  # replaced by a smaller input meanwhile
                    continue
                if hashlib.sha1(data).hexdigest() != name:
                    continue  # still being written
                write_atomically(self.corpus / name, data)
                self.known.add(name)
                if self.jobs > 1:
                    for other in self.live - {worker}:
                        write_atomically(other.out / name, data)

    def _exited(self, worker: _Worker, stop_others: bool = True) -> None:
        code = worker.proc.wait()
        self.live.discard(worker)
        worker.read_stats()
        for raw in worker.new_findings():
            self._collect(raw)
        if code == FINDING_EXIT:  # the first finding ends a campaign without keep_going
            if stop_others:
                for w in self.live:
                    w.stop()
        elif code != 0 and not worker.stopping:
            for w in self.live:
                w.stop()
            tail = " | ".join(self.result.log_tail[-4:])
            raise CampaignError(f"the fuzz harness exited with status {code}: {tail}")

    def _collect(self, raw: dict) -> None:
        """Replay a worker's finding on the normal build; a new signature is minimized and saved,
        a known one only counted."""
        original = decode(bytes.fromhex(raw["data"]), self.config, self.mutant, raw["walk"])
        verdict = execute(original)
        kind = raw["kind"]
        if verdict.violation is None or verdict.violation.kind != kind or signature(verdict) != raw["signature"]:
            raise CampaignError(
                f"finding did not replay on the normal build (harness said {raw['signature']}): "
                "the engine is not deterministic, which is a pyfuzz bug"
            )
        sig = raw["signature"]
        if sig in self.signatures:  # found by another worker too, or saved by an earlier campaign
            self.repeats[sig] = self.repeats.get(sig, 0) + 1
            return
        finding = _save_finding(raw, original, verdict, self.artifacts, self.shrink, self.started_wall)
        finding.signature = sig
        self.signatures[sig] = finding
        self.result.findings.append(finding)


def run_campaign(
    config: dict[str, str],
    mutant: str,
    seconds: int,
    corpus: Path | None,
    artifacts: Path,
    seed: int | None,
    progress=None,
    minimize_finding: bool = True,
    jobs: int = 1,
    keep_going: bool = False,
) -> CampaignResult:
    """Fuzz for `seconds` with `jobs` workers. `progress(result)` is called as they report.

    The campaign ends at the first finding unless `keep_going`; then it runs its whole time, its
    workers fuzzing on past each finding and writing only violations whose signature is new (not
    one already in `artifacts`), and the repeats counted. Ctrl-C or SIGTERM ends it early with
    everything found and gathered so far (`result.interrupted`); so does a file it cannot write
    (`result.stopped`)."""
    if seed is None:
        seed = random.randrange(1, 2**31 - jobs)
    with scratch_directory("pyfuzz-") as tmp:
        directory = corpus if corpus is not None else tmp / "corpus"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            with holding(directory):
                campaign = _Campaign(config, mutant, seconds, directory, artifacts, seed, jobs, progress,
                                     minimize_finding, keep_going, tmp)
                campaign.result.corpus_dir = corpus
                return campaign.run()
        except InUse:
            raise CorpusInUse(f"--corpus {corpus}: in use by another pyfuzz campaign (one campaign per corpus: "
                              "give it more workers with --jobs, or each campaign its own corpus and join "
                              "them with 'pyfuzz corpus merge')") from None


def _save_finding(raw: dict, original: Program, verdict: Verdict, artifacts: Path, shrink: bool,
                  started_wall: float) -> Finding:
    """Minimize a finding and save it as a program file, its unminimized input beside it."""
    kind = raw["kind"]
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{kind}-{raw['digest'] & 0xFFFFFFFF:08x}.txt"
    save(original, path.with_suffix(".orig.txt"), header_comment=f"unminimized input of {path.name}")
    small, final = original, verdict
    if shrink:
        # The same minimizer as `pyfuzz minimize`: it keeps the signature, and replays its result.
        try:
            reduction = reduce(original)
            small, final = reduction.program, reduction.verdict
        except KeyboardInterrupt:  # Ctrl-C while minimizing: keep the unminimized program
            small, final = original, verdict
    header = (
        f"pyfuzz finding: {kind}\n{final.violation.message}\n"
        f"replay: pyfuzz replay {path}\n"
        f"minimized from {sum(map(len, original.threads))} ops to {sum(map(len, small.threads))}"
    )
    save(small, path, header_comment=header)
    return Finding(
        kind, final.violation.message, small, original, path, final, raw["found_at"] - started_wall,
        raw["first_input_at"] - started_wall, raw["executions"], runs=raw.get("runs", 0)
    )
