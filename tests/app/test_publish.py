"""``gptoss-doctor publish``: a site from every recorded suite, duplicates once, a newer schema
refused, unreadable files skipped, planted private values absent, written atomically."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gptoss_doctor.app import publish
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.bench import results
from gptoss_doctor.cli import main
from gptoss_doctor.errors import UsageError

from conftest import FIXTURES

RECORDED = sorted([*FIXTURES.glob("results/*.json"), *FIXTURES.glob("results-energy/*.json"),
                   *FIXTURES.glob("results-publish/*.json")])
CSP = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
       "style-src 'unsafe-inline'; img-src data:\">")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["publish", *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def site_files(site: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(site.rglob("*")):
        if path.is_file():
            yield path, path.read_text(encoding="utf-8")


def test_a_site_from_every_recorded_suite(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    code, out, _ = run_cli(capsys, *map(str, RECORDED), "-o", str(site), "--json")
    assert code == 0
    made = json.loads(out)
    index = json.loads((site / "index.json").read_text())
    assert made["runs"] == len(RECORDED) == len(index["runs"]) and made["skipped"] == []
    assert index["kind"] == publish.SITE_KIND and index["redacted"] is True
    engines = {(run["engine"], run["suite"]) for run in index["runs"]}
    assert {("llama.cpp", "speed"), ("llama.cpp", "tools"), ("mlx", "speed"),
            ("endpoint", "speed")} <= engines
    assert any(run["build"] == "llama.cpp" for run in index["runs"])  # llama-server's own
    in_groups = sorted(i for g in index["groups"] for i in g["runs"])
    assert in_groups == sorted(run["id"] for run in index["runs"])
    page = (site / "index.html").read_text()
    for run in index["runs"]:
        assert (site / run["page"]).is_file() and f'href="{run["page"]}"' in page
    for group in index["groups"]:
        assert (site / group["page"]).is_file() and f'href="{group["page"]}"' in page
    pages = [text for path, text in site_files(site) if path.suffix == ".html"]
    assert len(pages) == len(index["runs"]) + len(index["groups"]) + 1
    for text in pages:  # the report's policy; no script runs (the records are JSON data)
        assert CSP in text
        assert re.findall(r"<script(?![^>]*application/json)", text) == []
    assert "Generation speed against memory bandwidth" in page and page.count("<svg") >= 1
    assert not list(tmp_path.glob(".site*"))  # no building folder left


def test_the_same_run_twice_appears_once(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    original = FIXTURES / "results" / "synthetic-tiny-cpu.json"
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(json.loads(original.read_text())))  # same content, new bytes
    code, out, _ = run_cli(capsys, str(original), str(copy), str(original), "-o",
                           str(tmp_path / "site"), "--json")
    assert code == 0 and json.loads(out)["runs"] == 1 and json.loads(out)["duplicates"] == 2


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    newer = json.loads((FIXTURES / "results" / "synthetic-tiny-cpu.json").read_text())
    newer["schema_version"] = results.SCHEMA_VERSION + 1
    (tmp_path / "new.json").write_text(json.dumps(newer))
    code, _, err = run_cli(capsys, str(RECORDED[0]), str(tmp_path / "new.json"), "-o",
                           str(tmp_path / "site"))
    assert code == 2 and "upgrade gptoss-doctor" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "site").exists()
    assert not list(tmp_path.glob(".site*"))


def test_unreadable_files_are_named_and_skipped(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"kind": "something else"}))
    code, out, err = run_cli(capsys, str(tmp_path / "broken.json"), str(RECORDED[0]),
                             str(tmp_path / "other.json"), "-o", str(tmp_path / "site"),
                             "--json")
    assert code == 1 and json.loads(out)["runs"] == 1 and len(json.loads(out)["skipped"]) == 2
    assert "broken.json" in err and "other.json" in err and "Traceback" not in err
    assert (tmp_path / "site" / "index.html").is_file()
    code, _, err = run_cli(capsys, str(tmp_path / "broken.json"), "-o", str(tmp_path / "s2"))
    assert code == 2 and "none of the results files could be read" in err
    assert not (tmp_path / "s2").exists()


PLANTED = {"alice": "/home/alice/projects/x", "10.1.2.3": "http://10.1.2.3:8080/v1",
           "3f2c6a1e-9b7d-4c55-8e21-0a9f5d3b7c64": "GPU-3f2c6a1e-9b7d-4c55-8e21-0a9f5d3b7c64",
           "hf_Zq8XkP2mRt5VwY7nB3cL9dF4gH6jK1sA": "token hf_Zq8XkP2mRt5VwY7nB3cL9dF4gH6jK1sA",
           "gpu-box.lan": "gpu-box.lan"}


def _strings(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
    elif isinstance(value, str):
        yield path


def planted(record: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``record`` with the planted values appended to every string the schema lets hold
    them (an enum or a pattern does not), and how many strings that was."""
    validator = jsonschema.Draft202012Validator(results.schema())
    assert validator.is_valid(record)
    text = " ".join(PLANTED.values())
    count = 0
    for path in list(_strings(record)):
        *parents, last = path
        holder = record
        for part in parents:
            holder = holder[part]
        before = holder[last]
        holder[last] = f"{before} {text}"
        if validator.is_valid(record):
            count += 1
        else:
            holder[last] = before
    return record, count


@pytest.mark.parametrize("name", ["synthetic-20b-cpu-2threads.json",
                                  "endpoint-lmstudio-fake.json"])
def test_planted_paths_addresses_and_secrets_never_reach_the_site(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    record, count = planted(results.load(FIXTURES / "results" / name))
    assert count > 20
    source = tmp_path / "planted.json"
    source.write_text(json.dumps(record))
    code, out, _ = run_cli(capsys, str(source), "-o", str(tmp_path / "site"), "--json")
    assert code == 0 and json.loads(out)["removed"]
    for path, text in site_files(tmp_path / "site"):
        for marker in PLANTED:
            assert marker not in text, f"{marker} in {path.name}"
    assert "Redacted before publishing" in (tmp_path / "site" / "index.html").read_text()
    code, _, _ = run_cli(capsys, str(source), "-o", str(tmp_path / "raw"), "--no-redact")
    raw = "".join(text for _, text in site_files(tmp_path / "raw"))
    assert code == 0 and "/home/alice/projects" in raw and "10.1.2.3" in raw  # opted out
    assert "hf_Zq8XkP2mRt5VwY7nB3cL9dF4gH6jK1sA" not in raw  # secrets are scrubbed anyway


def test_a_folder_that_is_not_a_site_is_never_replaced(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    code, _, err = run_cli(capsys, str(RECORDED[0]), "-o", str(documents))
    assert code == 2 and "holds something else" in err
    assert (documents / "thesis.txt").read_text() == "years of work"


def test_republishing_replaces_the_old_site_whole(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    site = tmp_path / "out" / "site"
    assert run_cli(capsys, str(RECORDED[0]), str(RECORDED[1]), "-o", str(site))[0] == 0
    before = {p.name for p in (site / "runs").iterdir()}
    assert run_cli(capsys, str(RECORDED[2]), "-o", str(site))[0] == 0
    after = {p.name for p in (site / "runs").iterdir()}
    assert len(before) == 2 and len(after) == 1 and not before & after
    assert sorted(p.name for p in site.parent.iterdir()) == ["site"]


class FailingPages(dict[str, str]):
    """Pages whose writing fails half way, as a full disk would."""

    def items(self) -> Any:
        for number, item in enumerate(super().items()):
            if number == 2:
                raise OSError(28, "No space left on device")
            yield item


def test_a_failed_build_leaves_the_old_site_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    site = tmp_path / "out" / "site"
    old = {"index.html": "old", "index.json": json.dumps({"kind": publish.SITE_KIND})}
    publish.write_site(site, old, Silent())
    pages = FailingPages({"index.html": "new", "runs/a.html": "a", "runs/b.html": "b",
                          "index.json": "{}"})
    with pytest.raises(OSError):
        publish.write_site(site, pages, Silent())
    assert (site / "index.html").read_text() == "old" and not (site / "runs").exists()
    assert sorted(p.name for p in site.parent.iterdir()) == ["site"]


def test_no_files_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="give at least one results file"):
        publish.collect(publish.PublishOptions((), tmp_path / "site"), Silent())


def test_a_conformance_run_gets_its_page_and_its_checks_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recorded = FIXTURES / "results-conformance" / "llama-server-tiny.json"
    statuses = [c["status"] for c in results.load(recorded)["conformance"]["checks"]]
    code, out, _ = run_cli(capsys, str(recorded), str(RECORDED[0]), "-o", str(tmp_path / "site"),
                           "--json")
    assert code == 0 and json.loads(out)["runs"] == 2 and json.loads(out)["left_out"] == []
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    [run] = [r for r in index["runs"] if r["suite"] == "conformance"]
    assert run["conformance_checks"] == {s: statuses.count(s) for s in set(statuses)}
    assert "server conformance report" in (tmp_path / "site" / run["page"]).read_text()
    shown = ", ".join(f"{n} {s}" for s, n in sorted(run["conformance_checks"].items()))
    assert f"checks: {shown}" in (tmp_path / "site" / "index.html").read_text()


def test_a_run_of_another_suite_is_left_out_with_a_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "SHOWN_SUITES", ("speed",))
    code, out, err = run_cli(capsys, str(FIXTURES / "results" / "synthetic-tiny-tools.json"),
                             str(RECORDED[0]), "-o", str(tmp_path / "site"), "--json")
    assert code == 0 and json.loads(out)["runs"] == 1 and "synthetic-tiny-tools.json" in err
    assert len(json.loads(out)["left_out"]) == 1


def test_hostile_names_are_escaped_on_every_page(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    record = results.load(FIXTURES / "results" / "synthetic-tiny-cpu.json")
    record["machine"] = json.loads((FIXTURES / "snapshots" / "rtx4090-24gb.json").read_text())
    record["machine"]["gpus"][0]["name"] = "<script>alert(1)</script>\u202e"
    record["config"]["settings_source"] = "<img src=x onerror=alert(2)>"
    (tmp_path / "hostile.json").write_text(json.dumps(record))
    code, _, _ = run_cli(capsys, str(tmp_path / "hostile.json"), "-o", str(tmp_path / "site"))
    assert code == 0
    pages = [text for path, text in site_files(tmp_path / "site") if path.suffix == ".html"]
    assert len(pages) == 3 and "&lt;script&gt;alert(1)" in pages[0] + pages[1]
    for text in pages:
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "\u202e" not in text.split('id="gptoss-results"')[0]  # shown visibly escaped


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_cannot_hold_a_site_is_one_line(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    code, _, err = run_cli(capsys, str(RECORDED[0]), "-o", "/proc/site")
    assert code == 2 and err.strip() == "gptoss-doctor: error: cannot write in /proc: " \
        "No such file or directory"
