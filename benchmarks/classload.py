"""A class of simulated students voting through nginx into two replicas, one replica killed mid-way (issue 24).

    run_class(database_url, students=40, work=folder) -> ClassRun

What happens, in order (every person is a ``explorer.ui.wire.Tab``: a browser tab spoken at the protocol level,
including the every-1.5-s reruns each open tab asks for):

1. ``explorer.replicas.Replicas`` starts 2 Streamlit replicas behind nginx, all on ``database_url``
   (``sqlite:///file`` or ``postgresql://...``).
2. The teacher opens the lab ``LAB`` at step 1, presses "Teach this lab to a class" and "Ask the class"; the
   tab stays open, its live histogram ("N votes in round 1") rerunning every 1.5 s as the projector's would.
3. The students open the class link at random moments over ``JOIN_SPREAD`` s, press Join, think for a random
   time, choose answer ``CHOICES[i % 4]`` and press Vote, then wait for "Vote counted". Every fifth double-clicks
   (two triggers at once); every seventh reloads its tab after joining and again after voting, and votes
   again (the same answer) from the reloaded tab.
4. When half the class has voted, the replica serving the most students (not the teacher's) is killed
   (SIGKILL). Its students' tabs close; they reconnect through nginx (the next replica), their link carrying
   their anonymous token, and vote again if their vote was not confirmed.
5. At the end the store is read directly: the histogram's total and each answer's count must equal what the
   students chose (every vote exactly once), and the class has exactly ``students`` participants.

Histogram delay of a vote: the time its click was sent to the first moment the teacher's tab shows a total
that includes it (the k-th vote by click time against the first total >= k): an upper bound, since it includes
the vote's own processing. ``seconds``: from the first student's tab opening to the last confirmed vote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from explorer.lessons import Classroom, open_store
from explorer.lessons.store import DATABASE_URL_ENV
from explorer.replicas import Replicas
from explorer.ui.served import REPLICA_COOKIE, free_ports
from explorer.ui.wire import Tab, TabClosed

LAB = "moe-routing"  # step 1 is a multiple-choice question the embedded tiny MoE answers
CHOICES_SHOWN = 4  # students pick among the question's first four choices
JOIN_SPREAD = 10.0  # seconds over which the class opens the link
THINK = (3.0, 25.0)  # seconds a student thinks before voting, after joining
TOTAL = re.compile(r"\*\*(\d+) votes?\*\* in round 1")
logger = logging.getLogger(__name__)


@dataclass
class ClassRun:
    store: str  # "sqlite" or "postgresql"
    students: int
    replicas: int
    seconds: float
    counted: int  # the store's histogram total
    counts_match: bool  # each answer's stored count equals the number of students who chose it
    participants: int
    delays: list[float]  # per vote, seconds (module docstring)
    latencies: list[float]  # per student, seconds from the click to "Vote counted" on their screen
    killed: str  # the replica killed mid-way (r1, r2), '' when none was
    moved: int  # tabs that closed with their replica and reconnected
    double_clicks: int
    reloads: int
    errors: list[str] = field(default_factory=list)

    @property
    def delay_p95(self) -> float:
        return statistics.quantiles(self.delays, n=20, method="inclusive")[-1] if len(self.delays) > 1 else float("nan")

    @property
    def latency_p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20, method="inclusive")[-1] if len(self.latencies) > 1 else 0.0

    @property
    def exact(self) -> bool:
        return self.counted == self.students and self.counts_match and self.participants == self.students


@dataclass
class _Student:
    number: int
    choice: str
    double: bool
    reloads: bool
    replica: str = ""
    voted_at: float | None = None  # when the click of the first confirmed vote was sent
    latency: float | None = None  # seconds from that click to "Vote counted" on the student's screen
    moved: int = 0


def run_class(database_url: str, students: int = 40, work: Path | None = None, kill: bool = True,
              seed: int = 0) -> ClassRun:  # fmt: skip
    """The scenario of the module docstring; raises when the class could not even start."""
    with contextlib.ExitStack() as stack:
        work = work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="classload-")))
        stack.enter_context(_environment({DATABASE_URL_ENV: database_url, "OMP_WAIT_POLICY": "PASSIVE"}))
        group = Replicas(2, free_ports(3), work)
        stack.callback(group.stop)
        stack.enter_context(_stopped_by_sigterm())  # a killed benchmark still stops its replicas and nginx
        group.start()
        group.wait_healthy()
        return asyncio.run(_class(group, database_url, students, kill, random.Random(seed)))


async def _class(group: Replicas, database_url: str, students: int, kill: bool, rng: random.Random) -> ClassRun:
    teacher, code, choices = await _teacher(group.url)
    logger.info("class %s asked its question (teacher on %s)", code, teacher.cookies.get(REPLICA_COOKIE))
    people = [
        _Student(n, choices[n % min(CHOICES_SHOWN, len(choices))], n % 5 == 1, n % 7 == 3) for n in range(students)
    ]
    began = time.perf_counter()
    confirmed: list[float] = []
    killed = asyncio.create_task(_kill_half_way(group, people, teacher, confirmed, students)) if kill else None
    results = await asyncio.gather(
        *(_student(group.url, code, person, rng.uniform(0, JOIN_SPREAD), rng.uniform(*THINK), confirmed)
          for person in people),
        return_exceptions=True,
    )  # fmt: skip
    seconds = (max(confirmed) - began) if confirmed else float("nan")
    await asyncio.sleep(3.0)  # the teacher's last reruns
    name = await killed if killed else ""
    await teacher.close()
    errors = [f"student {p.number}: {r!r}" for p, r in zip(people, results) if isinstance(r, BaseException)]
    errors += [f"teacher: {e}" for e in teacher.errors]
    return _tally(database_url, code, people, teacher, seconds, name, errors)


async def _teacher(base: str) -> tuple[Tab, str, list[str]]:
    """The teacher's tab: the lab's first step, a class, its question asked; -> (tab, class code, choices)."""
    tab = Tab(base, "lessons", f"lab={LAB}&step=1")
    await tab.open()
    await tab.wait_for_widget("Teach this lab to a class", 300)  # the first run loads the lab's model
    await tab.click("Teach this lab to a class")
    await tab.wait_for_widget("Ask the class", 120)
    await tab.click("Ask the class")
    await tab.wait_for_text(lambda text: TOTAL.search(text) is not None, 120)
    code = parse_qs(tab.query)["class"][0]
    store = open_store()  # the replicas' store (EXPLORER_DATABASE_URL, set by run_class)
    try:
        question = Classroom(store).state(code).question
    finally:
        store.close()
    return tab, code, list(question.choices)


async def _student(base: str, code: str, person: _Student, arrive: float, think: float, confirmed: list) -> None:
    await asyncio.sleep(arrive)
    tab = Tab(base, "lessons", f"class={code}")
    for attempt in range(6):
        try:
            await (tab.open() if attempt == 0 else tab.reload())
            await _visit(tab, person, think, confirmed)
            await tab.close()
            return
        except TabClosed:  # its replica died: a browser reconnects on the same link, to another replica
            person.moved += 1
            await asyncio.sleep(1.0)
            with contextlib.suppress(OSError, TimeoutError):
                await tab.close()
    raise RuntimeError("did not vote after 6 reconnections")


async def _visit(tab: Tab, person: _Student, think: float, confirmed: list) -> None:
    person.replica = tab.cookies.get(REPLICA_COOKIE, "")
    if "me=" not in tab.query:
        await tab.wait_for_widget("Join", 60)
        await tab.click("Join")  # the box holds the link's code
        await tab.wait_until(lambda: "me=" in tab.query, 60, "the student's token in the link")
        if person.reloads:
            await tab.reload()
        await asyncio.sleep(think)
    if person.voted_at is None:
        sent = await _vote(tab, person.choice, person.double)
        person.voted_at, person.latency = sent, time.perf_counter() - sent
        confirmed.append(time.perf_counter())
        logger.info("student %d: vote %s confirmed (%d so far)", person.number, person.choice, len(confirmed))
    if person.reloads:  # after the vote: a reload, and the same answer again (counted once)
        await tab.reload()
        await _vote(tab, person.choice, double=False)


async def _vote(tab: Tab, choice: str, double: bool) -> float:
    """Choose ``choice``, press Vote (twice at once: a double click) and wait for "Vote counted"; -> when the click
    was sent."""
    await tab.wait_for_widget("Vote", 60)
    since = len(tab.texts)
    sent = await tab.click("Vote", {"Your answer": choice})
    if double:
        await tab.click("Vote")  # the second trigger right behind the first
    await tab.wait_for_text(lambda t: t.startswith(f"Vote counted: {choice}"), 60, since)
    return sent


async def _kill_half_way(group: Replicas, people: list[_Student], teacher: Tab, confirmed: list, n: int) -> str:
    """When half the class has voted: SIGKILL the replica with the most students (not the teacher's)."""
    while len(confirmed) < n // 2:
        await asyncio.sleep(0.05)
    spared = teacher.cookies.get(REPLICA_COOKIE, "")
    load = {f"r{i + 1}": 0 for i in range(group.count)}
    for person in people:
        if person.replica in load:
            load[person.replica] += 1
    victim = max((name for name in load if name != spared), key=lambda name: load[name])
    logger.info("%d votes confirmed: killing replica %s (students per replica %s)", len(confirmed), victim, load)
    port = group.replica_ports[int(victim[1:]) - 1]
    os.kill(group.processes[port].pid, signal.SIGKILL)
    return victim


def _tally(database_url: str, code: str, people: list[_Student], teacher: Tab, seconds: float, killed: str,
           errors: list[str]) -> ClassRun:  # fmt: skip
    store = open_store(database_url)
    try:
        room = Classroom(store)
        state = room.state(code)
        histogram = room.histogram(code, state.question.id, 1)
    finally:
        store.close()
    wanted: dict[str, int] = {}
    for person in people:
        wanted[person.choice] = wanted.get(person.choice, 0) + 1
    counts = {answer: n for answer, n in histogram.counts.items() if n}
    return ClassRun(
        store.kind, len(people), 2, seconds, histogram.total, counts == wanted, state.participants,
        _delays(people, teacher), [p.latency for p in people if p.latency is not None], killed,
        sum(p.moved for p in people), sum(p.double for p in people), sum(p.reloads for p in people), errors,
    )  # fmt: skip


def _delays(people: list[_Student], teacher: Tab) -> list[float]:
    """Seconds from the k-th vote's click to the teacher's first total >= k (module docstring)."""
    shown = [(at, int(m.group(1))) for at, text in teacher.texts if (m := TOTAL.search(text))]
    delays = []
    for k, sent in enumerate(sorted(p.voted_at for p in people if p.voted_at is not None), start=1):
        seen = next((at for at, total in shown if total >= k and at >= sent), None)
        if seen is not None:
            delays.append(seen - sent)
    return delays


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _stopped_by_sigterm():
    """SIGTERM (``timeout``, a CI's cancel) raises SystemExit here, so the ExitStack stops the replicas: they run in
    sessions of their own and would outlive this process otherwise. Only the main thread can take signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
