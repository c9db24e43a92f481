"""Named crash points, for the tests that prove crash safety by killing a process where it hurts most.

`crash_point("name")` does nothing unless the environment says `IMPRINT_CRASH_AT=name`; then the process
sends itself SIGKILL on the spot: no cleanup, no `finally`, no flushed buffers, as after a power cut or
the OOM killer. Only tests set the variable; in production the check is one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "IMPRINT_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process here if `IMPRINT_CRASH_AT` names this point."""
    if os.environ.get(ENV) == name:
        log.warning("crash point %s: killing process %d", name, os.getpid())
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
