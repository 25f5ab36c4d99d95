"""Benchmarks: ``python -m benchmarks NAME [--smoke]``, each printing one JSON object."""
