"""loop8-callgrind.py (instructions per run of `pyfuzz bench speed`'s loop outside the oracle, this
tree's `_core` beside `--baseline MODULE`) with one change: each pass's digest table is made before
the counted pass, as `bench speed` makes it outside its timing. loop8-callgrind.py counts it in the
export and the kind pass: an 8 MiB array zeroed and copied, about 2,900 instructions per distinct
history on the campaign loop and 9,900 on 3 x 16, the same for every build.

    .venv/bin/python bench-results/loop9-callgrind.py [--baseline MODULE] [--module MODULE] [--profile DIR]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("loop8_callgrind", Path(__file__).resolve().with_name("loop8-callgrind.py"))
loop8 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loop8)

_MADE_IN_THE_PASS = """def one_pass(*_):
    histories = judges(MUTANT_CONFIG) if judges is not None else None
"""
_MADE_BEFORE = """tables = [judges(MUTANT_CONFIG) if judges is not None else None for _ in range(2)]
def one_pass(*_):
    histories = tables.pop()
"""
assert _MADE_IN_THE_PASS in loop8._CHILD, "loop8-callgrind.py's child changed"
loop8._CHILD = loop8._CHILD.replace(_MADE_IN_THE_PASS, _MADE_BEFORE)

if __name__ == "__main__":
    sys.exit(loop8.main())
