"""The live console of `dialogue serve`: the report's page, read afresh from the tables on every
request, and `/why?customer=ID` for one customer. Standard library HTTP server, local use only
(it binds 127.0.0.1 and has no authentication)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

from dialogue.engine.catalog import Catalog
from dialogue.engine.explain import explain
from dialogue.local import insight, report
from dialogue.local.why import format_explanation, subject_of

REFRESH = '<meta http-equiv="refresh" content="30">'
WHY = ('<form action="/why" method="get">Why, for one customer: <input name="customer" '
       'placeholder="customer id"> <button>explain</button></form>')


class LiveReport:
    """The report page, read again in the background every `every` seconds: reading every
    counter and segment shard takes seconds, a page request must not wait for it."""

    def __init__(self, ddb: Callable[[], Any], ref: insight.StackRef, catalog: Catalog,
                 every: float = 10.0):
        self.ddb, self.ref, self.catalog, self.every = ddb, ref, catalog, every
        self.html: str | None = None
        self.ready, self.stopped = threading.Event(), threading.Event()

    def read(self) -> str:
        today = datetime.now(ZoneInfo(self.ref.time_zone)).date()
        html = report.render(report.collect(self.ddb(), self.ref, self.catalog, today, days=14))
        return html.replace("<head>", "<head>" + REFRESH, 1).replace("</h1>", "</h1>" + WHY, 1)

    def run(self) -> None:
        while not self.stopped.is_set():
            self.html = self.read()
            self.ready.set()
            self.stopped.wait(self.every)

    def page(self) -> str:
        self.ready.wait()
        return self.html or ""


def pages(live: LiveReport, path: str) -> tuple[int, str]:
    """(HTTP status, HTML) for one request path."""
    ddb, ref, catalog = live.ddb, live.ref, live.catalog
    url = urlparse(path)
    if url.path == "/":
        return 200, live.page()
    if url.path == "/why":
        customer = (parse_qs(url.query).get("customer") or [""])[0]
        if not customer:
            return 400, "<p>/why?customer=ID</p>"
        client = ddb()
        state = insight.customer_state(client, ref, subject_of(customer))
        if state is None:
            return 404, f"<p>no customer {escape(customer)}</p>"
        messages = insight.customer_messages(client, ref, state,
                                             list(catalog.activities.values()))
        text = "\n\n".join(format_explanation(explain(state, a, datetime.now(UTC),
                                                      messages.get(a.id)))
                           for a in sorted(catalog.activities.values(), key=lambda a: a.id))
        return 200, ("<!doctype html><meta charset='utf-8'><link rel='icon' href='data:,'>"
                     f"<title>why {escape(customer)}"
                     f"</title><h1>Why: {escape(state.subject)}</h1><pre>{escape(text)}</pre>")
    return 404, "<p>not found</p>"


def start(ddb: Callable[[], Any], ref: insight.StackRef, catalog: Catalog,
          port: int) -> ThreadingHTTPServer:
    """Serve in a daemon thread; `server.server_address[1]` is the port (0: any free one)."""
    live = LiveReport(ddb, ref, catalog)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status, html = pages(live, self.path)
            body = html.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the serve loop prints what happens; requests are not news

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError:  # the port is taken (another serve): any free one, printed by the caller
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=live.run, daemon=True).start()
    return server
