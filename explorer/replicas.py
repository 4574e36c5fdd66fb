"""python -m explorer.replicas [--replicas N] [--port 8080] [--work DIR]

A class at once: N Streamlit processes (one Python interpreter lock each) behind nginx on one
port. A new visitor goes to the replica with the fewest open connections and stays there (nginx sets a
cookie naming the replica that answered), websockets are upgraded, and when a replica dies nginx sends its visitors to
the others: their browser reconnects, and the URL (text, model, step) restores the same view.

The command supervises them until SIGINT/SIGTERM: a replica (or nginx) that dies is logged with its
exit code or signal and started again after 1 s, 2, 4, ... up to 30 s while it keeps dying (1 s again
once it has stayed up a minute); meanwhile nginx serves its visitors from the other replicas. The
pids are in ``--work``/replicas.json while it runs.

Several hosts: start the replicas on each host with ``--address 0.0.0.0 --no-proxy`` and list
every host's replicas in one proxy's upstream (``--upstream host:port`` repeatable); see the
README's "A class at once". Needs Debian's nginx (``apt-get install -y nginx-light``); runs
without root (nginx keeps its pid, logs and temporary files under ``--work``).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "explorer_replica"
logger = logging.getLogger("explorer.replicas")  # __name__ is __main__ under -m

NGINX_CONF = """# written by python -m explorer.replicas
{user}worker_processes 1;
worker_shutdown_timeout 5s;  # stopping: open websockets close after 5 s instead of holding the old worker
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
            # the replica's name only (r1, r2, ...): its address stays inside
            add_header Set-Cookie "{cookie}=$replica_name; Path=/; SameSite=Lax" always;
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


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Streamlit health endpoint says ok now."""
    try:
        return urllib.request.urlopen(url, timeout=timeout).read() == b"ok"
    except (OSError, http.client.HTTPException):
        return False


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Backoff:
    """Seconds to wait before starting a dead process again: 1, 2, 4, 8, 16, then 30 s while it keeps
    dying soon after each start, and 1 s again once it has stayed up ``stable`` seconds."""

    first: float = 1.0
    most: float = 30.0
    stable: float = 60.0
    delay: float = 0.0  # the next wait; 0 until the first death

    def after(self, uptime: float) -> float:
        """The wait before starting again a process that died ``uptime`` seconds after its start."""
        if self.delay == 0.0 or uptime >= self.stable:
            self.delay = self.first
        wait = self.delay
        self.delay = min(self.delay * 2, self.most)
        return wait


@dataclass
class Watch:
    """What the supervisor knows of one process it keeps running (a replica, or nginx)."""

    started: float  # time.monotonic() of its last start
    backoff: Backoff = field(default_factory=Backoff)
    died: float | None = None  # its last death; None while it answers (replicas) or runs (nginx)
    due: float | None = None  # dead: when it starts again


@dataclass
class Replicas:
    """N replicas and their proxy, started together and stopped together; ``supervise`` keeps them
    running (a process that dies starts again, with backoff) until ``stopping`` is set."""

    count: int
    port: int
    work: Path
    address: str = "127.0.0.1"
    extra_upstreams: list[str] = field(default_factory=list)
    proxy: bool = True
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)  # replica port -> process
    nginx: subprocess.Popen | None = None
    watches: dict[int | str, Watch] = field(default_factory=dict)  # replica port, or "nginx" -> its watch
    stopping: bool = False

    @property
    def replica_ports(self) -> list[int]:
        return [self.port + 1 + i for i in range(self.count)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        """JSON, while the replicas run: the supervisor's, nginx's and each replica's pid (null while down)."""
        return self.work / "replicas.json"

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        for port in self.replica_ports:
            self.start_replica(port)
        if self.proxy:
            self.start_proxy()

    def start_replica(self, port: int) -> None:
        # Its own session: Ctrl-C in a terminal reaches the supervisor only, which stops everything in order.
        with open(self.work / f"replica-{port}.log", "a") as log:
            self.processes[port] = subprocess.Popen(
                streamlit_command(port, self.address), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **self.thread_env()},
                start_new_session=True,
            )  # fmt: skip
        self.started(port)

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
        # -e: the error log from the first line on (not Debian's /var/log/nginx, which needs root).
        # Its own session: its workers share its process group, so workers it leaves behind can be stopped.
        with open(self.work / "nginx.out", "a") as out:
            self.nginx = subprocess.Popen(
                [nginx, "-e", str(self.work / "error.log"), "-p", str(self.work), "-c", str(conf), "-g", "daemon off;"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started("nginx")

    def started(self, key: int | str) -> None:
        watch = self.watches.setdefault(key, Watch(time.monotonic()))
        watch.started, watch.due = time.monotonic(), None
        if key == "nginx":
            watch.died = None
        self.write_state()

    def write_state(self) -> None:
        def pid(key: int | str, process: subprocess.Popen | None) -> int | None:
            alive = process is not None and process.returncode is None and self.watches[key].due is None
            return process.pid if alive else None

        state = {
            "supervisor": os.getpid(),
            "url": self.url if self.proxy else None,
            "nginx": pid("nginx", self.nginx),
            "replicas": {str(port): pid(port, self.processes.get(port)) for port in self.replica_ports},
        }
        partial = self.state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(state, indent=1) + "\n")
        partial.replace(self.state_file)  # readers never see half a file

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds until every replica, and the proxy, answer /_stcore/health."""
        started = time.perf_counter()
        urls = [f"http://127.0.0.1:{p}/_stcore/health" for p in self.processes]
        urls += [f"{self.url}/_stcore/health"] if self.proxy else []
        for url in urls:
            while not answers(url, timeout=2):
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s (logs in {self.work})")
                time.sleep(0.2)
        return time.perf_counter() - started

    def healthy(self) -> bool:
        """Whether every replica, and the proxy, answer /_stcore/health now."""
        urls = [f"http://127.0.0.1:{p}/_stcore/health" for p in self.processes]
        return all(answers(url) for url in urls + ([f"{self.url}/_stcore/health"] if self.proxy else []))

    def kill_replica(self, port: int) -> None:
        """Kill a replica for good (tests): the supervisor does not start it again."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=20)
        self.write_state()

    def check(self) -> None:
        """One round of supervision: a process found dead is logged and given a time to start again
        (its backoff); one whose time has come starts again; a restarted replica that answers its health
        endpoint again is logged."""
        now = time.monotonic()
        supervised: list[tuple[int | str, subprocess.Popen]] = list(self.processes.items())
        supervised += [("nginx", self.nginx)] if self.nginx is not None else []
        for key, process in supervised:
            watch = self.watches[key]
            name = f"replica {key}" if key != "nginx" else "nginx"
            if watch.due is None and process.poll() is not None:
                uptime = now - watch.started
                wait = watch.backoff.after(uptime)
                watch.died, watch.due = now, now + wait
                where = f"replica-{key}.log" if key != "nginx" else "error.log"
                logger.warning(
                    "%s (pid %d) %s after %.1f s up (see %s); starting it again in %.0f s",
                    name, process.pid, how_it_ended(process.returncode), uptime, self.work / where, wait,
                )  # fmt: skip
                if key == "nginx":
                    self.stop_orphaned_workers(process)
                self.write_state()
            elif watch.due is not None and now >= watch.due:
                try:
                    if key == "nginx":
                        self.start_proxy()
                    else:
                        self.start_replica(key)
                except (OSError, RuntimeError) as e:  # no nginx any more, no file descriptors left, ...
                    wait = watch.backoff.after(0.0)
                    watch.due = now + wait
                    logger.error("%s could not start again (%s); trying again in %.0f s", name, e, wait)
                    continue
                restarted = self.nginx if key == "nginx" else self.processes[key]
                logger.info("%s started again (pid %d)", name, restarted.pid)
            elif watch.due is None and watch.died is not None and self.answers_again(key, now - watch.died):
                watch.died = None

    def answers_again(self, port: int, since_death: float) -> bool:
        if not answers(f"http://127.0.0.1:{port}/_stcore/health", timeout=0.5):
            return False
        logger.info("replica %d answers again, %.1f s after it died", port, since_death)
        return True

    @staticmethod
    def stop_orphaned_workers(master: subprocess.Popen) -> None:
        """nginx's workers outlive a master that was killed, still holding the port: stop them (a fast
        stop: a graceful one would wait for every open websocket) so that a new nginx can listen."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master.pid, signal.SIGTERM)  # nginx's process group: its workers

    def supervise(self, on_ready: Callable[[float], None] | None = None, tick: float = 0.5) -> None:
        """Keep every replica (and nginx) running until ``stopping`` is set; ``on_ready(seconds)`` once
        everything first answers its health endpoint."""
        started = time.monotonic()
        ready = False
        while not self.stopping:
            self.check()
            if not ready and not self.stopping and self.healthy():
                ready = True
                if on_ready is not None:
                    on_ready(time.monotonic() - started)
            time.sleep(tick)

    def stop(self) -> None:
        self.stopping = True
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finish open requests (worker_shutdown_timeout)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.nginx.pid, signal.SIGKILL)  # the master and its workers
                self.nginx.wait(timeout=10)
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()
        self.state_file.unlink(missing_ok=True)


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    replicas = Replicas(args.replicas, args.port, args.work.resolve(), args.address, args.upstream, not args.no_proxy)
    asked: list[int] = []

    def ask_to_stop(signum, frame) -> None:  # only a flag: the supervisor's loop stops at its next round
        asked.append(signum)
        replicas.stopping = True

    def ready(seconds: float) -> None:
        where = replicas.url if replicas.proxy else ", ".join(f"{args.address}:{p}" for p in replicas.replica_ports)
        logger.info("%d replica(s) ready in %.1f s: open %s (Ctrl-C stops them)", args.replicas, seconds, where)

    signal.signal(signal.SIGINT, ask_to_stop)
    signal.signal(signal.SIGTERM, ask_to_stop)
    try:
        replicas.start()
        logger.info("pids in %s; logs in %s", replicas.state_file, replicas.work)
        replicas.supervise(on_ready=ready)
    finally:
        if asked:
            logger.info("%s: stopping nginx and the replicas", signal.Signals(asked[0]).name)
        replicas.stop()
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
