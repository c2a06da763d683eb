"""Load tests and benchmarks of the shop; each module says what it shows and how to run it."""
