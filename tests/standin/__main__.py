"""Command line: `python -m tests.standin --port 8010` runs the stand-in standalone."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from .app import create_app
from .state import DEFAULT_MEDIA_SIZE, StandinState


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--media-bytes", type=int, default=None)
    parser.add_argument("--account", default=None, help="account SID to seed (AC…)")
    parser.add_argument("--token", default=None, help="auth token for --account")
    parser.add_argument("--public-base-url", default=None)
    return parser.parse_args(argv)


def build_state(args: argparse.Namespace) -> StandinState:
    # Through the constructor so /_standin/reset returns to what the command line asked for.
    state = StandinState(
        media_size=DEFAULT_MEDIA_SIZE if args.media_bytes is None else args.media_bytes,
        latency_s=args.latency_ms / 1000.0, public_base_url=args.public_base_url,
    )
    state.add_account(args.account, args.token)
    return state


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    state = build_state(args)
    account = state.default_account()
    print(f"http://{args.host}:{args.port}", flush=True)
    print(f"account {account.sid} token {account.auth_token}", flush=True)
    uvicorn.run(create_app(state), host=args.host, port=args.port, lifespan="off",
                log_level="warning", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
