"""Two-sample tests (bench/stats.py) and the reasoning-effort comparison (bench/effort.py).

The rank test's normal approximation is checked against the exact permutation
distribution of U, enumerated here; the effort comparison runs on completions constructed
here (analysis messages of chosen lengths, in harmony and as a server's reasoning field)
inside the recorded tiny-model tools run (tests/fixtures/results/synthetic-tiny-tools.json).
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.bench import effort, harmony, results, stats

FIXTURES = Path(__file__).parent.parent / "fixtures" / "results"


def test_ranks_average_ties() -> None:
    assert stats.ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert stats.ranks([]) == []


def _exact_u_p(a: list[float], b: list[float]) -> float:
    """P(U_a >= observed) over every split of the pooled sample (the exact test)."""
    pooled = [*a, *b]
    observed = stats.mann_whitney(a, b).statistic
    us = []
    for chosen in itertools.combinations(range(len(pooled)), len(a)):
        first = [pooled[i] for i in chosen]
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        us.append(stats.mann_whitney(first, rest).statistic)
    return sum(u >= observed - 1e-9 for u in us) / len(us)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rank_tests_normal_approximation_is_close_to_the_exact_distribution(
        seed: int) -> None:
    rng = random.Random(seed)
    a = [rng.randint(0, 30) + 6 for _ in range(8)]  # shifted up, ties likely
    b = [rng.randint(0, 30) for _ in range(8)]
    approx = stats.mann_whitney(a, b, "greater").p
    assert abs(approx - _exact_u_p(a, b)) < 0.02
    # U of a and U of b add up to n1 * n2
    assert stats.mann_whitney(a, b).statistic + stats.mann_whitney(b, a).statistic == 64


def test_rank_test_directions_and_degenerate_samples() -> None:
    low, high = list(range(10)), list(range(20, 30))
    assert stats.mann_whitney(high, low, "greater").p < 0.001
    assert stats.mann_whitney(high, low, "less").p > 0.99
    assert stats.mann_whitney(high, low).p < 0.001  # two-sided
    assert stats.mann_whitney([3, 3, 3], [3, 3]).p == 1.0  # every value tied
    with pytest.raises(ValueError):
        stats.mann_whitney([], [1])
    with pytest.raises(ValueError):
        stats.mann_whitney([1], [2], "bigger")


def test_the_permutation_test_is_exact_when_it_can_be() -> None:
    # 20 splits of six values: only the observed one is as extreme
    assert stats.permutation_test([4, 5, 6], [1, 2, 3], "greater").p == pytest.approx(1 / 20)
    assert stats.permutation_test([4, 5, 6], [1, 2, 3]).p == pytest.approx(2 / 20)
    assert stats.permutation_test([1, 2, 3], [4, 5, 6], "greater").p == 1.0


def test_the_sampled_permutation_test_agrees_with_the_exact_one() -> None:
    rng = random.Random(7)
    a = [rng.gauss(1.0, 1) for _ in range(9)]
    b = [rng.gauss(0.0, 1) for _ in range(9)]
    exact = stats.permutation_test(a, b, "greater", resamples=50000).p  # C(18,9) = 48620
    sampled = stats.permutation_test(a, b, "greater", resamples=4000, seed=3).p
    assert abs(exact - sampled) < 0.02


def _completion(analysis_words: int) -> dict[str, Any]:
    text = ("<|channel|>analysis<|message|>" + " think" * analysis_words
            + "<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>")
    ids = harmony.encode(text)
    return {"prompt_tokens": 10, "completion_ids": ids, "completion_text": text,
            "stopped_on": "<|return|>", "latency_s": 0.1, "tool_result": None}


def test_reasoning_is_counted_from_harmony_tokens_and_from_a_servers_field() -> None:
    in_process = {"turns": [_completion(7), _completion(5)]}
    assert effort.analysis_tokens(in_process) == 12  # " think" is one o200k token
    served = {"turns": [{"message": {"content": "Hi", "reasoning": " think think",
                                     "tool_calls": []}}]}
    assert effort.analysis_tokens(served) == 2
    broken = {"turns": [{**_completion(3), "completion_ids": harmony.encode("<|message|>")}]}
    assert effort.analysis_tokens(broken) is None
    assert effort.analysis_tokens({"turns": [{"error": "refused"}]}) is None


def _run(reasoning: str, lengths: list[int], synthetic: bool = False) -> dict[str, Any]:
    record = results.load(FIXTURES / "synthetic-tiny-tools.json")
    record = copy.deepcopy(record)
    record["config"]["reasoning"] = reasoning
    record["model"]["synthetic"] = synthetic
    record["attempts"] = [{**record["attempts"][i], "turns": [_completion(n)]}
                          for i, n in enumerate(lengths)]
    return record


def test_a_model_that_reasons_longer_at_higher_effort_is_honoured() -> None:
    rng = random.Random(0)
    runs = [_run("low", [rng.randint(5, 15) for _ in range(12)]),
            _run("medium", [rng.randint(20, 40) for _ in range(12)]),
            _run("high", [rng.randint(50, 90) for _ in range(12)])]
    [group] = effort.compare(runs)
    assert group["verdict"].startswith("honoured")
    assert [t["lower"] + ">" + t["higher"] for t in group["tests"]] == [
        "low>medium", "low>high", "medium>high"]
    assert all(t["p_mann_whitney"] < 0.001 for t in group["tests"])
    assert group["efforts"]["high"]["counted"] == 12


def test_no_difference_is_not_shown_and_a_synthetic_model_is_not_measurable() -> None:
    same = [10, 12, 9, 11, 10, 13, 8, 12]
    [group] = effort.compare([_run("low", same), _run("high", list(reversed(same)))])
    assert group["verdict"].startswith("not shown")
    [group] = effort.compare([_run("low", [1, 2, 3], True), _run("high", [50, 60, 70], True)])
    assert group["verdict"] == effort.NOT_MEASURABLE  # whatever the numbers say
    [group] = effort.compare([_run("low", same)])
    assert group["verdict"].startswith("one effort only")


def test_runs_of_different_engines_or_apis_are_compared_apart() -> None:
    low, high = _run("low", [5] * 4), _run("high", [50] * 4)
    high["key_properties"] = {**high["key_properties"], "api": "responses"}
    assert len(effort.compare([low, high])) == 2


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_command_on_the_recorded_tiny_run_says_not_measurable(tmp_path: Path) -> None:
    done = bench("effort", str(FIXTURES / "synthetic-tiny-tools.json"), "--json")
    assert done.returncode == 0, done.stderr
    [group] = json.loads(done.stdout)["groups"]
    assert group["verdict"] == effort.NOT_MEASURABLE and group["synthetic"] is True
    done = bench("effort", str(FIXTURES / "synthetic-tiny-cpu.json"))
    assert done.returncode == 2 and "not tool-use results" in done.stderr


def test_the_report_shows_the_effort_comparison(tmp_path: Path) -> None:
    rng = random.Random(1)
    files = []
    for effort_name, low, high in (("low", 5, 15), ("high", 50, 90)):
        path = tmp_path / f"{effort_name}.json"
        results.save(_run(effort_name, [rng.randint(low, high) for _ in range(10)]), path)
        files.append(str(path))
    page = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "report", *files, "-o",
                           str(page)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert "<h2>Reasoning effort</h2>" in text
    assert "honoured: each higher effort reasons longer" in text
    assert "high &gt; low: one-sided Mann–Whitney p = " in text or \
        "high > low: one-sided Mann–Whitney p = " in text
