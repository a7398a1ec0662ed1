"""Fakes shared by the unit tests."""

from __future__ import annotations


class Clock:
    """Simulated time for code that takes ``clock`` and ``sleep``: ``clock()`` reads it, ``sleep`` advances
    it and is recorded in ``sleeps``; a fake may also advance ``now`` to stand for time a call took."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
