"""Voxboard's benchmark suite: large realistic data, load runs, baselines, a report.

`python -m bench.data` builds the data set on PostgreSQL, `python -m bench.run` measures
and writes `bench/results/<UTC timestamp>.md`; `make bench` does both. See
docs/performance.md for the targets and how to read the figures.
"""
