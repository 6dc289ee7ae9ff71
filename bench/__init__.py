"""Benchmarks: ours against the baselines on the same data, ratios printed last."""
