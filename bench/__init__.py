"""Benchmarks: run them from the checkout as modules, e.g. ``python -m bench.fault_injection``."""
