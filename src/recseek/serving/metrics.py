"""Prometheus metrics in the text exposition format (version 0.0.4), no extra dependency.

Exposed series:

- ``recseek_request_duration_seconds`` histogram by ``route`` (path template) and ``method``
- ``recseek_responses_total`` counter by ``route`` and ``status``
- ``recseek_queue_time_seconds`` histogram by ``model`` and ``version`` (enqueue to batch start)
- ``recseek_batch_size`` histogram by ``model`` and ``version``
- ``recseek_inference_duration_seconds`` histogram by ``model`` and ``version`` (one batch)
- ``recseek_queue_depth`` gauge by ``model`` and ``version``

Everything runs on the event loop thread (observations are plain list updates).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Histogram:
    def __init__(self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.help, self.labels = name, help, tuple(labels)
        self.buckets = tuple(float(b) for b in buckets)
        self._series: dict[tuple[str, ...], list] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        s = self._series.get(labels)
        if s is None:
            s = self._series[labels] = [[0] * (len(self.buckets) + 1), 0.0, 0]
        s[0][bisect.bisect_left(self.buckets, value)] += 1
        s[1] += value
        s[2] += 1

    def count(self, labels: tuple[str, ...]) -> int:
        s = self._series.get(labels)
        return 0 if s is None else s[2]

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, (counts, total, n) in sorted(self._series.items()):
            acc = 0
            for b, c in zip(self.buckets, counts, strict=False):
                acc += c
                le = 'le="' + f"{b:g}" + '"'
                out.append(f"{self.name}_bucket{_labels(self.labels, labels, le)} {acc}")
            inf = 'le="+Inf"'
            out.append(f"{self.name}_bucket{_labels(self.labels, labels, inf)} {n}")
            out.append(f"{self.name}_sum{_labels(self.labels, labels)} {total:.9g}")
            out.append(f"{self.name}_count{_labels(self.labels, labels)} {n}")
        return out


class Counter:
    def __init__(self, name: str, help: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.labels = name, help, tuple(labels)
        self._series: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...], by: float = 1.0) -> None:
        self._series[labels] = self._series.get(labels, 0.0) + by

    def value(self, labels: tuple[str, ...]) -> float:
        return self._series.get(labels, 0.0)

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for labels, v in sorted(self._series.items()):
            out.append(f"{self.name}{_labels(self.labels, labels)} {v:g}")
        return out


class Metrics:
    """The server's metric registry."""

    def __init__(self) -> None:
        self.request_latency = Histogram("recseek_request_duration_seconds", "HTTP request latency.",
                                         ("route", "method"), LATENCY_BUCKETS)
        self.responses = Counter("recseek_responses_total", "HTTP responses by route and status code.",
                                 ("route", "status"))
        self.queue_time = Histogram("recseek_queue_time_seconds", "Time a request waited in a batch queue.",
                                    ("model", "version"), LATENCY_BUCKETS)
        self.batch_size = Histogram("recseek_batch_size", "Requests per executed batch.", ("model", "version"),
                                    BATCH_BUCKETS)
        self.inference = Histogram("recseek_inference_duration_seconds", "Time to execute one batch.",
                                   ("model", "version"), LATENCY_BUCKETS)
        self.rejected = Counter("recseek_rejected_total", "Requests refused because a queue was full or timed out.",
                                ("model", "version", "reason"))
        self.gauges: list[tuple[str, str, Callable[[], list[tuple[tuple[str, str], float]]]]] = []

    def add_gauge(self, name: str, help: str, collect: Callable[[], list[tuple[tuple[str, str], float]]]) -> None:
        self.gauges.append((name, help, collect))

    def render(self) -> str:
        lines: list[str] = []
        for m in (self.request_latency, self.responses, self.queue_time, self.batch_size, self.inference,
                  self.rejected):
            lines += m.render()
        for name, help, collect in self.gauges:
            lines += [f"# HELP {name} {help}", f"# TYPE {name} gauge"]
            for labels, v in collect():
                lines.append(f"{name}{_labels(('model', 'version'), labels)} {v:g}")
        return "\n".join(lines) + "\n"
