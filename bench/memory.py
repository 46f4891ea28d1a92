"""Peak resident memory of a process tree, sampled in a thread.

Why sampling: the pipeline's work happens in a child process and in the processes it starts,
which come and go; summing RSS over the live tree every ~0.2 s catches the peak of the whole tree,
which `resource.getrusage` (one process, or the max of reaped children, never their sum) cannot.

The tree's peak is split in two, so a figure says where the memory is: the process itself (the
`dataplatform run` / workload process: Dagster, the quality gate, dlt, and dbt, which the dbt step runs in
this process) and its descendants (the small helpers Dagster's compute-log capture starts for a step, and a
dbt action's subprocess), each with its own peak and with what each held at the moment of the tree's peak.
"""

from __future__ import annotations

import threading
import time

import psutil

MIB = 1024 * 1024


def tree_rss_split(process: psutil.Process) -> tuple[int, int]:
    """(RSS of the process, RSS of all its live descendants), in bytes (0 for what has gone)."""
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        return 0, 0
    own = 0
    try:
        own = process.memory_info().rss
    except psutil.Error:
        pass
    rest = 0
    for proc in children:
        try:
            rest += proc.memory_info().rss
        except psutil.Error:  # ended between listing and reading
            pass
    return own, rest


def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and all its live descendants, in bytes (0 once it has gone)."""
    return sum(tree_rss_split(process))


class PeakRss:
    """`with PeakRss(pid) as peak: ...` then `peak.mib`: the highest tree RSS seen while inside
    (`peak.split()`: the process's and its children's own peaks, and their shares at the tree's peak)."""

    def __init__(self, pid: int, *, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.last = 0
        self.own_peak = 0
        self.children_peak = 0
        self.at_peak = (0, 0)
        self.samples: list[tuple[float, int]] = []  # (unix time, tree RSS): for the peak of a time window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        while True:
            own, children = tree_rss_split(self.process)
            self.last = own + children
            self.samples.append((time.time(), self.last))
            self.own_peak = max(self.own_peak, own)
            self.children_peak = max(self.children_peak, children)
            if self.last > self.peak:
                self.peak, self.at_peak = self.last, (own, children)
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

    def peak_between(self, start: float, end: float) -> float | None:
        """MiB: the highest tree RSS sampled between two unix times (a step's start and end), None if no sample."""
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return max(inside) / MIB if inside else None

    def split(self) -> dict[str, float]:
        """MiB: the process's own peak, its children's (dbt) peak, and each one's RSS at the tree's peak."""
        return {"process_peak_mib": self.own_peak / MIB, "children_peak_mib": self.children_peak / MIB,
                "process_at_tree_peak_mib": self.at_peak[0] / MIB, "children_at_tree_peak_mib": self.at_peak[1] / MIB}
