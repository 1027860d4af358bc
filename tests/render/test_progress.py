"""The progress line of --each and --batch runs: counts, failures, rate, elapsed time, ETA, stage."""

from __future__ import annotations

import pytest

from mistral_magic.render.progress import ProgressView, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_counts_rate_elapsed_and_eta(capsys):
    clock = Clock()
    view = ProgressView(100, 20, clock=clock)
    clock.now += 40
    view.update(60, 3)
    assert view.line() == "60/100 · failed 3 · 1.0/s · 40 s elapsed · ETA 40 s"
    view.set_stage("batch running")
    clock.now += 3600
    view.update(100, 3)
    assert view.line().startswith("batch running · 100/100 · failed 3 · 0.0/s · 61 min elapsed · ETA –")
    view.close()
    shown = capsys.readouterr().out
    assert "[##############..........] 60/100" in shown and shown.endswith("\n")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0 s"), (119.4, "119 s"), (120, "2 min"), (7199, "120 min"), (12600, "3.5 h")]
)
def test_durations_read_at_a_glance(seconds, shown):
    assert duration(seconds) == shown
