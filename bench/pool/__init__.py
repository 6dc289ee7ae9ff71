"""Benchmark of the warm pool and the session broker (python -m bench.pool)."""
