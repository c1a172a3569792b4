"""The quirk line says when quirks cannot be seen: a server parsed the calls."""

from __future__ import annotations

from gptoss_doctor.reports.tables import quirks_line


def record(renderer: str, quirks: dict[str, int]) -> dict[str, object]:
    return {"config": {"renderer": renderer}, "scores": {"overall": {"quirks": quirks}}}


def test_in_process_runs_list_their_quirks() -> None:
    assert quirks_line(record("openai-harmony", {})) is None
    assert quirks_line(record("openai-harmony", {"call_on_final": 2})) == \
        "harmony quirks (tolerated): call_on_final 2"


def test_server_parsed_runs_say_strict_is_pass() -> None:
    line = quirks_line(record("server", {}))
    assert line is not None and line.startswith("strict = pass: the server parsed the calls")
