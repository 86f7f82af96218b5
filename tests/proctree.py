"""Process trees read from /proc, for the kill -9 tests: who are a process's children,
which of them are still running."""

from __future__ import annotations

import time
from pathlib import Path


def children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` and their command lines."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _ppid(entry) == pid:
                out[int(entry.name)] = cmdline(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return out


def descendants(pid: int) -> dict[int, str]:
    """Children, their children, and so on."""
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child, cmd in children(todo.pop()).items():
            if child not in out:
                out[child] = cmd
                todo.append(child)
    return out


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_dead(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` s for every pid to die; the ones still alive."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def matching(*needles: str) -> dict[int, str]:
    """Every live process on the machine whose command line holds all ``needles``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = cmdline(int(entry.name))
            except OSError:
                continue
            if all(n in cmd for n in needles) and alive(int(entry.name)):
                out[int(entry.name)] = cmd
    return out


def _ppid(entry: Path) -> int:
    return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
