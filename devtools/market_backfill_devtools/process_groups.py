"""Stopping Airflow components that each run in their own process group.

A component's leader may exit before the workers it forked (LocalExecutor workers, task
processes, API server workers). Those orphans move to the nearest subreaper, or to PID 1,
which in a container may reap them late or never: a killed orphan then stays a zombie,
still a member of its group. ``adopt_orphans()`` makes the calling process their
subreaper, so ``stop_groups()`` reaps them and no member of a stopped group outlives it;
while the groups run, ``reap_adopted()`` reaps the orphans that have exited.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def adopt_orphans() -> bool:
    """Make this process the reaper of its descendants whose parents exit (Linux only).

    Returns whether it took effect. Call it in a process that owns the groups it starts,
    not in a test runner: it changes who reaps every orphan below the caller.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _processes() -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process /proc shows."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it exited while we looked
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        state, ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        yield int(stat.parent.name), state, int(ppid), int(pgrp)


def members(groups: Iterable[int]) -> tuple[list[int], list[int]]:
    """The pids whose process group is in ``groups``: the live ones and the zombies."""
    wanted = set(groups)
    live: list[int] = []
    zombies: list[int] = []
    for pid, state, _ppid, pgrp in _processes():
        if pgrp in wanted:
            (zombies if state == "Z" else live).append(pid)
    return live, zombies


def reap_adopted(leaders: Iterable[int]) -> int:
    """Reap this process's zombie children other than ``leaders`` (whose exit status
    their ``Popen`` reads): the adopted orphans that exited while the groups run. Returns
    how many were reaped."""
    keep, me, reaped = set(leaders), os.getpid(), 0
    for pid, state, ppid, _pgrp in _processes():
        if state == "Z" and ppid == me and pid not in keep:
            _reap(pid)
            reaped += 1
    return reaped


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its own parent (or PID 1) reaps it
        pass


def _signal_groups(groups: Iterable[int], signum: int) -> None:
    for group in groups:
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            pass


def stop_groups(procs: list[subprocess.Popen], grace: float = 30) -> None:
    """SIGTERM each leader's group, give them ``grace`` seconds, SIGKILL what is left.

    Returns when every leader is reaped and no live process remains in any group; those
    of the groups' zombies that are our children (adopted orphans included) are reaped
    too. Other children of the caller are left alone.
    """
    groups = [proc.pid for proc in procs]
    _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    while True:  # the groups may still hold workers, or be forking one
        _signal_groups(groups, signal.SIGKILL)
        for proc in procs:
            proc.wait()
        live, zombies = members(groups)
        for pid in zombies:  # ours (adopted orphans among them) are reaped now
            _reap(pid)
        if not live:
            return
        log.debug("%d processes left in the stopped groups", len(live))
        time.sleep(0.05)
