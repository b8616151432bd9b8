"""Benchmarks: `python -m benchmarks.<name>`; each prints a table of ratios measured side by side."""
