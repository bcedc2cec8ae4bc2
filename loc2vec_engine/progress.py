"""Progress reporting that works in a terminal (tqdm) and inside QGIS (a callback)."""

from __future__ import annotations

from typing import Callable, Optional

# A progress callback gets a fraction in [0, 1] and a short message; it returns True to cancel.
ProgressCallback = Callable[[float, str], Optional[bool]]


class Cancelled(Exception):
    """Raised when the progress callback asked to stop; outputs are left untouched."""


class Progress:
    """Reports ``done/total`` to a callback, or to a tqdm bar when there is no callback."""

    def __init__(self, total: int, desc: str, callback: ProgressCallback | None = None, enabled: bool = True):
        self.total = max(int(total), 1)
        self.done = 0
        self.desc = desc
        self.callback = callback
        self._bar = None
        if callback is None and enabled:
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal (logs, pipelines, tests).
            self._bar = tqdm(total=self.total, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=None)

    def update(self, n: int = 1, message: str = "") -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if message:
                self._bar.set_postfix_str(message, refresh=False)
        elif self.callback is not None:
            if self.callback(min(self.done / self.total, 1.0), message or self.desc):
                raise Cancelled(f"{self.desc}: cancelled")

    def finish(self, message: str = "") -> None:
        """Report completion once the outputs are written: a cancel asked for now comes too late."""
        self.done = self.total
        if self._bar is not None:
            self._bar.n = self.total
            self._bar.refresh()
        elif self.callback is not None:
            self.callback(1.0, message or self.desc)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
