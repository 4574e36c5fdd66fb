"""Two replicas behind nginx (python -m explorer.replicas): a visitor stays on one replica, and
when that replica is killed the visitor moves to the other with the view restored from the URL."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from explorer.replicas import COOKIE, Replicas, nginx_conf, replica_name
from explorer.ui.served import free_port, run_page

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
    assert "upstream explorer_r2 {\n        server 10.0.0.2:8081 max_fails=1 fail_timeout=10s;\n" \
           "        server 127.0.0.1:8081 max_fails=1 fail_timeout=10s backup;" in conf


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    work = tmp_path_factory.mktemp("replicas")
    port = free_port()
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
    assert sorted(landed) == [f"127.0.0.1:{p}" for p in replicas.replica_ports]
    assert set(landed.values()) == {4}, landed


def test_sessions_stay_on_their_replica_and_move_when_it_dies(replicas):
    first, second = (f"127.0.0.1:{p}" for p in replicas.replica_ports)
    to_first, to_second = f"{COOKIE}={replica_name(0)}", f"{COOKIE}={replica_name(1)}"
    query = {"text": TEXT}
    for _ in range(3):  # the same visitor, again and again: the same replica
        assert run_page(replicas.port, "moe", query, cookie=to_first).replica == first
        assert run_page(replicas.port, "moe", query, cookie=to_second).replica == second
    replicas.kill_replica(replicas.replica_ports[0])
    moved = run_page(replicas.port, "moe", query, cookie=to_first)
    assert moved.replica == second and not moved.errors and moved.figures >= 1
    assert run_page(replicas.port, "moe", query, cookie=to_second).replica == second


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_a_browser_reloads_onto_the_other_replica_with_the_same_view(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    work = tmp_path_factory.mktemp("replicas-browser")
    group = Replicas(2, free_port(), work)
    group.start()
    try:
        group.wait_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            page.goto(f"{group.url}/moe?text={TEXT.replace(' ', '+')}")
            page.wait_for_selector(".js-plotly-plot", timeout=240_000)
            served_by = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
            replica = run_page(group.port, "", cookie=f"{COOKIE}={served_by}").replica
            group.kill_replica(int(replica.rsplit(":", 1)[1]))
            page.reload()
            page.wait_for_selector(".js-plotly-plot", timeout=240_000)
            assert page.locator("textarea").first.input_value() == TEXT
            assert page.locator("[data-testid='stException']").count() == 0
            survivor = run_page(group.port, "", cookie=f"{COOKIE}={served_by}").replica
            assert survivor and survivor != replica
            browser.close()
    finally:
        group.stop()
