"""`make bench`: DVR's benchmark harness (`python -m bench.run [--quick]`)."""
