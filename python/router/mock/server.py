"""Running the mock: the ``router mock`` flags and the granian (RSGI + uvloop) server around :class:`MockApp`."""

from __future__ import annotations

import argparse
import os

from ..worker_signals import stop_on_first_signal
from .knobs import FAIL_MODES, KnobError, Knobs, from_env, to_env

APP_FACTORY = "router.mock.app:create_app"
# Hung requests never finish on their own; cap how long shutdown waits for them.
WORKERS_KILL_TIMEOUT = 3


def _fraction(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return rate


def _non_negative(kind: type[int] | type[float]):
    def parse(value: str) -> int | float:
        number = kind(value)
        if number < 0:
            raise argparse.ArgumentTypeError("must be >= 0")
        return number

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``router mock`` flags. Knob flags default to None so ``ROUTER_MOCK_*`` env vars can fill the gap."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9090, help="port to bind (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="granian worker processes (default: %(default)s); request logs and fail-rate are per worker",
    )
    knobs = parser.add_argument_group("default knobs (per request: x-mock-* headers, body 'mock', model@k=v)")
    knobs.add_argument("--tokens", type=_non_negative(int), help="output tokens per reply (default: 16, max 100000)")
    knobs.add_argument("--ttft-ms", type=_non_negative(float), help="delay before the first byte (default: 0)")
    knobs.add_argument("--token-delay-ms", type=_non_negative(float), help="delay between streamed tokens (default: 0)")
    knobs.add_argument("--fail", choices=sorted(FAIL_MODES), help="failure to inject (default: none)")
    knobs.add_argument(
        "--fail-rate", type=_fraction, help="fraction of requests that get --fail, spread evenly (default: 1)"
    )


def knobs_from_args(args: argparse.Namespace) -> Knobs:
    fail = getattr(args, "fail", None)
    return Knobs(
        tokens=getattr(args, "tokens", None),
        ttft_ms=getattr(args, "ttft_ms", None),
        token_delay_ms=getattr(args, "token_delay_ms", None),
        fail=fail,
        # A rate only means something together with a failure mode.
        fail_rate=getattr(args, "fail_rate", None) if fail is not None else None,
    )


def serve(host: str = "127.0.0.1", port: int = 9090, workers: int = 1, defaults: Knobs | None = None) -> None:
    """Serve the mock until SIGINT/SIGTERM (blocking).

    Granian workers are separate processes that build the app from :func:`router.mock.app.create_app`, so the
    process defaults travel to them as ``ROUTER_MOCK_*`` environment variables set here.
    """
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    os.environ.update(to_env(defaults or Knobs()))
    from_env(os.environ)  # a bad ROUTER_MOCK_* value fails here, not as a crash loop in every worker
    server = Server(
        APP_FACTORY,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=True,
        websockets=False,
        backlog=2048,
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=WORKERS_KILL_TIMEOUT,
        respawn_failed_workers=True,  # one dead worker must not take the mock (and a long test) down
    )
    url_host = f"[{host}]" if ":" in host else host
    server.on_startup(lambda: print(f"mock provider listening on http://{url_host}:{port}/v1", flush=True))
    stop_on_first_signal()
    server.serve()


def run(args: argparse.Namespace) -> None:
    """``router mock``: serve with the flags parsed by a parser that went through :func:`add_arguments`."""
    try:
        serve(host=args.host, port=args.port, workers=args.workers, defaults=knobs_from_args(args))
    except KnobError as exc:
        raise SystemExit(f"router mock: {exc}") from None
