"""Test-only pause points, for the fault suite (tests/reliability/test_faults_*.py).

`pause_point("recharge_after_gateway")` does nothing unless the environment variable
CC_TEST_PAUSE_AT names that point. Then the process writes its pid to the file named by
CC_TEST_PAUSE_MARKER (when set) and sleeps CC_TEST_PAUSE_SECONDS (default 60), so that a
test can SIGKILL a real worker at exactly that step. Never set these variables outside
tests. The points:
- `recharge_after_gateway`: the card was charged, the ledger not yet credited;
- `export_after_write`: the export's file is written, the export not yet marked done.
"""

import os
import time
from pathlib import Path


def pause_point(name: str) -> None:
    if os.environ.get("CC_TEST_PAUSE_AT") != name:
        return
    marker = os.environ.get("CC_TEST_PAUSE_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("CC_TEST_PAUSE_SECONDS", "60")))
