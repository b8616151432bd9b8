"""Benchmarks: `python -m benchmarks` runs every module's main(); `python -m benchmarks.<name>` runs one.

Each area adds its own module here (benchmarks/<area>_bench.py with a `main()` that prints a
table of figures measured side by side in one run). Performance is measured here, never
asserted in tests.
"""
