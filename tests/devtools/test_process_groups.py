"""stop_groups: no member of a stopped group outlives it, orphans and zombies included."""

from __future__ import annotations

import subprocess
import sys

WORKER = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "import os; print(os.getpid(), flush=True)\n"
    "time.sleep(600)\n"
)
LEADER = (
    "import subprocess, sys, time\n"
    f"subprocess.Popen([sys.executable, '-c', {WORKER!r}])\n"
    "time.sleep(600)\n"
)
DRIVER = f"""
import os, subprocess, sys
from market_backfill_devtools.process_groups import adopt_orphans, members, stop_groups

assert adopt_orphans()
bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
leader = subprocess.Popen(
    [sys.executable, "-c", {LEADER!r}], stdout=subprocess.PIPE, text=True,
    start_new_session=True,
)
worker = int(leader.stdout.readline())
stop_groups([leader], grace=1)
live, zombies = members([leader.pid])
try:
    os.killpg(leader.pid, 0)
    group = "left"
except ProcessLookupError:
    group = "gone"
print(len(live), len(zombies), group, bystander.poll())
bystander.kill()
bystander.wait()
"""


def test_a_worker_that_ignores_sigterm_and_outlives_its_leader_is_killed_and_reaped():
    """The leader dies on SIGTERM, its worker ignores it and is orphaned to the caller
    (a subreaper): after stop_groups nothing of the group is left, not even a zombie,
    and the caller's other child still runs."""
    out = subprocess.run(
        [sys.executable, "-c", DRIVER], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out == ["0", "0", "gone", "None"]


def test_members_finds_live_processes_of_a_group_by_its_id():
    from market_backfill_devtools.process_groups import members, stop_groups

    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        assert members([proc.pid]) == ([proc.pid], [])
    finally:
        stop_groups([proc], grace=5)
    assert members([proc.pid]) == ([], [])
    assert proc.returncode is not None


REAPER = """
import subprocess, sys, time
from market_backfill_devtools.process_groups import adopt_orphans, members, reap_adopted

assert adopt_orphans()
leader = subprocess.Popen(
    [sys.executable, "-c", "import subprocess, sys; "
     "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5)']); sys.exit(3)"],
    start_new_session=True,
)
deadline = time.monotonic() + 60
while members([leader.pid])[0] and time.monotonic() < deadline:
    time.sleep(0.05)  # until the leader and its orphaned worker have exited
zombies_before = len(members([leader.pid])[1])
reaped = reap_adopted([leader.pid])
print(zombies_before, reaped, len(members([leader.pid])[1]), leader.wait(10))
"""


def test_orphans_that_exit_while_the_groups_run_are_reaped_and_leaders_are_left_to_popen():
    """A worker orphaned by its leader exits on its own: the subreaper reaps it, while the
    leader's zombie stays for its ``Popen`` to read the exit status (3)."""
    out = subprocess.run(
        [sys.executable, "-c", REAPER], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out == ["2", "1", "1", "3"]
