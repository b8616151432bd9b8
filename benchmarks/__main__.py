"""Run every benchmark module's main() (or only those named: `python -m benchmarks trainer_bench`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import benchmarks


def discover() -> list[str]:
    """The benchmark modules: `*_bench`. Others in the package are their helpers (scenes.py
    composes the detect benchmark's frames and has no main())."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.endswith("_bench"))


def main(argv: list[str] | None = None) -> int:
    names = discover()
    wanted = list(sys.argv[1:] if argv is None else argv)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"benchmarks: error: unknown benchmark {unknown[0]!r} (available: {', '.join(names)})", file=sys.stderr)
        return 2
    failures = 0
    for name in wanted or names:
        print(f"\n=== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            entry = getattr(module, "main", None)
            if entry is None:
                raise AttributeError(f"benchmarks.{name} has no main()")
            # A module may parse sys.argv itself: give it only its own name, not the runner's arguments.
            saved_argv = sys.argv
            sys.argv = [f"benchmarks.{name}"]
            try:
                result = entry()
            finally:
                sys.argv = saved_argv
            failures += int(bool(result)) if isinstance(result, int) else 0
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failures += 1
        print(f"=== benchmarks.{name} finished in {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
