"""Two replicas behind nginx (python -m explorer.replicas): a visitor stays on one replica, and
when that replica is killed the visitor moves to the other with the view restored from the URL; the
command starts a killed replica again while nginx serves its visitors from the other. Which replica
answered is the cookie nginx sets (explorer_replica=rN), never an address."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from replica_helpers import get, wait_for

from explorer.replicas import COOKIE, Backoff, Replicas, nginx_conf, replica_name
from explorer.ui.served import REPLICA_COOKIE, free_ports, run_page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TEXT = "Replicas keep this sentence."

if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's nginx for the replica test (apt-get install -y nginx-light)")
    pytest.skip("nginx is not installed (apt-get install -y nginx-light)", allow_module_level=True)


def test_the_proxy_config_upgrades_websockets_and_pins_a_cookie_to_a_replica(tmp_path):
    conf = nginx_conf(tmp_path, "8080", ["127.0.0.1:8081", "10.0.0.2:8081"])
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "least_conn;" in conf and f"map $cookie_{COOKIE} $explorer_pool" in conf
    assert "server 10.0.0.2:8081" in conf  # another host's replica is one more upstream
    assert (
        "upstream explorer_r2 {\n        server 10.0.0.2:8081 max_fails=1 fail_timeout=10s;\n"
        "        server 127.0.0.1:8081 max_fails=1 fail_timeout=10s backup;" in conf
    )
    assert "X-Explorer-Replica" not in conf  # the cookie names the replica; its address stays inside


def test_a_process_that_keeps_dying_waits_longer_each_time_and_1_s_again_once_it_stayed_up():
    backoff = Backoff()
    assert [backoff.after(uptime=2.0) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.after(uptime=120.0) == 1 and backoff.after(uptime=2.0) == 2


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    work = tmp_path_factory.mktemp("replicas")
    port = free_ports(3)
    group = Replicas(2, port, work)
    try:
        group.start()
        group.wait_healthy()
        yield group
    finally:
        group.stop()


def new_visitors(replicas: Replicas, count: int) -> list[str]:
    """The replicas that ``count`` new visitors (no cookie) land on, all connected at once."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run_page(replicas.port, "", hold=1.0).replica, range(count)))


def test_new_visitors_are_shared_out_evenly(replicas):
    landed = Counter(new_visitors(replicas, 8))
    assert sorted(landed) == [replica_name(0), replica_name(1)]
    assert set(landed.values()) == {4}, landed


def test_sessions_stay_on_their_replica_and_move_when_it_dies(replicas):
    first, second = replica_name(0), replica_name(1)
    to_first, to_second = f"{COOKIE}={first}", f"{COOKIE}={second}"
    query = {"text": TEXT}
    for _ in range(3):  # the same visitor, again and again: the same replica
        assert run_page(replicas.port, "moe", query, cookie=to_first).replica == first
        assert run_page(replicas.port, "moe", query, cookie=to_second).replica == second
    replicas.kill_replica(replicas.replica_ports[0])
    moved = run_page(replicas.port, "moe", query, cookie=to_first)
    assert moved.replica == second and not moved.errors and moved.figures >= 1
    assert not any(h.lower() == "x-explorer-replica" for h in moved.headers)
    assert run_page(replicas.port, "moe", query, cookie=to_second).replica == second


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_a_browser_reloads_onto_the_other_replica_with_the_same_view(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    work = tmp_path_factory.mktemp("replicas-browser")
    group = Replicas(2, free_ports(3), work)
    group.start()
    try:
        group.wait_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            page.goto(f"{group.url}/moe?text={TEXT.replace(' ', '+')}")
            page.wait_for_selector(".js-plotly-plot", timeout=240_000)
            served_by = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
            assert run_page(group.port, "", cookie=f"{COOKIE}={served_by}").replica == served_by
            group.kill_replica(group.replica_ports[int(served_by.removeprefix("r")) - 1])
            page.reload()
            page.wait_for_selector(".js-plotly-plot", timeout=240_000)
            assert page.locator("textarea").first.input_value() == TEXT
            assert page.locator("[data-testid='stException']").count() == 0
            survivor = run_page(group.port, "", cookie=f"{COOKIE}={served_by}").replica
            assert survivor and survivor != served_by
            assert next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE) == survivor
            browser.close()
    finally:
        group.stop()


def gone(pid: int) -> bool:
    """No process left in the process group ``pid`` leads (nginx's master leads its workers; each
    replica leads its own)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_command_starts_a_killed_replica_again_while_nginx_serves_its_visitors(tmp_path):
    port, work = free_ports(3), tmp_path / "work"
    proxy, state_file = f"http://127.0.0.1:{port}", work / "replicas.json"
    victim = port + 1  # r1
    with open(tmp_path / "command.log", "w") as out:
        command = subprocess.Popen(
            [sys.executable, "-m", "explorer.replicas", "--replicas", "2", "--port", str(port), "--work", str(work)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: get(f"{proxy}/_stcore/health").status == 200, 90, "the proxy serving")
        first = json.loads(state_file.read_text())
        # Four visitors (plain HTTP, as a browser's first request): their cookies pin them to r1 and r2
        answers = [get(f"{proxy}/") for _ in range(4)]
        assert all(a.status == 200 for a in answers), answers
        assert not any(h.lower() == "x-explorer-replica" for a in answers for h in a.headers)
        cookies = [f"{COOKIE}={a.replica}" for a in answers]
        assert sorted(set(cookies)) == [f"{COOKIE}=r1", f"{COOKIE}=r2"], cookies

        os.kill(first["replicas"][str(victim)], signal.SIGKILL)
        killed = time.monotonic()
        served, failed, answered_by = 0, [], Counter()
        while get(f"http://127.0.0.1:{victim}/_stcore/health", timeout=1).status != 200:  # the outage
            assert time.monotonic() - killed < 45, "the killed replica did not answer again within 45 s"
            for i, cookie in enumerate(cookies + [None]):  # the visitors, and one new visitor each round
                answer = get(f"{proxy}/_stcore/health", cookie)
                if answer.status != 200:
                    failed.append(answer)
                    continue
                served += 1
                answered_by[(cookie, answer.replica)] += 1
                if cookie is not None:
                    cookies[i] = f"{COOKIE}={answer.replica}"  # a browser keeps the cookie nginx sets
            time.sleep(0.05)
        back = time.monotonic() - killed
        assert not failed, failed
        assert served >= 5 and answered_by[(f"{COOKIE}=r1", "r2")] >= 1, answered_by  # r1's visitors went to r2
        state = json.loads(state_file.read_text())
        new_pid = state["replicas"][str(victim)]
        assert new_pid not in (None, first["replicas"][str(victim)]) and Path(f"/proc/{new_pid}").exists()
        assert state["nginx"] == first["nginx"] and state["replicas"][str(port + 2)] == first["replicas"][str(port + 2)]
        # r1 serves its cookie again once nginx retries it (fail_timeout 10 s)
        pinned = wait_for(lambda: get(f"{proxy}/_stcore/health", f"{COOKIE}=r1").replica == "r1", 20, "r1 serving")
        print(f"\nr1 answered again {back:.1f} s after SIGKILL ({served} requests through nginx served meanwhile, none"
              f" failed); nginx sent r1's cookie to it again {pinned:.1f} s later")  # fmt: skip
    finally:
        command.send_signal(signal.SIGTERM)
        try:
            returncode = command.wait(timeout=40)
        except subprocess.TimeoutExpired:
            command.kill()
            raise
    log = (tmp_path / "command.log").read_text()
    assert returncode == 0, log
    assert f"replica {victim} (pid {first['replicas'][str(victim)]}) was killed by SIGKILL" in log, log
    assert f"replica {victim} started again (pid {new_pid})" in log, log
    for pid in [state["nginx"], *state["replicas"].values()]:
        assert gone(pid), pid
    assert get(f"{proxy}/_stcore/health", timeout=1).status == 0 and not state_file.exists()


def test_the_clients_cookie_name_is_the_proxys():
    assert REPLICA_COOKIE == COOKIE
