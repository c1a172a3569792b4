"""Workloads: parsing ``--workload``, and the shapes each gives (seeded, bounded)."""

from __future__ import annotations

import statistics

import pytest

from gptoss_doctor.bench.endpoint_speed import Shape
from gptoss_doctor.bench.workload import (
    CHAT_MAX_INPUT,
    CHAT_MAX_TOTAL,
    CHAT_MEAN_INPUT,
    CHAT_MEAN_OUTPUT,
    CHAT_MIN_TOKENS,
    RequestShape,
    Workload,
    parse_workload,
)
from gptoss_doctor.errors import UsageError

DEFAULT = Shape(512, 128)


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("fixed", Workload("fixed"), id="fixed is the --tests shape"),
    pytest.param("", Workload("fixed"), id="nothing means fixed"),
    pytest.param(" Chat ", Workload("chat"), id="chat, case and spaces ignored"),
    pytest.param("prefix:2048", Workload("prefix", 2048), id="prefix with its token count"),
    pytest.param("prefix: 16", Workload("prefix", 16), id="a space after the colon"),
])
def test_parse_reads_each_workload(text: str, expected: Workload) -> None:
    assert parse_workload(text) == expected
    assert parse_workload(expected.name) == expected


@pytest.mark.parametrize("text", [
    pytest.param("prefix", id="prefix without a count"),
    pytest.param("prefix:0", id="an empty prefix"),
    pytest.param("prefix:-5", id="a negative prefix"),
    pytest.param("prefix:131073", id="a prefix longer than gpt-oss's context"),
    pytest.param("prefix:" + "9" * 5000, id="digits past int()'s limit"),
    pytest.param("prefix:١٢", id="non-ASCII digits"),
    pytest.param("sharegpt", id="an unknown name"),
    pytest.param("chat\x1b[31m" + "x" * 200, id="control characters and a long name"),
])
def test_parse_refuses_bad_text_in_one_line(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_workload(text)
    assert "\n" not in raised.value.message
    assert len(raised.value.message) < 200


def test_fixed_repeats_the_default_shape() -> None:
    assert Workload("fixed").shapes(3, 0, DEFAULT) == [RequestShape(512, 128, 0)] * 3


def test_prefix_puts_the_shared_prompt_before_the_default_shape() -> None:
    shapes = Workload("prefix", 1000).shapes(4, 7, DEFAULT)
    assert shapes == [RequestShape(512, 128, 1000)] * 4


def test_chat_is_reproducible_from_its_seed() -> None:
    chat = Workload("chat")
    assert chat.shapes(50, 3, DEFAULT) == chat.shapes(50, 3, DEFAULT)
    assert chat.shapes(50, 3, DEFAULT) != chat.shapes(50, 4, DEFAULT)
    assert chat.shapes(20, 3, DEFAULT) == chat.shapes(50, 3, DEFAULT)[:20]


def test_chat_lengths_vary_stay_in_bounds_and_keep_the_published_means() -> None:
    shapes = Workload("chat").shapes(4000, 11, DEFAULT)
    prompts = [s.prompt_tokens for s in shapes]
    outputs = [s.max_tokens for s in shapes]
    assert all(CHAT_MIN_TOKENS <= p <= CHAT_MAX_INPUT for p in prompts)
    assert all(o >= CHAT_MIN_TOKENS and p + o <= CHAT_MAX_TOTAL
               for p, o in zip(prompts, outputs, strict=True))
    assert all(s.prefix_tokens == 0 for s in shapes)
    assert len(set(prompts)) > 100 and len(set(outputs)) > 100
    # clamping trims the tails a little: the means stay within 10% of the sources'
    assert statistics.mean(prompts) == pytest.approx(CHAT_MEAN_INPUT, rel=0.1)
    assert statistics.mean(outputs) == pytest.approx(CHAT_MEAN_OUTPUT, rel=0.1)
    assert statistics.median(outputs) < statistics.mean(outputs)  # a long tail


@pytest.mark.parametrize("count", [-1, 1_000_001])
def test_a_count_out_of_range_is_a_usage_error(count: int) -> None:
    with pytest.raises(UsageError):
        Workload("chat").shapes(count, 0, DEFAULT)
