"""The GIL is released while pseal works: another Python thread keeps running during an export."""

import threading
import time

import pseal


class Ticker(threading.Thread):
    """Notes the time every millisecond or so, which it can only do while it holds the GIL."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ticks = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.ticks.append(time.monotonic())
            time.sleep(0.001)


def ticks_during(call) -> int:
    ticker = Ticker()
    ticker.start()
    time.sleep(0.05)
    start = time.monotonic()
    call()
    end = time.monotonic()
    ticker.stop.set()
    ticker.join()
    return sum(start < t < end for t in ticker.ticks)


def test_another_thread_runs_while_an_export_works(tmp_path, config, cohort):
    # Held for the whole export, the GIL would let the ticker note nothing in between.
    assert ticks_during(lambda: pseal.export(config, cohort, tmp_path / "a")) >= 10
    assert ticks_during(lambda: pseal.export(config, cohort, tmp_path / "b", progress=lambda e: None)) >= 10


def test_another_thread_runs_while_a_review_works(tmp_path, config, cohort):
    assert ticks_during(lambda: pseal.review(config, cohort, tmp_path)) >= 10
