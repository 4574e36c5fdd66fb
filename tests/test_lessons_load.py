"""A class of 40 simulated students through nginx with 2 replicas, one replica killed with SIGKILL mid-way, against a
SQLite file and a real PostgreSQL server (issue 24; the scenario is benchmarks/classload.py's docstring).

What is checked here is what must always hold: every student's vote stored exactly once (the store's count for each
answer equals the number of students who chose it, double clicks and reloads included), no vote lost with the
killed replica, one participant per student, and the teacher's live histogram reaching every vote. How fast
(seconds for the class, the histogram's delay at p95) is measured by ``python -m benchmarks --votes-only``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks.classload import run_class

if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's nginx for the class load test (apt-get install -y nginx-light)")
    pytest.skip("nginx is not installed (apt-get install -y nginx-light)", allow_module_level=True)

STUDENTS = 40


def test_forty_students_through_two_replicas_one_killed_every_vote_counted_once(store_url, tmp_path):
    run = run_class(store_url, students=STUDENTS, work=tmp_path / "replicas")
    assert run.errors == []
    assert run.killed in ("r1", "r2") and run.moved > 0  # a replica died and its students reconnected
    assert run.double_clicks > 0 and run.reloads > 0
    assert run.counted == STUDENTS and run.counts_match, run
    assert run.participants == STUDENTS  # a reload or a reconnection kept the student's anonymous token
    assert len(run.delays) == STUDENTS  # the teacher's projected histogram showed every vote
