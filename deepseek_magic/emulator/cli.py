"""Command line: ``python -m deepseek_magic.emulator`` / ``deepseek-magic emulator``.

Prints its base URL as the first stdout line (flushed, so a parent process can
read it), then serves until Ctrl-C or SIGTERM.  Defaults pace replies like the
real service (about 60 tokens/s after 0.6 s) so demos look realistic.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from deepseek_magic.emulator.app import create_app
from deepseek_magic.emulator.config import EmulatorConfig
from deepseek_magic.emulator.errors import mask_key
from deepseek_magic.emulator.faults import parse_fault
from deepseek_magic.emulator.server import LOOPBACK, bind_socket, make_server


def _fault(spec: str) -> str:
    try:
        parse_fault(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepseek-magic emulator",
        description="Serve a local DeepSeek API emulator (emulated replies, optional fault injection).",
    )
    parser.add_argument("--host", default=LOOPBACK, help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8123, help="port (0 picks a free one; default 8123)")
    parser.add_argument("--tps", type=float, default=60.0, help="tokens per second (0 = no pacing)")
    parser.add_argument("--ttft", type=float, default=0.6, help="seconds before the first token")
    parser.add_argument("--api-key", default="sk-emulator", help="accepted Bearer key ('' accepts any)")
    parser.add_argument(
        "--fault",
        action="extend",
        nargs="+",
        type=_fault,
        default=[],
        metavar="SPEC",
        help="scripted fault for the next chat request, e.g. status=503,retry_after=1 (repeatable)",
    )
    parser.add_argument("--max-concurrency", type=int, default=None, help="429 above this many chat requests")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until interrupted; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = EmulatorConfig(
            api_key=args.api_key or None,
            tps=args.tps,
            ttft=args.ttft,
            faults=list(args.fault),
            max_concurrency=args.max_concurrency,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(f"DeepSeek emulator (emulated replies) listening on http://{host}:{port}", flush=True)
    # The key is masked: a banner ends up in terminal scrollback, CI logs and screenshots.
    key = mask_key(args.api_key) if args.api_key else "any"
    print(
        f"  use: DEEPSEEK_BASE_URL=http://{host}:{port} DEEPSEEK_API_KEY=<the --api-key value, {key}>  (Ctrl-C stops)",
        flush=True,
    )
    print(
        f"  resellers: ANYFAST_BASE_URL=http://{host}:{port}/anyfast/v1, "
        f"EVOLINK_BASE_URL=http://{host}:{port}/evolink/v1, RUNWARE_BASE_URL=http://{host}:{port} "
        "(each with its own *_API_KEY)",
        flush=True,
    )
    if host != LOOPBACK:
        print(
            f"warning: listening on {host}, not only on this machine; anyone who can reach it can use it",
            file=sys.stderr,
        )
    server = make_server(create_app(config), log_level=args.log_level, configure_logging=True)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the signal that stopped it; make SIGTERM end as quietly as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
