"""python -m explorer.replicas [--replicas N] [--port 8080] [--work DIR]

A class at once: N Streamlit processes (one Python interpreter lock each) behind nginx on one
port. A new visitor goes to the replica with the fewest open connections and stays there (nginx sets a
cookie naming the replica that answered), websockets are upgraded, and when a replica dies nginx sends its visitors to
the others: their browser reconnects, and the URL (text, model, step) restores the same view.

Several hosts: start the replicas on each host with ``--address 0.0.0.0 --no-proxy`` and list
every host's replicas in one proxy's upstream (``--upstream host:port`` repeatable); see the
README's "A class at once". Needs Debian's nginx (``apt-get install -y nginx-light``); runs
without root (nginx keeps its pid, logs and temporary files under ``--work``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "explorer_replica"

NGINX_CONF = """# written by python -m explorer.replicas
{user}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    client_max_body_size 50m;  # audio uploads

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}
    # Sticky sessions without nginx-plus. A new visitor (no cookie) goes to the replica with the
    # fewest open connections: every open tab holds a websocket, so that is the least busy replica
    # (a random hash put 13 of 20 new visitors on one of two replicas). The replica that answered
    # becomes the visitor's cookie; the cookie picks that replica's own upstream, where the others
    # are backups, so a dead replica's visitors move on and their cookie follows.
    upstream explorer_new {{
        least_conn;
        zone explorer_new 64k;
{servers}
    }}
{pinned}
    map $cookie_{cookie} $explorer_pool {{
        default explorer_new;
{pools}
    }}
    # $upstream_addr lists every replica tried ("dead:port, live:port"): the last one answered.
    map $upstream_addr $replica_answered {{
        "~(?<last>[^ ,]+)$" $last;
        default "";
    }}
    map $replica_answered $replica_name {{
        default "";
{names}
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://$explorer_pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 1d;  # a websocket stays open for the whole visit
            proxy_buffering off;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
            add_header Set-Cookie "{cookie}=$replica_name; Path=/; SameSite=Lax" always;
            add_header X-Explorer-Replica $replica_answered always;  # which replica answered (tests, benchmarks)
        }}
    }}
}}
"""


def replica_name(index: int) -> str:
    """The cookie's value for the replica at ``index`` of the upstream list (r1, r2, ...)."""
    return f"r{index + 1}"


def nginx_conf(work: Path, listen: str, upstreams: list[str]) -> str:
    """The proxy's configuration: ``upstreams`` are host:port of every replica (any host)."""
    def server(address: str, backup: bool = False) -> str:
        return f"        server {address} max_fails=1 fail_timeout=10s{' backup' if backup else ''};"

    pinned = "\n".join(
        f"    upstream explorer_{replica_name(i)} {{\n" + "\n".join(
            [server(address)] + [server(other, backup=True) for other in upstreams if other != address]
        ) + "\n    }"
        for i, address in enumerate(upstreams)
    )  # fmt: skip
    return NGINX_CONF.format(
        user=f"user {getpass.getuser()};\n" if os.geteuid() == 0 else "",  # as root, workers keep our files
        work=work,
        cookie=COOKIE,
        listen=listen,
        servers="\n".join(server(u) for u in upstreams),
        pinned=pinned,
        pools="\n".join(f"        {replica_name(i)} explorer_{replica_name(i)};" for i in range(len(upstreams))),
        names="\n".join(f'        "{u}" {replica_name(i)};' for i, u in enumerate(upstreams)),
    )


def find_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("nginx is not installed: apt-get install -y nginx-light (Debian)")


def streamlit_command(port: int, address: str) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


@dataclass
class Replicas:
    """N replicas and their proxy, started together and stopped together."""

    count: int
    port: int
    work: Path
    address: str = "127.0.0.1"
    extra_upstreams: list[str] = field(default_factory=list)
    proxy: bool = True
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)  # replica port -> process
    nginx: subprocess.Popen | None = None

    @property
    def replica_ports(self) -> list[int]:
        return [self.port + 1 + i for i in range(self.count)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        for port in self.replica_ports:
            self.start_replica(port)
        if self.proxy:
            self.start_proxy()

    def start_replica(self, port: int) -> None:
        log = open(self.work / f"replica-{port}.log", "a")
        self.processes[port] = subprocess.Popen(
            streamlit_command(port, self.address), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **self.thread_env()},
        )  # fmt: skip

    def thread_env(self) -> dict[str, str]:
        """torch's threads per replica: the cores shared out (N replicas with all cores each would
        oversubscribe them); an OMP_NUM_THREADS already set wins."""
        if "OMP_NUM_THREADS" in os.environ:
            return {}
        return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // self.count))}

    def start_proxy(self) -> None:
        (self.work / "tmp").mkdir(exist_ok=True)
        upstreams = [f"127.0.0.1:{p}" for p in self.replica_ports] + self.extra_upstreams
        conf = self.work / "nginx.conf"
        conf.write_text(nginx_conf(self.work, f"{self.port}", upstreams))
        nginx = find_nginx()
        # -e: the error log from the first line on (not Debian's /var/log/nginx, which needs root)
        self.nginx = subprocess.Popen(
            [nginx, "-e", str(self.work / "error.log"), "-p", str(self.work), "-c", str(conf), "-g", "daemon off;"],
            stdout=open(self.work / "nginx.out", "a"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds until every replica, and the proxy, answer /_stcore/health."""
        started = time.perf_counter()
        urls = [f"http://127.0.0.1:{p}/_stcore/health" for p in self.processes]
        urls += [f"{self.url}/_stcore/health"] if self.proxy else []
        for url in urls:
            while True:
                try:
                    if urllib.request.urlopen(url, timeout=2).read() == b"ok":
                        break
                except OSError:
                    pass
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s (logs in {self.work})")
                time.sleep(0.2)
        return time.perf_counter() - started

    def kill_replica(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=20)

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=2, help="Streamlit processes on this host (default 2)")
    parser.add_argument("--port", type=int, default=8080, help="the proxy's port; replicas use the ports after it")
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "replicas", help="nginx config, pid and logs")
    parser.add_argument(
        "--address", default="127.0.0.1", help="replicas listen here (0.0.0.0 when another host's proxy reaches them)"
    )
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        help="host:port of another host's replica, added to this proxy (repeatable)",
    )
    parser.add_argument("--no-proxy", action="store_true", help="start the replicas only (another host proxies)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    replicas = Replicas(args.replicas, args.port, args.work.resolve(), args.address, args.upstream, not args.no_proxy)
    replicas.start()
    try:
        seconds = replicas.wait_healthy()
        where = replicas.url if replicas.proxy else ", ".join(f"{args.address}:{p}" for p in replicas.replica_ports)
        print(f"{args.replicas} replica(s) ready in {seconds:.1f} s: open {where} (Ctrl-C stops them)", flush=True)
        while all(p.poll() is None for p in replicas.processes.values()):
            time.sleep(1)
        print("a replica stopped; see its log in", args.work)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        replicas.stop()


if __name__ == "__main__":
    sys.exit(main())
