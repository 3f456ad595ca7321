"""Stop signals in granian's worker processes (`router.worker_signals`), in forked processes like granian's.

Each script runs in a fresh interpreter: the main process installs its own SIGTERM handler (as granian's main
process does, and its forked workers inherit it), then forks a worker that runs `CHILD` and exits with its code.
granian's stop event (a Rust object only its serving loop watches) is replaced by one the test can wait on."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FORKED_WORKER = """
import asyncio, os, signal, time
from granian import _signals
from router.worker_signals import stop_on_first_signal

class Stop:
    def __init__(self):
        self.stopped = asyncio.Event()

    def set(self):
        self.stopped.set()

def exit_once_stopped(loop, stopped):
    try:
        loop.run_until_complete(asyncio.wait_for(stopped.wait(), 5))
    except TimeoutError:
        os._exit(3)
    os._exit(0)

_signals.WorkerSignal = Stop
signal.signal(signal.SIGTERM, lambda *_: None)
stop_on_first_signal()
pid = os.fork()
if pid == 0:
    try:
        CHILD
    finally:
        os._exit(9)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


def _run(child: str) -> int:
    body = textwrap.indent(textwrap.dedent(child).strip(), " " * 8)
    script = FORKED_WORKER.replace("        CHILD", body)
    return subprocess.run([sys.executable, "-c", script], timeout=30).returncode


def test_a_stop_before_granians_handler_is_installed_is_kept() -> None:
    # Told to stop while it is still importing and building the application: it stops once serving starts.
    code = _run(
        """
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        loop = asyncio.new_event_loop()
        stopped = _signals.set_loop_signals(loop).stopped
        exit_once_stopped(loop, stopped)
        """
    )
    assert code == 0


def test_a_worker_not_told_to_stop_keeps_serving_until_told() -> None:
    code = _run(
        """
        loop = asyncio.new_event_loop()
        stopped = _signals.set_loop_signals(loop).stopped
        loop.run_until_complete(asyncio.sleep(0.3))
        if stopped.is_set():
            os._exit(4)
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        exit_once_stopped(loop, stopped)
        """
    )
    assert code == 0
