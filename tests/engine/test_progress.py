"""Progress bars: drawn on a terminal, absent from a redirected log (a file gets no carriage-return frames)."""

import io
import sys

from transferkit.engine.progress import batch_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_stderr_is_a_file(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    assert list(batch_bar(range(5), "epoch 1/3")) == [0, 1, 2, 3, 4]
    assert log.getvalue() == ""


def test_bar_on_a_terminal(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert list(batch_bar(range(5), "epoch 1/3")) == [0, 1, 2, 3, 4]
    assert "epoch 1/3:" in screen.getvalue() and "0/5 [" in screen.getvalue()
