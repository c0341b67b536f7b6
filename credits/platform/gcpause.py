"""Batch work with Python's cyclic garbage collector paused.

The collector runs after every few hundred new container objects and, now and then, walks
every object the process holds. A batch of calls makes millions of short-lived objects
(parsed rows, ratings, records to copy) while thousands of rows stay alive, so it paid for
many such walks: a fifth of an import's time. Reference counting still frees everything
as usual; only reference cycles wait for the collector, which runs again when the batch
ends. Nothing here makes cycles on purpose.
"""

import contextlib
import gc


@contextlib.contextmanager
def cyclic_gc_paused():
    """Pause the cyclic collector for the block, when it is on. The setting is the
    process's: a thread that finds it already paused leaves it to the one that paused it,
    so it is switched back on exactly once."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
