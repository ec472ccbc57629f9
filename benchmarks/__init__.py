"""Throughput benchmarks: the engine against raw-client baselines measured in the same run (``python -m benchmarks.run``)."""
