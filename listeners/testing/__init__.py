"""The random reshaping workload that races vCPU sweeps through the KVM listener
(used by tests, benchmarks and ``flatview stress``)."""
