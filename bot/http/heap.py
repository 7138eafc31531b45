"""The objects the app builds at startup, kept out of the garbage collector's passes.

A full collection walks every container object the process tracks and answers nothing
while it does: in a started server that is mostly what startup built (modules, SQLAlchemy's
mappers, the routes, pydantic's schemas), and it took 101-145 ms under load here, so every
charge in flight waited that long, once or twice in 30 s. Frozen once startup is
done, those objects are left out of every collection, and a full collection walks only
what serving made since (docs/performance.md, "Full collections"). They live as long as the
app anyway; what refcounting frees is freed as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """While the app serves: every object that exists now is out of the collector's
    passes. After, they are back in its oldest generation (collectable again once the app
    is gone, as in tests that start many apps in one process)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
