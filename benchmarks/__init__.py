"""Throughput benchmarks: the engine next to raw-client baselines measured in the same run."""
