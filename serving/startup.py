"""How long a worker takes from its process start to ready, phase by phase: one log line per worker
(``worker ready in … s: …``), which the cold-start figures in docs/deploying.md come from."""

from __future__ import annotations

import os
import time


def _process_start() -> float:
    """The epoch time at which this process started (its own start, not this module's import)."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as stat:
            ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/stat") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):  # Not Linux: count from this module's import.
        return time.time()


class StartupClock:
    """Marks the end of each start-up phase; `summary` says how long each took."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = [("process start", _process_start())]

    def mark(self, phase: str) -> None:
        self.marks.append((phase, time.time()))

    def total(self) -> float:
        return self.marks[-1][1] - self.marks[0][1]

    def summary(self) -> str:
        steps = ", ".join(f"{phase} {end - start:.2f} s" for (_, start), (phase, end) in zip(self.marks, self.marks[1:]))
        return f"worker ready in {self.total():.2f} s: {steps}"


CLOCK = StartupClock()
