"""Regenerates BENCHMARKS.md's bad-input table from the test's own cases
(tests/test_ops.py BAD_INPUT): run from the checkout, `python bench-results/bad-input-table.py`."""
import contextlib
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_ops import BAD_INPUT  # noqa: E402

from pyfuzz import cli  # noqa: E402

print("| input | command | message (stderr) | exit |")
print("|---|---|---|---|")
for name, argv, files in BAD_INPUT:
    with tempfile.TemporaryDirectory() as tmp:
        for rel, content in files.items():
            (Path(tmp) / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main([a.format(d=tmp) for a in argv])
        shown = " ".join(a.format(d="D") for a in argv)
        print(f"| {name} | `pyfuzz {shown}` | {err.getvalue().strip().replace(tmp, 'D')} | {code} |")
