"""Benchmarks for Conveyor and the baselines it is measured against.

Every benchmark is a standalone command that prints one JSON line with its figures; ``bench.run``
runs them several times and ``bench.report`` turns the results into markdown and plots.
"""
