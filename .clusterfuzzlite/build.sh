#!/bin/bash -eu
# Builds pyfuzz's fuzz targets into $OUT, as ClusterFuzzLite/OSS-Fuzz run this script: from
# $SRC/pyfuzz, with compile_python_fuzzer (PyInstaller) on the PATH.
#
#   program_text_fuzzer  the program-file reader (pyfuzz/parser_fuzz.py's contract), seeded
#                        with corpus/*.txt
#   engine_fuzzer        the campaign's harness: bytes -> program -> the core's deterministic
#                        engine (own schedule + 16 PCT walks) -> the oracle; a violation is a
#                        crash. Seeded with corpus/*.txt too (any bytes decode to a program).

# The wheel build compiles the core twice: normally, and with sanitizer coverage
# (pyfuzz/_core-sancov.so, pyfuzz/build.py), which engine_fuzzer loads so that libFuzzer sees
# the Rust branches and the interleaving pairs.
pip3 install .
checkout=$PWD
# From here on, away from the checkout: its uncompiled pyfuzz/ must not stand in for the
# installed package, neither for Python nor for PyInstaller's analysis.
work=$SRC/pyfuzz-fuzzers
rm -rf "$work" && mkdir -p "$work" && cp "$checkout"/fuzzers/*_fuzzer.py "$work" && cd "$work"
site=$(python3 -c 'import pathlib, pyfuzz; print(pathlib.Path(pyfuzz.__file__).parent)')
test -f "$site/_core-sancov.so" || { echo "build.sh: the wheel has no instrumented core" >&2; exit 1; }

for fuzzer in *_fuzzer.py; do
  name=$(basename -s .py "$fuzzer")
  # The instrumented core is data to PyInstaller: only the harness loads it, by path. The oracle
  # is imported by name (pyfuzz/mypyc_oracle.py picks its compiled build or its source), which
  # PyInstaller's analysis cannot follow: so every pyfuzz module goes in.
  compile_python_fuzzer "$fuzzer" --add-data "$site/_core-sancov.so:pyfuzz" --collect-submodules pyfuzz
  python3 -m zipfile -c "$OUT/${name}_seed_corpus.zip" "$checkout"/corpus/*.txt
done
