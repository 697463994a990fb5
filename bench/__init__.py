"""Benchmarks, each run side by side with its baseline; `python -m bench [--quick]` runs them.

A benchmark is a module here with a `main(argv: list[str] | None = None)` that understands
`--quick`; `bench/common.py` has the shared timing, table and throwaway-database helpers.
See bench/README.md for what each one measures and the latest figures.
"""
