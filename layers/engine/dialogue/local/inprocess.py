"""The embedded AWS's requests from this process served in this process: no socket, no HTTP
server, no thread hop.

A request that a botocore client of this process sends to the embedded moto server's address is
answered on botocore's `before-send` event, as moto's own `mock_aws` answers it (its
`BotocoreStubber`): the request becomes moto's `Request` (`normalize_request`), the server's
routing picks the backend (from the signature's service, the `X-Amz-Target`, the path) and the
URL rule, and the same handler runs on the same backends. Only the transport is skipped: the
runtime's clients, the functions' clients (they follow AWS_ENDPOINT_URL) and moto's Step
Functions' Lambda calls. The server keeps serving everything from outside the process
(`dialogue serve`, the browser, the CLI's `--endpoint`).

`DIALOGUE_LOCAL_TRANSPORT=http` (or `LocalAws(transport="http")`) sends everything over HTTP
as before: the same run either way (tests/e2e/test_inprocess.py compares them).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any
from urllib.parse import urlsplit

LOG = logging.getLogger("embedded_aws")  # as the server's errors: stderr, not the functions' stdout
TRANSPORTS = ("inprocess", "http")


def transport(chosen: str | None = None) -> str:
    """The transport asked for: the argument, else DIALOGUE_LOCAL_TRANSPORT, else in-process."""
    value = chosen or os.environ.get("DIALOGUE_LOCAL_TRANSPORT") or "inprocess"
    if value not in TRANSPORTS:
        raise ValueError(f"DIALOGUE_LOCAL_TRANSPORT: {value!r} is not one of {TRANSPORTS}")
    return value


class InProcess:
    """The `before-send` handler: answers requests to the registered server addresses, lets
    every other request go (None: botocore sends it)."""

    def __init__(self) -> None:
        self.netlocs: set[str] = set()
        self.served = 0  # requests answered here (tests check the path was taken)
        self._lock = threading.Lock()
        self._dispatcher: Any = None
        self._backends: dict[str, str] = {}  # routing host → moto backend name
        self._rules: dict[str, Any] = {}  # backend → (url map, view functions)

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        if not self.netlocs:
            return None
        parts = urlsplit(request.url)
        if parts.netloc not in self.netlocs or parts.path.startswith("/moto-api"):
            return None
        return self._serve(request)

    def _serve(self, prepared: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse
        from moto.core.request import normalize_request
        from moto.moto_api import recorder
        from werkzeug.exceptions import HTTPException

        request = normalize_request(prepared)
        try:
            recorder._record_request(request)
            handler = self._handler(request)
            status, headers, body = handler(request, request.raw_url, dict(request.headers))
        except HTTPException as error:  # moto's service errors (as its stubber answers them)
            status, headers, body = error.code or 500, error.get_headers(), error.get_body()
        except Exception as error:  # noqa: BLE001 - the server's answer: a 500 (botocore retries)
            from botocore.exceptions import ClientError

            if isinstance(error, ClientError):  # as moto's server answers it
                status, headers, body = 400, {}, error.response["Error"]["Message"]
            else:
                LOG.exception("the embedded AWS failed on %s %s", request.method, request.path)
                status, headers, body = 500, {}, "Internal Server Error"
        self.served += 1
        return AWSResponse(prepared.url, status, dict(headers), MockRawResponse(body))

    def _handler(self, request: Any) -> Any:
        """The moto handler the server would call: its backend as the server infers it, then
        the backend's URL rule for the path (moto's own rules, as its server's Flask app)."""
        backend = self._backend(request.environ, request.path)
        url_map, views = self._rules_of(backend)
        endpoint, _ = url_map.bind("localhost").match(request.path, method=request.method)
        return views[endpoint].callback

    def _backend(self, environ: dict[str, Any], path: str) -> str:
        from moto.moto_server.werkzeug_app import DEFAULT_SERVICE_REGION

        dispatcher = self._routing()
        host = dispatcher.infer_service_region_host(environ, path)
        if host is None:
            service, region = DEFAULT_SERVICE_REGION
            host = f"{service}.{region}.amazonaws.com"
        if host not in self._backends:  # moto lists its package folders on each lookup
            with self._lock:
                self._backends[host] = dispatcher.get_backend_for_host(host)
        return self._backends[host]

    def _routing(self) -> Any:
        if self._dispatcher is None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                create_backend_app,
            )

            self._dispatcher = DomainDispatcherApplication(create_backend_app)
        return self._dispatcher

    def _rules_of(self, backend: str) -> Any:
        if backend not in self._rules:
            with self._lock:
                app = self._routing().create_app(backend)
                self._rules[backend] = (app.url_map, app.view_functions)
        return self._rules[backend]


HANDLER = InProcess()


def install() -> None:
    """Every botocore session made from now on calls HANDLER before sending (moto's own way of
    mocking: a built-in handler). boto3's default session is dropped so that it is made again
    with it; clients made before still go over HTTP, to the same server. Idempotent."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    if ("before-send", HANDLER) not in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.append(("before-send", HANDLER))
        boto3.DEFAULT_SESSION = None


def serve(port: int) -> None:
    """Answer in-process what this process sends to the server on `port` (moto's Step
    Functions call it as localhost)."""
    install()
    HANDLER.netlocs |= {f"127.0.0.1:{port}", f"localhost:{port}"}


def release(port: int) -> None:
    HANDLER.netlocs -= {f"127.0.0.1:{port}", f"localhost:{port}"}
