"""Progress for long commands: a bar with counts and rate on a terminal, plain periodic
lines (count, rate) when the output goes to a file or a pipe."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from tqdm import tqdm


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        every_seconds: float = 5.0,
        unit: str = "ev",
    ) -> None:
        self.label, self.total, self.count, self.unit = label, total, 0, unit
        self.stream = stream or sys.stderr
        self.every = every_seconds
        self.started = self.last_line = time.monotonic()
        self.bar = (
            tqdm(total=total, desc=label, unit=unit, file=self.stream, dynamic_ncols=True)
            if self.stream.isatty()
            else None
        )

    def __call__(self, done: int = 1) -> None:
        self.count += done
        if self.bar is not None:
            self.bar.update(done)
            return
        now = time.monotonic()
        if now - self.last_line >= self.every:
            self.last_line = now
            self._line()

    def _line(self, final: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        of = f"/{self.total}" if self.total else ""
        word = "done" if final else "…"
        print(
            f"{self.label}: {self.count}{of} {word} ({self.count / elapsed:,.0f} {self.unit}/s)",
            file=self.stream,
            flush=True,
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._line(final=True)
