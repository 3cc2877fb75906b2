"""Device simulators speaking the real protocols, for the demo, the tests and the benchmarks."""
