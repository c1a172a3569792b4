"""Stats against hand-computed values; the suite's method against a fake engine and clock."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from gptoss_doctor.bench import speed, stats
from gptoss_doctor.errors import DoctorError, UsageError


def test_rates_mean_and_sample_stddev_by_hand() -> None:
    samples = stats.rates(128, [1.0, 2.0, 4.0])
    assert samples == (128.0, 64.0, 32.0)
    summary = stats.summarize(samples)
    assert summary.mean == pytest.approx(224 / 3)
    # deviations 160/3, -32/3, -128/3 -> squares sum 43008/9, divided by n - 1 = 2
    assert summary.stddev == pytest.approx(math.sqrt(43008 / 9 / 2))
    assert (summary.minimum, summary.maximum, summary.n) == (32.0, 128.0, 3)


def test_single_sample_has_zero_stddev_and_empty_is_an_error() -> None:
    assert stats.sample_stddev([5.0]) == 0.0
    with pytest.raises(ValueError):
        stats.mean([])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeEngine:
    """Decoding costs 10 ms per token in a batch plus 20 ms per call (a per-call overhead)."""

    def __init__(self, clock: FakeClock, n_ctx: int = 8192, fail_on: int | None = None) -> None:
        self.clock, self.n_vocab, self.n_ctx = clock, 1000, n_ctx
        self.calls: list[tuple[str, int]] = []
        self.fail_on = fail_on

    def reset(self) -> None:
        self.calls.append(("reset", 0))

    def decode(self, tokens: Sequence[int]) -> None:
        assert all(0 <= t < self.n_vocab for t in tokens)
        if self.fail_on is not None and len(tokens) == self.fail_on:
            raise DoctorError("simulated decode failure")
        self.calls.append(("decode", len(tokens)))
        self.clock.now += 0.010 * len(tokens) + 0.020


def test_prompt_test_times_only_the_prompt_not_the_depth_prefill() -> None:
    clock = FakeClock()
    engine = FakeEngine(clock)
    (result,), interrupted = speed.run_suite(engine, [speed.SpeedTest("pp", 512, 4096)],
                                             reps=3, clock=clock)
    assert not interrupted and result.status == "ok"
    assert result.name == "pp512 @ d4096"
    assert result.durations_s == pytest.approx((5.14, 5.14, 5.14))
    assert result.mean_ts == pytest.approx(512 / 5.14) and result.stddev_ts == pytest.approx(0)
    # warm-up (reset + 32 tokens), then per rep: reset, untimed depth, timed prompt
    assert engine.calls[:2] == [("reset", 0), ("decode", 32)]
    assert engine.calls[2:5] == [("reset", 0), ("decode", 4096), ("decode", 512)]
    assert engine.calls.count(("reset", 0)) == 4


def test_generation_test_decodes_one_token_at_a_time() -> None:
    clock = FakeClock()
    engine = FakeEngine(clock)
    (result,), _ = speed.run_suite(engine, [speed.SpeedTest("tg", 16)], reps=2, clock=clock)
    assert result.name == "tg16"
    assert result.samples_ts == pytest.approx((16 / 0.48, 16 / 0.48))
    assert engine.calls.count(("decode", 1)) == 1 + 2 * 16  # warm-up + reps


def test_a_test_that_does_not_fit_the_context_is_skipped_and_others_still_run() -> None:
    clock = FakeClock()
    engine = FakeEngine(clock, n_ctx=2048)
    tests = speed.parse_tests("pp512,tg32", depths=(0, 4096))
    results, _ = speed.run_suite(engine, tests, reps=1, clock=clock)
    assert [(r.name, r.status) for r in results] == [
        ("pp512", "ok"), ("pp512 @ d4096", "skipped"), ("tg32", "ok"), ("tg32 @ d4096", "skipped")]
    assert "4608-token context" in (results[1].reason or "")


def test_a_failing_test_is_recorded_and_does_not_hide_the_next() -> None:
    clock = FakeClock()
    engine = FakeEngine(clock, fail_on=64)
    results, _ = speed.run_suite(engine, speed.parse_tests("pp64,tg4"), reps=2, clock=clock)
    assert results[0].status == "failed" and results[0].reason == "simulated decode failure"
    assert results[1].status == "ok"


def test_ctrl_c_keeps_finished_tests_and_the_samples_so_far() -> None:
    clock = FakeClock()
    engine = FakeEngine(clock)

    def interrupt_on_second_test(name: str, rep: int, reps: int) -> None:
        if name == "tg8" and rep == 1:
            raise KeyboardInterrupt

    results, interrupted = speed.run_suite(engine, speed.parse_tests("pp32,tg8,tg16"), reps=3,
                                           clock=clock, progress=interrupt_on_second_test)
    assert interrupted
    assert [(r.name, r.status, len(r.samples_ts)) for r in results] == [
        ("pp32", "ok", 3), ("tg8", "interrupted", 1)]


def test_same_seed_gives_the_same_token_stream() -> None:
    def tokens(seed: int) -> list[tuple[str, int]]:
        clock = FakeClock()
        engine = FakeEngine(clock)
        seen: list[int] = []
        original = engine.decode

        def spy(batch: Sequence[int]) -> None:
            seen.extend(batch)
            original(batch)

        engine.decode = spy  # type: ignore[method-assign]
        speed.run_suite(engine, speed.parse_tests("pp16"), reps=1, seed=seed, clock=clock)
        return seen  # type: ignore[return-value]

    assert tokens(1) == tokens(1) and tokens(1) != tokens(2)


@pytest.mark.parametrize("text", ["pp", "xx512", "pp0", "tg-1", ""])
def test_bad_test_names_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        speed.parse_tests(text)


def test_ggml_protocol_is_pp2048_and_tg32_at_the_published_depths() -> None:
    names = [t.name for t in speed.protocol_tests("ggml")]
    assert names[:2] == ["pp2048", "pp2048 @ d4096"]
    assert names[-1] == "tg32 @ d32768" and len(names) == 10
