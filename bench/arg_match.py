"""Argument matching for the tool-use grader: is a call's argument what the case accepts?

A case lists, per argument, the accepted values (``tool_suite.ExpectedCall``): plain values,
compared after ``norm_text`` (Unicode NFKC, case folding, digit groups joined, punctuation
dropped as BFCL does), ``None`` for "may be left out" (null and "" count as left out when
the schema does not require the argument), and rules for what a list cannot hold — a place
with the qualifiers that may follow it, free text the user never dictated, an arithmetic
expression by its value. docs/tool-grading.md, "Arguments", gives the reasons.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from gptoss_doctor.bench.sandbox import calculate
from gptoss_doctor.bench.tool_suite import ExpectedCall

_DIGIT_GROUPS = re.compile(r"(?<=\d)[ ,'\u2019_](?=\d{3}(?!\d))")
_PIECES = re.compile(r"\d+(?:\.\d+)+|[^\W_]+|[-+*/%^=<>]")
_NUMBER = re.compile(r"-? ?\d+(?:\.\d+)?")


def norm_text(text: str) -> str:
    """``text`` as argument matching compares it (docs/tool-grading.md, "Arguments"):
    Unicode NFKC (thin and no-break spaces become spaces, full-width forms plain),
    case-folded, digit groups joined ("645 819" and "645,819" are "645819"), and only
    words, numbers and arithmetic operators kept, one space apart: other punctuation and
    white space go, as in BFCL's string normalisation. Keeping operators keeps
    "(1234 * 5678)" equal to "1234*5678" and apart from "12345678"."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PIECES.findall(_DIGIT_GROUPS.sub("", folded)))


def _number(text: str) -> float | None:
    """The value of a normalised text that is one number ("- 5", "1048576.0"), else None."""
    if not _NUMBER.fullmatch(text):
        return None
    return float(text.replace(" ", ""))


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        text = norm_text(value)
        number = _number(text)
        return text if number is None else number
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _place_matches(rule: dict[str, Any], value: Any) -> bool:
    """A place given with qualifiers the case allows: "Paris, FR", "Phoenix, AZ, US"."""
    if not isinstance(value, str):
        return False
    name, *qualifiers = value.split(",")
    allowed = {norm_text(q) for q in rule.get("in", ())}
    return norm_text(name) in {norm_text(n) for n in rule["place"]} \
        and all(norm_text(q) in allowed for q in qualifiers)


def _value_matches(accepted: Any, value: Any) -> bool:
    """Whether ``value`` is what ``accepted`` allows: a value (normalised), or a rule —
    ``{"type": "string"}`` any text (free text the user did not dictate), ``{"place": [...],
    "in": [...]}`` a place with allowed qualifiers, ``{"evaluates_to": N}`` an arithmetic
    expression worth N."""
    if not isinstance(accepted, dict):
        return bool(_norm(value) == _norm(accepted))
    if "type" in accepted:
        return isinstance(value, str) and bool(value.strip())
    if "place" in accepted:
        return _place_matches(accepted, value)
    if "evaluates_to" in accepted and isinstance(value, str):
        try:
            got, wanted = float(calculate(value)), float(accepted["evaluates_to"])
        except Exception:  # the calculator refuses or fails: not that value
            return False
        return abs(got - wanted) <= 1e-9 * max(1.0, abs(wanted))  # 0.17 * 2350 is 399.5
    return False


def args_mismatch(expected: ExpectedCall, args: dict[str, Any]) -> str | None:
    """None when ``args`` are among the accepted values, else what differs."""
    for key in args:
        if key not in expected.args:
            return f"unexpected argument {key!r}"
    for key, accepted in expected.args.items():
        if key not in args and None in accepted:
            continue
        if not any(a is not None and _value_matches(a, args.get(key)) for a in accepted):
            return f"{key}={args.get(key)!r}, expected one of {list(accepted)!r}"
    return None


def without_empty_optionals(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``args`` less the optional ones given as null or "": the same as leaving them out."""
    required = set(schema.get("required", ()))
    return {k: v for k, v in args.items() if k in required or v not in (None, "")}
