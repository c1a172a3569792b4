"""The speed suite's hooks for the power sampler: the timed windows it reports and the
cooldown between tests (a fake engine and clock; no real time passes)."""

from __future__ import annotations

from collections.abc import Sequence

from gptoss_doctor.bench import speed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Engine:
    """Each decode call advances the clock by 1 s per token."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.n_vocab, self.n_ctx = clock, 100, 4096

    def reset(self) -> None:
        pass

    def decode(self, tokens: Sequence[int]) -> None:
        self.clock.now += len(tokens)


def test_each_timed_part_is_reported_on_the_suite_clock_without_warm_up_or_depth() -> None:
    clock = Clock()
    windows: list[tuple[str, float, float]] = []
    results, _ = speed.run_suite(Engine(clock), speed.parse_tests("pp4,tg2", (0, 8)), reps=2,
                                 clock=clock, timed=lambda *w: windows.append(w))
    assert [w[0] for w in windows] == ["pp4", "pp4", "pp4 @ d8", "pp4 @ d8", "tg2", "tg2",
                                       "tg2 @ d8", "tg2 @ d8"]
    assert all(end - start == durations for (_, start, end), durations in
               zip(windows, [d for r in results for d in r.durations_s], strict=True))
    # warm-up (4 tokens), then per rep the 4 timed tokens: the first window starts at 4
    assert windows[0][1:] == (4.0, 8.0)


def test_cooldown_sleeps_between_tests_not_before_the_first() -> None:
    clock = Clock()
    naps: list[float] = []
    speed.run_suite(Engine(clock), speed.parse_tests("pp4,tg2,tg4"), reps=1, clock=clock,
                    cooldown_s=30.0, sleep=naps.append)
    assert naps == [30.0, 30.0]


def test_ctrl_c_during_cooldown_keeps_the_finished_tests() -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    results, interrupted = speed.run_suite(Engine(Clock()), speed.parse_tests("pp4,tg2"),
                                           reps=1, cooldown_s=5.0, sleep=interrupt)
    assert interrupted and [r.name for r in results] == ["pp4"]
