"""Fuzz target (ClusterFuzzLite/OSS-Fuzz, or run directly with libFuzzer flags): the harness of
`pyfuzz fuzz` (pyfuzz/harness.py) as a plain libFuzzer target, on the instrumented core the
package ships. A violation of the protocol is raised, so libFuzzer reports it as a crash and
saves the input; `engine_fuzzer CRASH-FILE` (or `python fuzzers/engine_fuzzer.py CRASH-FILE`)
runs it again.

It fuzzes the configuration the specification calls safe (slab=deferred) unless PYFUZZ_CONFIG
says otherwise: on the seed's own configuration every run would stop at the seed's known race."""

import os
import sys

from pyfuzz import build, harness, model

os.environ.setdefault("PYFUZZ_CONFIG", "slab=deferred")
core = build.instrumented_core()
if core is None:
    sys.exit("engine_fuzzer: " + build.describe(None))
os.environ.setdefault("PYFUZZ_CORE", str(core))
print(f"engine_fuzzer: {build.describe(core)}; oracle: {model.ORACLE_NAME}", file=sys.stderr)

if __name__ == "__main__":
    harness.main(sys.argv)
