"""One lock for every lazy import, so that two invocations never import for the first time at once.

Blueprints and adapters import services and heavy SDKs inside the functions that use them, so that indexing
`function_app` stays small (a cold start). But the worker runs invocations on many threads, and the first ones
after a start import at the same moment: when two threads import module graphs that overlap and hold import
cycles (SQLAlchemy's `sqlalchemy.engine` does), Python's per-module locks detect a deadlock and hand one thread a
partially initialised module. That thread fails with an ImportError, and a module that bound the half-made
package (`import sqlalchemy as sa`) keeps it: every later call fails with "module 'sqlalchemy' has no attribute
'select'" until the process restarts, and queue messages go to poison meanwhile.

So every function-level import is written `with serial_imports:`. The first call pays the import, the others
wait for it; once a module is loaded the lock is held for a dictionary lookup. It is re-entrant, because an
import under the lock can run code that imports lazily in turn. `tests/unit/test_lazy_imports.py` holds every
function-level import in `blueprints/` and `shared/` to this rule, and imports the blueprints' sets on many
threads at once in fresh interpreters.
"""

from __future__ import annotations

import threading

serial_imports = threading.RLock()
