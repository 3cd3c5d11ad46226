"""python -m tests.fakes --provider groq --port 8101 [--host 127.0.0.1]"""

from __future__ import annotations

import argparse

import uvicorn

from . import PROVIDERS
from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description="Run a fake cloud provider.")
    parser.add_argument("--provider", required=True, choices=PROVIDERS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    # A short graceful-shutdown timeout: held (`hang`) requests must not keep the process alive on SIGTERM.
    uvicorn.run(
        create_app(args.provider),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
