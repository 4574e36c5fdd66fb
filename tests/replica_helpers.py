"""Plain-HTTP client and waits for tests/test_replicas.py; which replica answered comes from the cookie
nginx sets (explorer_replica=rN), which names the replica without its address."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from explorer.ui.served import replica_in


@dataclass
class Answer:
    status: int  # 0: no HTTP answer at all (refused, reset, timed out)
    replica: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""


def get(url: str, cookie: str | None = None, timeout: float = 5.0) -> Answer:
    """One plain HTTP request (through the proxy: ``replica`` names who answered)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return Answer(response.status, replica_in(response.headers.get_all("Set-Cookie") or []),
                          dict(response.headers))  # fmt: skip
    except urllib.error.HTTPError as e:
        return Answer(e.code, replica_in(e.headers.get_all("Set-Cookie") or []), dict(e.headers), str(e))
    except OSError as e:
        return Answer(0, error=repr(e))


def wait_for(condition, timeout: float, what: str, every: float = 0.2) -> float:
    """Seconds until ``condition()`` is true; fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started
