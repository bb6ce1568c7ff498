"""CPU time, resident memory and descendants of processes, read from Linux's /proc.

The benches measure other processes (a driver subprocess, Ray workers, the loopback server)
with these few reads instead of depending on psutil.

Example:
    >>> import os
    >>> cpu_seconds(os.getpid()) > 0, rss_bytes(os.getpid()) > 0
    (True, True)
"""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()  # fields after "pid (comm) "


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process (its own threads, not its children)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of the process."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace").strip()


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (children, their children...)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parents.setdefault(int(_stat(int(name))[1]), []).append(int(name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
