"""A fake Langfuse: a loopback HTTP server that keeps the OTLP trace exports LiteLLM's langfuse_otel sends."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


class FakeLangfuse:
    """`spans()` decodes what arrived at /api/public/otel/v1/traces: [{name, attributes}]."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                posts.append({"path": self.path, "authorization": self.headers.get("authorization"), "body": body})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[dict[str, Any]]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        out = []
        for post in list(self.posts):
            if not post["path"].endswith("/v1/traces"):
                continue
            request = ExportTraceServiceRequest()
            request.ParseFromString(post["body"])
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        out.append({"name": span.name, "attributes": {a.key: _value(a.value) for a in span.attributes},
                                    "authorization": post["authorization"]})
        return out

    @staticmethod
    def basic_auth(public: str, secret: str) -> str:
        return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
