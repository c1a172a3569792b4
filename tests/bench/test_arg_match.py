"""Argument matching: normalisation, null and empty optionals, places, free text, values."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_doctor.bench.arg_match import args_mismatch, norm_text, without_empty_optionals
from gptoss_doctor.bench.tool_suite import ExpectedCall

NORMALISED = [
    pytest.param("See you at noon.", "see you at noon", id="trailing punctuation goes"),
    pytest.param("Ｐａｒｉｓ", "paris", id="full-width letters are plain letters under NFKC"),
    pytest.param("Mu\u0308nchen", "münchen", id="a combining accent composes under NFKC"),
    pytest.param("645\u202f819", "645819", id="a narrow no-break space groups digits"),
    pytest.param("645\u2009819", "645819", id="a thin space groups digits"),
    pytest.param("645,819", "645819", id="a comma groups digits"),
    pytest.param("(1234*5678)", "1234 * 5678", id="operators stay, parentheses go"),
    pytest.param("1.5", "1.5", id="a decimal point stays"),
]


@pytest.mark.parametrize(("text", "expected"), NORMALISED)
def test_norm_text(text: str, expected: str) -> None:
    assert norm_text(text) == expected


CITY = ExpectedCall("get_weather", {"city": ({"place": ["Paris"], "in": ["France", "FR"]},),
                                    "unit": (None, "celsius", "fahrenheit")})
MATCHES = [
    pytest.param(CITY, {"city": "Paris, FR"}, True, id="a country code after the city"),
    pytest.param(CITY, {"city": "paris, france"}, True, id="a country name after the city"),
    pytest.param(CITY, {"city": "Paris, Texas"}, False, id="a qualifier the case does not allow"),
    pytest.param(CITY, {"city": "Lyon"}, False, id="another city"),
    pytest.param(CITY, {"city": "Paris", "unit": "fahrenheit"}, True,
                 id="any unit where the user named none"),
    pytest.param(CITY, {"city": "Paris", "wind": True}, False, id="an argument not asked for"),
    pytest.param(ExpectedCall("set_timer", {"minutes": (5,), "label": (None, {"type": "string"})}),
                 {"minutes": 5, "label": "5-minute reminder"}, True,
                 id="free text the user never gave is checked for type only"),
    pytest.param(ExpectedCall("set_timer", {"minutes": (5,)}), {"minutes": 5.0}, True,
                 id="numbers compare by value"),
    pytest.param(ExpectedCall("kv_set", {"value": ("1048576",)}), {"value": "1,048,576"}, True,
                 id="a numeric string compares by value"),
    pytest.param(ExpectedCall("calculate", {"expression": ({"evaluates_to": 42},)}),
                 {"expression": "(6 * 7)"}, True, id="an expression by its value"),
    pytest.param(ExpectedCall("calculate", {"expression": ({"evaluates_to": 42},)}),
                 {"expression": "6 + 7"}, False, id="an expression of another value"),
    pytest.param(ExpectedCall("calculate", {"expression": ({"evaluates_to": 42},)}),
                 {"expression": "__import__('os')"}, False, id="what the calculator refuses"),
]


@pytest.mark.parametrize(("expected", "args", "ok"), MATCHES)
def test_args_mismatch(expected: ExpectedCall, args: dict[str, Any], ok: bool) -> None:
    assert (args_mismatch(expected, args) is None) is ok


def test_null_and_empty_optionals_are_left_out_but_required_ones_are_kept() -> None:
    schema = {"type": "object", "required": ["city"]}
    assert without_empty_optionals({"city": "", "unit": None, "days": ""}, schema) == {"city": ""}
