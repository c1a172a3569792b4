"""The act tools' sandbox: escapes are refused and counted, nothing lands outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gptoss_doctor.bench.sandbox import Sandbox, ToolFailure, calculate, mock_answer


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "work", {"files": {"a.txt": "alpha"}, "kv": {"k": "v"}})


ESCAPES = [
    pytest.param("../outside.txt", id="a parent path"),
    pytest.param("sub/../../outside.txt", id="a parent path after a folder"),
    pytest.param("/tmp/outside.txt", id="an absolute path"),
    pytest.param("C:/outside.txt", id="a Windows drive"),
    pytest.param("..\\outside.txt", id="a backslashed parent path"),
    pytest.param("", id="an empty path"),
]


@pytest.mark.parametrize("path", ESCAPES)
def test_writes_that_would_escape_are_refused_and_counted(box: Sandbox, tmp_path: Path,
                                                          path: str) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    result = box.call("create_file", {"path": path, "content": "x"})
    assert "refused" in result["error"]
    assert box.refusals and len(box.refusals) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new beside work/
    assert not Path("/tmp/outside.txt").exists() or path != "/tmp/outside.txt"


def test_symlinks_inside_the_sandbox_are_refused(box: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, box.root / "link.txt")
    os.symlink(tmp_path, box.root / "up")
    assert "refused" in box.call("read_file", {"path": "link.txt"})["error"]
    assert "refused" in box.call("create_file", {"path": "up/new.txt", "content": "x"})["error"]
    assert not (tmp_path / "new.txt").exists() and len(box.refusals) == 2
    assert "link.txt" not in box.files()


def test_file_and_key_value_tools_work_inside(box: Sandbox) -> None:
    assert box.call("read_file", {"path": "a.txt"}) == {"content": "alpha"}
    assert box.call("create_file", {"path": "n/b.txt", "content": "beta"})["bytes"] == 4
    assert box.call("list_files", {}) == {"files": ["a.txt", "n/"]}
    assert box.call("list_files", {"path": "n"}) == {"files": ["b.txt"]}
    assert box.call("delete_file", {"path": "a.txt"}) == {"deleted": "a.txt"}
    assert box.files() == {"n/b.txt": "beta"}
    assert box.call("kv_get", {"key": "k"}) == {"value": "v"}
    assert box.call("kv_set", {"key": "x", "value": 3}) == {"stored": True}
    assert box.kv == {"k": "v", "x": "3"}
    assert "no file" in box.call("read_file", {"path": "missing.txt"})["error"]
    assert box.call("read_file", {}) == {"error": "'path'"}  # a missing argument, not a crash
    assert box.refusals == []


@pytest.mark.parametrize(("expression", "value"), [
    pytest.param("987 * 654 + 321", 645819, id="precedence"),
    pytest.param("2 ** 20", 1048576, id="power"),
    pytest.param("2^10", 1024, id="caret as power"),
    pytest.param("-(7 // 2) % 5", 2, id="unary, floor division and modulo"),
    pytest.param("1 / 4", 0.25, id="true division"),
])
def test_calculator(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize("expression", [
    pytest.param("__import__('os').system('true')", id="a function call"),
    pytest.param("1 / 0", id="division by zero"),
    pytest.param("9 ** 999", id="a huge exponent"),
    pytest.param("1 +", id="a syntax error"),
    pytest.param("'a' * 3", id="a string"),
])
def test_calculator_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ToolFailure):
        calculate(expression)


def test_mock_answers_follow_the_call_arguments() -> None:
    weather = {"city": "{city}", "temperature": 18, "unit": "celsius",
               "when": [[{"unit": "fahrenheit"}, {"temperature": 64, "unit": "fahrenheit"}]]}
    assert mock_answer(weather, {"city": "Oslo"}) == {"city": "Oslo", "temperature": 18,
                                                      "unit": "celsius"}
    assert mock_answer(weather, {"city": "Oslo", "unit": "Fahrenheit"})["temperature"] == 64
    assert mock_answer({"label": "{label}"}, {}) == {"label": None}
    assert mock_answer([1, 2], {"x": 1}) == [1, 2]
    rate = {"converted": "{amount*0.924}"}
    assert mock_answer(rate, {"amount": 250}) == {"converted": 231.0}
    assert mock_answer(rate, {"amount": "250"}) == {"converted": None}
