"""Benchmarks: the timing core (:mod:`.timing`), the result schema (:mod:`.schema`), the machine
record (:mod:`.machine`), the end-to-end breakdown (:mod:`.breakdown`) and ``mnn-bench`` (:mod:`.cli`)."""
