"""python -m local_servers.whisper [--host 127.0.0.1] [--port 4001]"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from local_servers.whisper.app import create_app
from local_servers.whisper.config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local_servers.whisper",
        description="OpenAI-compatible speech-to-text (faster-whisper). Settings: LOCAL_WHISPER_* variables.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4001)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every request at INFO
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid LOCAL_WHISPER_* settings:\n{exc}")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
