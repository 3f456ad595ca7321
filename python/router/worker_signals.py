"""Stop signals inside granian's worker processes.

A worker is told to stop more than once when a terminal's Ctrl-C (or a signal to the whole process group, as
`docker stop` with an init, systemd's control-group kill, or a test harness sends) reaches it directly and again
through granian's main process, which forwards the stop to each worker. granian's worker handler pushes every
stop into a one-slot channel with a blocking send, from the event loop's thread: once that slot is full, one more
signal blocks the loop for good, the worker never exits, and the main process waits out its kill timeout (30 s)
before it gives up on it. Only the first stop request means anything, so later ones are dropped here.

A stop can also come before granian installs its worker handler at all: a worker forked moments before the
stop spends its first moments building the application, and in that time it still runs the
handler it inherited from the main process, which only sets a flag in the main process's (copied) memory.
The stop was lost, the worker went on to serve, and the main process waited out its kill timeout again. So
a worker records a stop from the moment it is forked and acts on it once granian's handler is in place.
"""

from __future__ import annotations

import os
import signal
from typing import Any

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_first_signal() -> None:
    """Make every granian worker started after this call hand only its first SIGINT/SIGTERM to granian.

    Called in the main process before `Server.serve()`: workers are forked from it and look granian's
    `set_loop_signals` up when they start, so they get this version, which installs granian's handler and then
    puts a first-only one in its place on the same event loop."""
    from granian import _signals

    if getattr(_signals.set_loop_signals, "first_only", False):
        return
    granian_set_loop_signals = _signals.set_loop_signals
    # Whether this process was told to stop before granian's worker handler was installed (see the module).
    early_stop = False

    def record_stop(signum: int, frame: Any) -> None:
        nonlocal early_stop
        early_stop = True

    def on_fork() -> None:
        nonlocal early_stop
        early_stop = False
        for sig in _STOP_SIGNALS:
            signal.signal(sig, record_stop)

    os.register_at_fork(after_in_child=on_fork)

    def set_loop_signals(loop: Any) -> Any:
        stop = granian_set_loop_signals(loop)  # the worker's stop event, which granian's serve loop waits on
        fired = early_stop
        if fired:
            # Once the loop runs: granian hooks its shutdown onto the event after this returns.
            loop.call_soon(stop.set)

        def first_only(signum: int, frame: Any) -> None:
            nonlocal fired
            if not fired:
                fired = True
                stop.set()

        try:
            for sig in _STOP_SIGNALS:
                loop.add_signal_handler(sig, first_only, sig, None)
        except NotImplementedError:  # a loop without signal support: granian falls back the same way
            for sig in _STOP_SIGNALS:
                signal.signal(sig, first_only)
        return stop

    set_loop_signals.first_only = True  # type: ignore[attr-defined]
    _signals.set_loop_signals = set_loop_signals
