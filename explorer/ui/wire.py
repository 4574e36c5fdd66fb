"""A browser tab spoken at the protocol level: what a class's browsers send a Streamlit server, without the browsers.

The load test of a voting class (issue 24: 40 students through nginx, ``benchmarks/classload.py``) needs 40 tabs
that click; 40 headless Chromiums would need more than two cores to paint, and the server would not see a
difference. A ``Tab`` does what the browser's Streamlit client does on the wire:

- opens ``/_stcore/stream`` (with the proxy's cookies, as a browser sends them back) and asks for a run of the
  page with the link's query string;
- keeps the widgets the server draws (their ids, by label) and the link the app writes (``page_info_changed``);
- a click is one ``rerun_script`` carrying the widget values and the button's trigger (in the widget's fragment,
  as the browser sends it);
- honours ``auto_rerun``: every fragment that asks to run every N seconds is asked for again every N seconds
  (``st.fragment(run_every=...)``: the teacher's live histogram and each student's screen), so the server does
  the work a class's open tabs make it do;
- reloading is a new tab on the link the app last wrote.

Every text the server sends (markdown, alerts, captions) arrives in ``texts`` with its arrival time, which is
what the load test reads (``wait_for_text``). One event loop drives every tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!:|<>'\"$~?])")
TEXT_ELEMENTS = {"markdown": "body", "alert": "body", "heading": "body", "code": "code_text"}
WIDGETS = ("button", "radio", "text_input", "number_input")


class TabClosed(ConnectionError):
    """The server (or the proxy in front of it) closed this tab's websocket."""


@dataclass
class Widget:
    kind: str  # an element type of WIDGETS
    id: str
    fragment_id: str  # "" outside a fragment


@dataclass
class Tab:
    """One browser tab on ``page`` of the app at ``base`` (``http://host:port``); ``query`` is the link's."""

    base: str
    page: str
    query: str = ""
    cookies: dict[str, str] = field(default_factory=dict)  # what the proxy set (its replica cookie), sent back
    widgets: dict[str, Widget] = field(default_factory=dict)  # by label, the latest drawing
    values: dict[str, WidgetState] = field(default_factory=dict)  # by widget id: what the user set
    texts: list[tuple[float, str]] = field(default_factory=list)  # (perf_counter, text) as they arrived
    errors: list[str] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_runs: int = 0
    _ws: object = None
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _timers: dict[str, asyncio.Task] = field(default_factory=dict)  # fragment id -> its auto-rerun loop

    async def open(self, timeout: float = 60.0) -> None:
        """Connect and ask for the page's first run (does not wait for it)."""
        url = urllib.parse.urlparse(self.base)
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self._ws = await connect(
            f"ws://{url.netloc}/_stcore/stream", subprotocols=["streamlit"], max_size=None, open_timeout=timeout,
            additional_headers={"Cookie": cookie} if cookie else None, close_timeout=2,
        )  # fmt: skip
        for header in self._ws.response.headers.get_all("Set-Cookie"):
            jar = SimpleCookie()
            jar.load(header)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        self._tasks.append(asyncio.create_task(self._read()))
        await self._send()

    async def close(self) -> None:
        for task in [*self._timers.values(), *self._tasks]:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        self.closed.set()

    async def reload(self) -> None:
        """Close and open again on the link this tab shows now, with its cookies: a reload, or a browser's
        reconnection after its replica died (the old session is gone; the link restores the rest)."""
        await self.close()
        self.widgets, self.values, self.texts, self.errors = {}, {}, [], []
        self.closed, self._tasks, self._timers, self._ws = asyncio.Event(), [], {}, None
        await self.open()

    async def click(self, label: str, values: dict[str, object] | None = None) -> float:
        """Set widgets by label (``{"Your answer": "B"}``: a radio's option, a text box's text, a number) and
        click the button ``label``; -> when the click was sent (perf_counter)."""
        for widget_label, value in (values or {}).items():
            self.set(widget_label, value)
        button = self.widgets[label]
        trigger = WidgetState(id=button.id, trigger_value=True)
        sent = time.perf_counter()
        await self._send([trigger], button.fragment_id)
        return sent

    def set(self, label: str, value) -> None:
        widget = self.widgets[label]
        if widget.kind in ("radio", "text_input"):
            self.values[widget.id] = WidgetState(id=widget.id, string_value=str(value))
        elif widget.kind == "number_input":
            self.values[widget.id] = WidgetState(id=widget.id, double_value=float(value))
        else:
            raise ValueError(f"{label} is a {widget.kind}, not a widget with a value")

    async def wait_for_widget(self, label: str, timeout: float) -> Widget:
        await self.wait_until(lambda: label in self.widgets, timeout, f"a widget {label!r}")
        return self.widgets[label]

    async def wait_for_text(self, found: Callable[[str], bool], timeout: float, since: int = 0) -> tuple[float, str]:
        """The first text from index ``since`` on that ``found`` accepts: (arrival time, text)."""
        hit: list[tuple[float, str]] = []

        def seen() -> bool:
            hit[:] = [t for t in self.texts[since:] if found(t[1])][:1]
            return bool(hit)

        await self.wait_until(seen, timeout, "a text")
        return hit[0]

    async def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``condition()`` holds; TabClosed if the tab closes first, TimeoutError after ``timeout``."""
        deadline = time.perf_counter() + timeout
        while not condition():
            if self.closed.is_set():
                raise TabClosed(f"the tab closed while waiting for {what}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what} on {self.page}?{self.query}")
            await asyncio.sleep(0.02)

    async def _send(self, triggers: list[WidgetState] = (), fragment_id: str = "", auto: bool = False) -> None:
        request = BackMsg()
        state = request.rerun_script
        state.query_string, state.page_name = self.query, self.page
        state.widget_states.widgets.extend([*self.values.values(), *triggers])
        if fragment_id:
            state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        try:
            await self._ws.send(request.SerializeToString())
        except Exception as gone:  # a closed socket: the reader saw it too
            self.closed.set()
            raise TabClosed(str(gone)) from gone

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self._take(raw)
        except Exception:  # the connection dropped (a killed replica): the tab is closed, as a browser's is
            pass
        finally:
            for task in self._timers.values():
                task.cancel()
            self.closed.set()

    def _take(self, raw: bytes) -> None:
        message = ForwardMsg()
        message.ParseFromString(raw)
        kind = message.WhichOneof("type")
        if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            self._element(message.delta.new_element, message.delta.fragment_id)
        elif kind == "page_info_changed":
            self.query = message.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._every(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "script_finished":
            self.finished_runs += 1

    def _element(self, element, fragment_id: str) -> None:
        kind = element.WhichOneof("type")
        if kind in WIDGETS:
            widget = getattr(element, kind)
            self.widgets[widget.label] = Widget(kind, widget.id, fragment_id)
        elif kind in TEXT_ELEMENTS:  # as read on screen: the app escapes Markdown's characters in what it quotes
            text = MARKDOWN_ESCAPE.sub(r"\1", getattr(getattr(element, kind), TEXT_ELEMENTS[kind]))
            self.texts.append((time.perf_counter(), text))
        elif kind == "exception":
            self.errors.append(element.exception.message[:200])

    def _every(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self._timers:
            self._timers[fragment_id].cancel()

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._send(fragment_id=fragment_id, auto=True)

        self._timers[fragment_id] = asyncio.create_task(loop())
