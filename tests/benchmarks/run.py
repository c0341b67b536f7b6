"""`make bench`: runs every tests/benchmarks/bench_*.py module's `run()` and prints its
`name: value` lines (DESIGN.md section 10). Ratios are measured within one run, because
machines are noisy. Most lines need PostgreSQL (and Redis for the recharge latency):
set DATABASE_URL and REDIS_URL, or the defaults below are used."""

import contextlib
import importlib
import os
import pkgutil
import sys
import time


@contextlib.contextmanager
def throwaway_database():
    """Django set up on the benchmark settings, with a throw-away database like the test
    suite's (benchmarks never touch real data); dropped on exit."""
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def main() -> int:
    with throwaway_database():
        return _run_all()


def _run_all() -> int:
    failed = 0
    import tests.benchmarks as package

    only = set(sys.argv[1:])
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        if only and info.name not in only:
            continue
        module = importlib.import_module(f"tests.benchmarks.{info.name}")
        started = time.perf_counter()
        try:
            results = module.run()
        except Exception as exc:  # report and go on: one broken bench hides no other
            failed += 1
            print(f"# {info.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        for name, value in results.items():
            print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}",
                  flush=True)
        print(f"# {info.name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
