"""Harnesses that drive real guests for tests, benchmarks and ``flatview stress``:
the CPL3 test guest, its machine code, the sweep harness and fault injection.
Nothing in the runtime path imports this package."""
