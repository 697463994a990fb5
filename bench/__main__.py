"""Run every benchmark in bench/ in turn: `python -m bench [--quick] [NAME ...]`.

A benchmark is any module of this package with a `main()`; it is called with the options
given here (`--quick`, `--databases`, `--postgres`) when its `main` takes an argument list,
and with them in `sys.argv` otherwise. One benchmark failing does not stop the others; the
exit status says whether all of them ran.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable

import bench

NOT_BENCHMARKS = {"common", "__main__"}


def discover() -> dict[str, Callable[..., object]]:
    """name → main of every module in bench/ that defines one, by name."""
    found: dict[str, Callable[..., object]] = {}
    for module in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if module.name in NOT_BENCHMARKS or module.name.startswith("_"):
            continue
        try:
            loaded = importlib.import_module(f"bench.{module.name}")
        except Exception as error:  # a module that does not import fails its own run only
            found[module.name] = _failing(error)
            continue
        main = getattr(loaded, "main", None)
        if callable(main):
            found[module.name] = main
    return found


def _failing(error: Exception) -> Callable[..., object]:
    def fail(argv: list[str] | None = None) -> None:
        raise error

    return fail


def _call(name: str, main: Callable[..., object], argv: list[str]) -> None:
    if inspect.signature(main).parameters:
        main(argv)
        return
    saved = sys.argv
    sys.argv = [f"bench.{name}", *argv]
    try:
        main()
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--databases", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--postgres", help="PostgreSQL server URL")
    parser.add_argument("--list", action="store_true", help="name the benchmarks and stop")
    args = parser.parse_args(argv)
    found = discover()
    if args.list:
        print("\n".join(found))
        return 0
    unknown = [n for n in args.names if n not in found]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (have: {', '.join(found)})")
    passed = ["--quick"] if args.quick else []
    for option in ("databases", "postgres"):
        if getattr(args, option):
            passed += [f"--{option}", getattr(args, option)]
    failed = []
    for name in args.names or list(found):
        print(f"=== bench.{name} {' '.join(passed)}".rstrip(), flush=True)
        began = time.perf_counter()
        try:
            _call(name, found[name], passed)
        except SystemExit as error:  # argparse, or a benchmark saying a target was missed
            if error.code:
                print(f"=== bench.{name} exited with status {error.code}", flush=True)
                failed.append(name)
        except Exception:  # report it and go on with the next benchmark
            traceback.print_exc()
            failed.append(name)
        print(f"=== bench.{name} took {time.perf_counter() - began:.0f} s\n", flush=True)
    if failed:
        print(f"failed or exited non-zero: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
