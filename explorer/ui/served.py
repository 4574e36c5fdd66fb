"""The app as `streamlit run app.py` serves it, and a minimal client of its websocket.

Used by the benchmarks (``python -m benchmarks``) and the real-browser tests. It lives in
the UI package because the client speaks Streamlit's own protocol (its protobufs).

One client session runs one page and reports what it cost.

The browser's part of the protocol is small: open ``/_stcore/stream``, send one
``BackMsg.rerun_script`` carrying the page name and query string (our pages restore their
text from ``?text=``), then read ``ForwardMsg``s until ``script_finished``. Timing that
round trip measures the server side of an interaction (script run, model, figures,
serialisation) without a browser's rendering on the same two cores; the bytes read are
exactly what a browser would download for that view.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPLICA_COOKIE = "explorer_replica"  # set by explorer.replicas' nginx (COOKIE there)


@dataclass
class PageRun:
    seconds: float
    bytes_received: int
    figure_bytes: int  # the Plotly figure specs among them
    figures: int
    errors: list[str] = field(default_factory=list)
    replica: str = ""  # behind explorer.replicas' proxy: the replica that answered (r1, r2…, from its cookie)
    headers: dict[str, str] = field(default_factory=dict)  # the websocket handshake's response headers
    first_paint: float | None = None  # seconds until the page's title reached the client


def run_page(
    port: int,
    page: str,
    query: dict[str, str] | None = None,
    timeout: float = 300.0,
    cookie: str | None = None,
    hold: float = 0.0,
) -> PageRun:
    """Open a fresh session on ``page`` (its URL path, '' for home) and wait for the run to finish.
    ``cookie``: sent with the websocket's handshake (a proxy's sticky-session cookie); ``hold``:
    seconds the session stays connected after its run, as an open tab does."""
    # Here, not at the top: only the benchmarks and browser tests open sessions; the app never loads a client.
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websockets.sync.client import connect

    request = BackMsg()
    request.rerun_script.query_string = urllib.parse.urlencode(query or {})
    request.rerun_script.page_name = page
    headers = {"Cookie": cookie} if cookie else None
    with connect(
        f"ws://127.0.0.1:{port}/_stcore/stream",
        subprotocols=["streamlit"],
        max_size=None,
        open_timeout=timeout,
        close_timeout=5,
        additional_headers=headers,
    ) as ws:
        run = PageRun(
            0.0, 0, 0, 0, [], replica_in(ws.response.headers.get_all("Set-Cookie")), dict(ws.response.headers)
        )
        start = time.perf_counter()
        ws.send(request.SerializeToString())
        _read_until_finished(ws, run, timeout, start)
        run.seconds = time.perf_counter() - start
        time.sleep(hold)
        return run


def _read_until_finished(ws, run: PageRun, timeout: float, start: float) -> None:
    """Count what the server sends into ``run`` until the script run ends (not one ended for a rerun)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    while True:
        raw = ws.recv(timeout=timeout)
        run.bytes_received += len(raw)
        message = ForwardMsg()
        message.ParseFromString(raw)
        kind = message.WhichOneof("type")
        if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            element_kind = element.WhichOneof("type")
            if run.first_paint is None and element_kind == "heading":
                run.first_paint = time.perf_counter() - start
            if element_kind == "plotly_chart":
                run.figures += 1
                run.figure_bytes += len(element.plotly_chart.spec)
            elif element_kind == "exception":
                run.errors.append(element.exception.message[:200])
            elif element_kind == "alert" and element.alert.format == element.alert.ERROR:
                run.errors.append(element.alert.body[:200])
        elif kind == "script_finished" and message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            return  # (a run that ended early for a rerun: the interaction ends with the next run)


def replica_in(set_cookies: list[str]) -> str:
    """The replica (r1, r2, ...) that nginx's Set-Cookie headers name; '' when none does."""
    for header in set_cookies:
        cookie = SimpleCookie()
        cookie.load(header)
        if REPLICA_COOKIE in cookie:
            return cookie[REPLICA_COOKIE].value
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> int:
    """A port such that it and the ``count - 1`` ports after it are free now (the proxy's port and its
    replicas' ports)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base + 1, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} free ports in a row")


def peak_rss_bytes(pid: int) -> int:
    """A process's high-water resident memory (VmHWM, Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not available on this system")


class Server:
    """``streamlit run app.py`` on a free port, as README command 1 starts it."""

    def __init__(self, log_path: Path):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = open(log_path, "w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Seconds from process start until /_stcore/health answers."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s")

    def peak_rss_bytes(self) -> int:
        """The server process's high-water resident memory (VmHWM, Linux)."""
        return peak_rss_bytes(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def step_click_seconds(clicks: int = 10, warmup: int = 2) -> tuple[list[float], list[int]]:
    """Server time of a Step click on the decoder page at its default prompt, through Streamlit's
    AppTest (the whole script run the click causes: the new token's forward, every figure, the
    export's preparation; no browser rendering): a list of seconds per click, and the context
    length [tokens] each click's forward read."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string("from explorer.ui import decoder_page\ndecoder_page.render()\n", default_timeout=300)
    at.run()
    seconds, contexts = [], []
    for i in range(warmup + clicks):
        started = time.perf_counter()
        at.button(key="decoder_step").click().run()
        if at.exception:
            raise RuntimeError(f"the Step click failed: {at.exception[0].value}")
        if i >= warmup:
            seconds.append(time.perf_counter() - started)
            contexts.append(len(at.session_state["decoder_generated"]) - 1)
    return seconds, contexts
