"""TST01, the fictional car-registry source system used by the demo, tests and benchmarks."""
