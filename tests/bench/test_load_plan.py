"""Load profiles, percentiles, SLOs and the sweep, on seeded schedules and a simulated server.

Schedules are drawn from seeded generators, so every statistical check below is a fixed
computation: the tolerances are several standard errors wide for the sample sizes used (and
the seeds fixed), so they hold on every machine and never flake.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import statistics
from types import SimpleNamespace

import pytest

from gptoss_doctor.bench import client_watch, latency, load, load_plan, records, results
from gptoss_doctor.bench.latency import Request
from gptoss_doctor.bench.load_plan import Arrivals, Slo, SweepResult
from gptoss_doctor.errors import UsageError


def _gaps(offsets: tuple[float, ...]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(offsets)]


def test_a_constant_schedule_is_evenly_spaced_from_zero() -> None:
    offsets = load_plan.schedule(4.0, Arrivals("constant"), seed=1, count=9)
    assert offsets[0] == 0.0 and len(offsets) == 9
    assert all(g == pytest.approx(0.25) for g in _gaps(offsets))
    by_time = load_plan.schedule(4.0, Arrivals("constant"), seed=1, duration_s=2.0)
    assert len(by_time) == 8 and by_time[-1] < 2.0


def test_a_seed_names_one_schedule() -> None:
    poisson = Arrivals("poisson")
    assert load_plan.schedule(3.0, poisson, 7, count=50) == load_plan.schedule(
        3.0, poisson, 7, count=50)
    assert load_plan.schedule(3.0, poisson, 7, count=50) != load_plan.schedule(
        3.0, poisson, 8, count=50)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_gaps_have_the_rates_mean_and_a_cv_of_one(seed: int) -> None:
    # 20 000 exponential gaps: the mean's standard error is 0.7 %, the CV's about 1 %.
    gaps = _gaps(load_plan.schedule(10.0, Arrivals("poisson"), seed, count=20_001))
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.1, rel=0.05)
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize(("burstiness", "cv"), [(0.25, 2.0), (4.0, 0.5), (1.0, 1.0)])
def test_gamma_gaps_keep_the_mean_and_their_cv_is_one_over_root_burstiness(
        burstiness: float, cv: float) -> None:
    gaps = _gaps(load_plan.schedule(5.0, Arrivals("gamma", burstiness), 3, count=50_001))
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.2, rel=0.05)
    assert statistics.pstdev(gaps) / mean == pytest.approx(cv, rel=0.1)


def test_arrivals_rates_and_warmup_parse_or_say_what_is_wrong() -> None:
    assert load_plan.parse_arrivals("gamma:0.5") == Arrivals("gamma", 0.5)
    assert load_plan.parse_arrivals("Poisson").name == "poisson"
    assert load_plan.parse_rates("4,1,2,2") == (1.0, 2.0, 4.0)
    assert load_plan.parse_warmup("10s") == load_plan.Warmup(seconds=10.0)
    assert load_plan.parse_warmup("20") == load_plan.Warmup(requests=20)
    for bad in ("gamma", "gamma:0", "gamma:nan", "burst", ""):
        with pytest.raises(UsageError, match="--arrivals"):
            load_plan.parse_arrivals(bad)
    for bad in ("0", "-1", "x", "inf", "1e9", ""):
        with pytest.raises(UsageError, match="--rate"):
            load_plan.parse_rates(bad)
    for bad in ("-5s", "ten", "1.5"):
        with pytest.raises(UsageError, match="--warmup"):
            load_plan.parse_warmup(bad)


def test_slos_parse_any_metric_at_any_percentile_or_the_mean() -> None:
    slos = load_plan.parse_slos("ttft_p95=2s,itl_p99.9=100ms,tpot_mean=50ms,e2e_p50=10s")
    assert [(s.metric, s.stat, s.limit_s) for s in slos] == [
        ("ttft", "p95", 2.0), ("itl", "p99.9", 0.1), ("tpot", "mean", 0.05),
        ("e2e", "p50", 10.0)]
    assert slos[0].percentile == 95 and slos[2].percentile is None
    assert [s.name for s in slos] == ["ttft_p95=2s", "itl_p99.9=100ms", "tpot_mean=50ms",
                                      "e2e_p50=10s"]


@pytest.mark.parametrize("bad", ["ttft=2s", "ttft_p95=2", "ttft_p100=2s", "ttft_p0=1s",
                                 "lat_p95=2s", "ttft_p95=0ms", "ttft_p95=2s,ttft_p95=3s",
                                 "ttft_p95=2h", "", "ttft_p95=2s;itl_p95=1s"])
def test_bad_slo_text_is_one_usage_line(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_plan.parse_slos(bad)
    assert "\n" not in caught.value.message and "--slo" in caught.value.message


def test_percentiles_interpolate_like_numpy_and_weights_count_as_repeats() -> None:
    # numpy.percentile([1, 2, 3, 4], [50, 90]) is [2.5, 3.7] (linear interpolation).
    assert latency.percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert latency.percentile([4.0, 1.0, 3.0, 2.0], 90) == pytest.approx(3.7)
    assert latency.percentile([], 50) is None
    repeated = [1.0, 1.0, 1.0, 5.0]
    for q in (10, 50, 75, 90, 99):
        assert latency.percentile([1.0, 5.0], q, [3.0, 1.0]) == pytest.approx(
            latency.percentile(repeated, q))
    dist = latency.distribution([1.0, 2.0, 3.0, 4.0])
    assert (dist.n, dist.mean, dist.p50) == (4, 2.5, 2.5)
    assert dist.std == pytest.approx(math.sqrt(1.25))  # population standard deviation


def _request(ttft: float, chunks: tuple[float, ...], tokens: int, e2e: float,
             error: str | None = None) -> Request:
    return Request(index=0, replica=0, scheduled_s=0.0, sent_s=0.0, ttft_s=ttft, e2e_s=e2e,
                   chunk_s=chunks, output_tokens=tokens, prompt_tokens=16, error=error)


def test_itl_is_every_gap_token_weighted_when_chunks_carry_several_tokens() -> None:
    one_each = _request(0.5, (0.5, 0.6, 0.8), 3, 0.8)
    assert one_each.itl() == (pytest.approx((0.1, 0.2)), 1.0)
    assert one_each.tpot_s == pytest.approx(0.15)
    # 7 tokens in 3 chunks: the 2 later chunks carry 3 tokens each.
    batched = _request(0.5, (0.5, 0.8, 1.4), 7, 1.4)
    gaps, weight = batched.itl()
    assert weight == 3.0 and gaps == pytest.approx((0.1, 0.2))
    assert batched.tpot_s == pytest.approx(0.15)
    values, weights = latency.values([one_each, batched], "itl")
    assert weights == [1.0, 1.0, 3.0, 3.0]
    # token-weighted mean: (0.3 + 0.9) / 8 gaps' tokens ... equals total decode / tokens
    assert latency.distribution(values, weights).mean == pytest.approx((0.3 + 0.9) / 8)


def test_failed_requests_miss_every_slo_and_cannot_hide_slow_ones() -> None:
    fast = [_request(0.1, (0.1, 0.2), 2, 0.2) for _ in range(18)]
    failed = [_request(0.1, (), 0, 1.0, error="boom") for _ in range(2)]
    slo = Slo("ttft", "p95", 1.0)
    assert latency.level_value(fast, slo) == pytest.approx(0.1)
    assert latency.level_value(fast + failed, slo) == math.inf  # 2 of 20 > 5 %
    assert latency.level_value(fast, slo, missing=2) == math.inf  # dropped by the cap
    assert not latency.request_meets(failed[0], (slo,))
    figures = latency.figures(fast + failed, 2.0, None, (slo,))
    assert (figures.ok, figures.failed, figures.goodput_rps) == (18, 2, 9.0)


def _simulated_level(rate: float, slo: Slo, slots: int = 4, prefill_s: float = 0.05,
                     decode_s: float = 0.35) -> SimpleNamespace:
    """A server with ``slots`` parallel slots, each request taking prefill + decode, fed
    a seeded Poisson schedule: TTFT is the queueing wait plus the prefill."""
    arrivals = load_plan.schedule(rate, Arrivals("poisson"), 11, count=400)
    free = [0.0] * slots
    requests = []
    for at in arrivals:
        start = max(at, heapq.heappop(free))
        heapq.heappush(free, start + prefill_s + decode_s)
        ttft = start - at + prefill_s
        requests.append(_request(ttft, (ttft, ttft + decode_s), 2, ttft + decode_s))
    value = latency.level_value(requests, slo)
    return SimpleNamespace(slo_met=value is not None and value <= slo.limit_s)


def test_the_sweep_brackets_the_highest_rate_meeting_the_slo_to_its_step() -> None:
    slo = Slo("ttft", "p95", 0.5)
    levels, result = load.sweep(lambda rate: _simulated_level(rate, slo), 1.0, (slo,))
    capacity = 4 / 0.4  # 10 requests/s: past it the queue grows without bound
    assert result.best_rate is not None and result.first_failing_rate is not None
    assert result.best_rate < capacity
    assert result.first_failing_rate - result.best_rate <= load_plan.SWEEP_STEP * (
        result.best_rate)
    assert _simulated_level(result.best_rate, slo).slo_met
    assert not _simulated_level(result.first_failing_rate, slo).slo_met
    assert result.tried[:4] == (1.0, 2.0, 4.0, 8.0) and len(levels) == len(result.tried)
    again = load.sweep(lambda rate: _simulated_level(rate, slo), 1.0, (slo,))[1]
    assert again.best_rate == result.best_rate


def test_the_sweep_halves_when_the_start_misses_and_gives_up_at_its_floor() -> None:
    best, failing, tried, _ = load_plan.find_max_rate(lambda rate: rate <= 3.0, 16.0)
    assert tried[:4] == (16.0, 8.0, 4.0, 2.0) and best is not None and failing is not None
    assert best <= 3.0 < failing and failing - best <= load_plan.SWEEP_STEP * best
    best, failing, tried, reason = load_plan.find_max_rate(lambda rate: False, 1.0)
    assert best is None and tried[-1] >= load_plan.SWEEP_FLOOR and "no rate" in reason
    best, _, tried, reason = load_plan.find_max_rate(lambda rate: True, 1.0, max_levels=5)
    assert best == 16.0 and len(tried) == 5 and "every rate" in reason


def test_client_load_names_the_threshold_it_passed() -> None:
    calm = client_watch.client_load([0.001] * 100, cpu_s=0.2, wall_s=1.0)
    assert not calm.client_bound and calm.reason is None and calm.cpu_share == 0.2
    busy = client_watch.client_load([0.001] * 90 + [0.05] * 10, cpu_s=0.95, wall_s=1.0)
    assert busy.client_bound and "lag p99" in (busy.reason or "")
    assert "CPU 95%" in (busy.reason or "")


def _sent(index: int, scheduled: float, sent: float) -> Request:
    return Request(index=index, replica=0, scheduled_s=scheduled, sent_s=sent, ttft_s=0.1,
                   e2e_s=0.2, chunk_s=(0.1, 0.2), output_tokens=2, prompt_tokens=8)


def test_sends_behind_the_schedule_mark_the_level_client_bound() -> None:
    profile = load.Profile("rate", Arrivals("constant"), 0, requests=4)
    endpoints = [load.Endpoint("http://127.0.0.1:9/v1")]
    calm = client_watch.client_load([0.001] * 10, 0.1, 1.0)
    on_time = load.LevelRun([_sent(i, i * 0.5, i * 0.5 + 0.001) for i in range(4)], [], 0, 4,
                            calm)
    level = load.summarize(on_time, profile, endpoints, (), rate=2.0, streams=None)
    assert not level.client.client_bound and level.achieved_rate == pytest.approx(2.0)
    late = load.LevelRun([_sent(i, i * 0.5, i * 0.5 + 0.2 * i) for i in range(4)], [], 0, 4,
                         calm)
    level = load.summarize(late, profile, endpoints, (), rate=2.0, streams=None)
    assert level.client.client_bound and "behind the schedule" in (level.client.reason or "")
    assert level.achieved_rate == round(3 / 2.1, 4)  # 3 gaps over 2.1 s of sends


@pytest.mark.parametrize(("record", "name"), [
    (records.LoadRun, "load_run"), (records.LoadLevel, "load_level"),
    (records.LevelFigures, "level_figures"), (records.Distribution, "distribution"),
    (records.ClientLoad, "client_load")])
def test_load_records_have_exactly_the_schemas_properties(record: type, name: str) -> None:
    schema = results.schema()["$defs"][name]
    fields = {f.name for f in dataclasses.fields(record)}
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == fields == set(schema["required"])


def test_the_sweep_record_has_exactly_the_schemas_properties() -> None:
    sweep = results.schema()["$defs"]["load_run"]["properties"]["sweep"]["oneOf"][1]
    assert set(sweep["properties"]) == {f.name for f in dataclasses.fields(SweepResult)}
