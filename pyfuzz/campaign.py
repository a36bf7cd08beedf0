"""A fuzz campaign: run the libFuzzer harness in a child process, follow its progress, and turn a
finding into a minimized, replayable program file."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build
from .check import Verdict, decode, execute
from .harness import FINDING_EXIT
from .minimize import reduce
from .program import INPUT_LEN, Program, random_input, save

STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)")
FINAL = re.compile(r"^stat::(number_of_executed_units|average_exec_per_sec):\s+(\d+)")
SEED = re.compile(r"^INFO: Seed: (\d+)")


class CampaignError(RuntimeError):
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
    executions: int  # executions up to and including the violating one


@dataclass
class CampaignResult:
    config: dict[str, str]
    mutant: str
    seconds: float = 0.0
    executions: int = 0
    exec_per_second: int = 0
    checked: int = 0
    coverage: int = 0
    features: int = 0
    corpus_entries: int = 0
    seed: int | None = None
    instrumented: bool = False
    finding: Finding | None = None
    log_tail: list[str] = field(default_factory=list)


# From an empty corpus libFuzzer starts with the empty input and grows programs a few bytes at a
# time, while most protocol mistakes break in the first handful of full-size random programs. So
# every campaign also reads this many random inputs, drawn from the campaign's seed, from a
# directory libFuzzer only reads (new inputs still go to the corpus).
RANDOM_INPUTS = 64


def _write_random_inputs(directory: Path, seed: int) -> None:
    directory.mkdir()
    rng = random.Random(seed)
    for i in range(RANDOM_INPUTS):
        (directory / f"random-{i:02d}").write_bytes(random_input(rng))


def _harness_args(seconds: int, seed: int, corpus: Path, work: Path) -> list[str]:
    return [
        sys.executable, "-m", "pyfuzz.harness",
        f"-max_total_time={seconds}",
        # Compare values as features fill the corpus with inputs that differ in how the decoder
        # read their bytes, not in how threads met; without them every narrow race and the seed's
        # race were found sooner (30 seeds each, BENCHMARKS.md).
        "-use_value_profile=0",
        "-print_final_stats=1",
        # libFuzzer re-reads the corpus directory every second by default; what that re-read adds
        # depends on wall-clock timing, and it made campaigns with the same seed diverge.
        "-reload=0",
        f"-max_len={INPUT_LEN[1]}",
        "-len_control=0",
        "-timeout=20",
        "-rss_limit_mb=8192",
        f"-artifact_prefix={work}{os.sep}",
        f"-seed={seed}",
        str(corpus),
        str(work / "random-inputs"),
    ]


def run_campaign(
    config: dict[str, str],
    mutant: str,
    seconds: int,
    corpus: Path | None,
    artifacts: Path,
    seed: int | None,
    progress=None,
    minimize_finding: bool = True,
) -> CampaignResult:
    """Fuzz for `seconds`. `progress(result)` is called as libFuzzer reports."""
    if seed is None:
        seed = random.randrange(1, 2**31)
    result = CampaignResult(config=config, mutant=mutant, seed=seed)
    core = build.instrumented_core()
    result.instrumented = core is not None
    with tempfile.TemporaryDirectory(prefix="pyfuzz-") as tmp:
        work = Path(tmp)
        corpus_dir = corpus if corpus is not None else work / "corpus"
        corpus_dir.mkdir(parents=True, exist_ok=True)
        _write_random_inputs(work / "random-inputs", seed)
        finding_file = work / "finding.json"
        stats_file = work / "stats.json"
        env = dict(
            os.environ,
            PYFUZZ_CORE=str(core or ""),
            PYFUZZ_CONFIG=",".join(f"{k}={v}" for k, v in config.items()),
            PYFUZZ_MUTANT=mutant,
            PYFUZZ_FINDING=str(finding_file),
            PYFUZZ_STATS=str(stats_file),
        )
        started = time.monotonic()
        started_wall = time.time()
        proc = subprocess.Popen(
            _harness_args(seconds, seed, corpus_dir, work),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            _absorb(result, line.rstrip("\n"))
            if progress is not None:
                result.seconds = time.monotonic() - started
                progress(result)
        code = proc.wait()
        result.seconds = time.monotonic() - started
        if stats_file.exists():
            stats = json.loads(stats_file.read_text())
            result.checked = stats["checked"]
            result.executions = max(result.executions, stats["executions"])
        if result.exec_per_second == 0 and result.seconds > 0:
            result.exec_per_second = int(result.executions / result.seconds)
        result.corpus_entries = sum(1 for _ in corpus_dir.iterdir())
        if code == FINDING_EXIT and finding_file.exists():
            raw = json.loads(finding_file.read_text())
            result.finding = _finalize(raw, config, mutant, artifacts, minimize_finding, started_wall)
        elif code != 0:
            tail = " | ".join(result.log_tail[-4:])
            raise CampaignError(f"the fuzz harness exited with status {code}: {tail}")
    return result


def _absorb(result: CampaignResult, line: str) -> None:
    result.log_tail = (result.log_tail + [line])[-20:]
    if m := STATUS.match(line):
        result.executions = int(m[1])
        result.coverage, result.features, result.corpus_entries = int(m[3]), int(m[4]), int(m[5])
        result.exec_per_second = int(m[6])
    elif m := FINAL.match(line):
        if m[1] == "number_of_executed_units":
            result.executions = int(m[2])
        else:
            result.exec_per_second = int(m[2])
    elif m := SEED.match(line):
        result.seed = int(m[1])


def _finalize(
    raw: dict, config: dict[str, str], mutant: str, artifacts: Path, shrink: bool, started_wall: float
) -> Finding:
    """Replay the finding on the normal build, minimize it, and save it as a program file."""
    data = bytes.fromhex(raw["data"])
    original = decode(data, config, mutant, raw["walk"])
    verdict = execute(original)
    if verdict.violation is None or verdict.violation.kind != raw["kind"]:
        raise CampaignError(
            f"finding did not replay on the normal build (harness said {raw['kind']}): "
            "the engine is not deterministic, which is a pyfuzz bug"
        )
    kind = raw["kind"]
    if shrink:
        # The same minimizer as `pyfuzz minimize`: it keeps the signature, and replays its result.
        reduction = reduce(original)
        small, final = reduction.program, reduction.verdict
    else:
        small, final = original, verdict
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{kind}-{raw['digest'] & 0xFFFFFFFF:08x}.txt"
    header = (
        f"pyfuzz finding: {kind}\n{final.violation.message}\n"
        f"replay: pyfuzz replay {path}\n"
        f"minimized from {sum(map(len, original.threads))} ops to {sum(map(len, small.threads))}"
    )
    save(small, path, header_comment=header)
    save(original, path.with_suffix(".orig.txt"), header_comment=f"unminimized input of {path.name}")
    return Finding(
        kind, final.violation.message, small, original, path, final, raw["found_at"] - started_wall,
        raw["first_input_at"] - started_wall, raw["executions"]
    )
