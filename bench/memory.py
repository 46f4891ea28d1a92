"""Peak resident memory of a process tree, sampled in a thread.

Why sampling: the pipeline's work happens in a child process and in the processes it starts (dbt),
which come and go; summing RSS over the live tree every ~0.2 s catches the peak of the whole tree,
which `resource.getrusage` (one process, or the max of reaped children, never their sum) cannot.
"""

from __future__ import annotations

import threading

import psutil

MIB = 1024 * 1024


def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and all its live descendants, in bytes (0 once it has gone)."""
    total = 0
    try:
        procs = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # ended between listing and reading
            pass
    return total


class PeakRss:
    """`with PeakRss(pid) as peak: ...` then `peak.mib`: the highest tree RSS seen while inside."""

    def __init__(self, pid: int, *, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        while True:
            self.last = tree_rss(self.process)
            self.peak = max(self.peak, self.last)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.peak / MIB
