"""Shared by the reliability and security suite: each fault or fuzz test
records what it tried, and the run ends with one summary line such as
`faults survived: 6/6, fuzz cases: 2,000, server errors: 0`."""

import pytest

_KEY = pytest.StashKey[dict]()


def _tally(config) -> dict:
    if _KEY not in config.stash:
        config.stash[_KEY] = {"faults": 0, "faults_survived": 0, "fuzz_cases": 0,
                              "server_errors": 0}
    return config.stash[_KEY]


@pytest.fixture
def reliability(request):
    """`reliability.fault(survived=True)`, `reliability.fuzz(cases, server_errors=0)`."""
    tally = _tally(request.config)

    class Recorder:
        @staticmethod
        def fault(*, survived: bool) -> None:
            tally["faults"] += 1
            tally["faults_survived"] += int(bool(survived))

        @staticmethod
        def fuzz(cases: int, *, server_errors: int = 0) -> None:
            tally["fuzz_cases"] += int(cases)
            tally["server_errors"] += int(server_errors)

    return Recorder()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tally = config.stash.get(_KEY, None)
    if not tally:
        return
    terminalreporter.write_line(
        f"faults survived: {tally['faults_survived']}/{tally['faults']}, "
        f"fuzz cases: {tally['fuzz_cases']:,}, server errors: {tally['server_errors']}"
    )
