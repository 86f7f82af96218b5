"""Helpers of the crash tests: a business process (tests/producer/emitter.py) to kill, and
what "stored exactly once" means for what it had accepted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import REPO


def log_key(data: Path) -> str:
    """The ledger's published log key (verifier key string), to pin."""
    return (data / "keys" / "log.pub").read_text().strip()


def start_emitter(opts: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.producer.emitter",
                             orjson.dumps(opts).decode()], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def read_accepted(proc: subprocess.Popen[str], ids: list[str], until: int) -> None:
    """Add the event ids the emitter printed (``emit`` had returned for each) to ``ids``
    until there are ``until``."""
    assert proc.stdout is not None
    while len(ids) < until:
        line = proc.stdout.readline().strip()
        assert line and line != "done", "the emitter stopped early"
        ids.append(line)


def kill_9(proc: subprocess.Popen[str], ids: list[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # what it printed before the kill and the test had not read yet was accepted too
    assert proc.stdout is not None
    ids.extend(x for x in (line.strip() for line in proc.stdout) if x and x != "done")


def assert_exactly_once(stored: list[str], accepted: list[str],
                        before: list[str]) -> None:
    """Every accepted event is stored, none twice; at most the one event whose ``emit``
    the kill interrupted is stored without having been acknowledged to the caller.
    ``before``: what the log held before (the registrations)."""
    assert stored[:len(before)] == before
    stored = stored[len(before):]
    dupes = [e for e, n in Counter(stored).items() if n > 1]
    assert dupes == []
    assert set(accepted) <= set(stored), set(accepted) - set(stored)
    assert len(set(stored) - set(accepted)) <= 1
