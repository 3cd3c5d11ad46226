"""`python -m gateway serve` runs the gateway; `python -m gateway config check` validates the YAML."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from gateway.config import ConfigError, Flags, resolve
from gateway.settings import Settings, flags_path


def config_check(settings: Settings) -> int:
    """Resolve the YAML under the current flags (env + flags file) and print every chain."""
    from plugins.flags import FlagError, FlagStore

    resolved = resolve(settings)
    try:
        store = FlagStore(Flags.from_settings(settings), flags_path(), set(resolved.chains), lambda _: None)
    except FlagError as exc:
        raise ConfigError(str(exc)) from exc
    resolved = resolve(settings, store.current)
    print(f"{settings.config_path}: ok")
    print(resolved.describe())
    return 0


def serve(settings: Settings, workers: int) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.drain import DrainingServer

    if len(settings.master_key) < 16:
        print("LITELLM_MASTER_KEY must be set and at least 16 characters (make serve writes one into .env)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # LiteLLM logs every call at INFO through its own handlers: per-request cost we don't want.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger(name).propagate = False
    app = create_app(settings)
    # One worker on purpose: the Router's cooldowns and the flag state live in this process
    # (scale out with replicas sharing Redis instead, see docs/operations.md).
    config = uvicorn.Config(app, host=settings.gateway_host, port=settings.gateway_port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=settings.drain_timeout_s)
    DrainingServer(config, app.state.drain).run()  # SIGTERM: drain, then exit 0 (gateway/drain.py)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gateway")
    check = sub.add_parser("config", help="configuration tools")
    check.add_argument("action", choices=["check"])
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        if args.command == "config":
            return config_check(settings)
        return serve(settings, workers=1)
    except ValidationError as exc:
        for err in exc.errors():
            name = err["loc"][0] if err["loc"] else "?"
            print(f"config error: {name}: {err['msg']}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
