"""python -m local_servers.llama [--host 127.0.0.1] [--port 4002]"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from local_servers.llama.app import create_app
from local_servers.llama.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local_servers.llama", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4002)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # On SIGTERM, streams get 10 s to finish; then they are cancelled, which stops their inference.
    uvicorn.run(create_app(Settings()), host=args.host, port=args.port, log_level="info",
                timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
