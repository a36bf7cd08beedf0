"""pyfuzz: a coverage-guided concurrency fuzzer for the Linux VMA rcuref lifetime protocol."""

__version__ = "0.1.0"
