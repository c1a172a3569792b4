"""``lms`` output that Python's own parsers choke on: a JSON integer of more digits than
Python converts (ValueError, not JSONDecodeError) and a size too large for a float. Each is
one LmsError line or "not there", never an exception from the parser. The shapes are those
of tests/fixtures/fake_lms.py's answers (``lms ps --json``, ``lms ls --json``, ``lms server
status --json``, ``lms load --estimate-only``), with the numbers blown up."""

from __future__ import annotations

import pytest

from gptoss_doctor.install import lmstudio as lms

HUGE = "9" * 5000  # Python refuses int() of more than 4300 digits


def test_a_server_status_with_a_huge_port_is_one_line() -> None:
    with pytest.raises(lms.LmsError) as caught:
        lms.parse_server_status(f'{{"running": true, "port": {HUGE}}}')
    assert "did not answer" in caught.value.message


def test_a_model_list_with_a_huge_size_is_no_model() -> None:
    text = f'[{{"modelKey": "openai/gpt-oss-20b", "format": "gguf", "sizeBytes": {HUGE}}}]'
    assert lms.downloaded(text, "openai/gpt-oss-20b", mlx=False) is False


@pytest.mark.parametrize("size", ["9" * 400, "1" + "0" * 320])
def test_an_estimate_too_large_for_a_float_is_unknown(size: str) -> None:
    assert lms.parse_size(f"{size} GiB") is None
    with pytest.raises(lms.LmsError) as caught:
        lms.parse_estimate(f"Estimated GPU Memory: {size} GiB\n"
                           f"Estimated Total Memory: {size} GiB\n")
    assert caught.value.kind == "unreadable"


def test_a_guardrail_refusal_with_an_absurd_figure_is_still_one_line() -> None:
    ran = lms.Ran(("lms", "load", "x"), 1, "", "Error: insufficient system resources: "
                  f"requires approximately {'9' * 400} GiB", 0.1, False)
    error = lms.classify(ran, "load")
    assert error.kind == "guardrail" and "GiB" not in error.message
