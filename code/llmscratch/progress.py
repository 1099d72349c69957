"""A progress bar that behaves in a terminal, in Jupyter, and on the published website.

In a terminal it is tqdm on standard output. Inside a Jupyter kernel every refresh would
become one more line of output in the saved notebook (and on the website, a column of
half-finished bars), so there the bar is a display that each refresh replaces in place, and
the executed chapter keeps only the final line.

Left out: nested bars, and tqdm's widget front end (it needs ipywidgets and renders nothing in
a static page).
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

__all__ = ["progress_bar"]

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"


class _DisplayLine:
    """A file for tqdm inside Jupyter: every refresh replaces one output line in place."""

    encoding = "utf-8"  # tqdm draws its block characters only for a UTF-8 file

    def __init__(self) -> None:
        from IPython.display import display

        self.handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.split("\r")[-1].strip("\n")  # tqdm writes "\r" + the whole bar
        if line.strip():
            self.handle.update({"text/plain": line}, raw=True)

    def flush(self) -> None:
        pass


def _in_jupyter_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def progress_bar(total: int, initial: int = 0, desc: str = "", enabled: bool = True) -> tqdm:
    """A tqdm bar over `total` steps starting at `initial`, refreshed at most once a second.

    Disabled, it costs nothing and prints nothing. Its file is an in-place display in Jupyter
    and standard output elsewhere (not tqdm's standard error, which notebooks show in red).
    """
    file: TextIO | _DisplayLine | None = None
    if enabled:
        file = _DisplayLine() if _in_jupyter_kernel() else sys.stdout
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, mininterval=1.0, file=file,
                bar_format=BAR_FORMAT)
