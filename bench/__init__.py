"""Benchmarks of the sidecar against its targets: `python -m bench [--quick]` (see docs/performance.md).

Not part of the test run. Every measure drives a real sidecar subprocess (except the in-process context build)
against the fake provider server (tests/fake_provider.py) running in its own process.
"""
