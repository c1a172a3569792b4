"""Redaction (src/gptoss_doctor/redact.py): planted values never survive, kept values do.

The property test plants home paths, user and host names, private, loopback and public
addresses with ports, GPU UUIDs, serial numbers, e-mail addresses and credentials in every
string and every key of every JSON file recorded under tests/fixtures (results files,
snapshots, machine and power traces, crafted completions) and finds none of them in the
redacted copy; redacting that copy again changes nothing.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptoss_doctor import secrets
from gptoss_doctor.bench import results
from gptoss_doctor.redact import Context, redact

FIXTURES = Path(__file__).parent / "fixtures"
DOCUMENTS = sorted(FIXTURES.rglob("*.json"))
RESULTS = sorted((FIXTURES / "results").glob("*.json")) + sorted(
    (FIXTURES / "results-energy").glob("*.json"))
NOBODY = Context()  # no current user: only what the rules find
LOWER = string.ascii_lowercase


def _name(prefix: str) -> st.SearchStrategy[str]:
    """A name that occurs in no fixture (the prefix is in none)."""
    return st.text(LOWER, min_size=5, max_size=9).map(lambda s: prefix + s)


def _token(alphabet: str, size: int) -> st.SearchStrategy[str]:
    # 16 distinct characters first: a token of high entropy (what real ones have) even where
    # hypothesis shrinks the drawn rest to one repeated character
    return st.text(alphabet, min_size=size - 16, max_size=size - 16).map(
        lambda s: "Q7xK9mP2vL4nR8tB" + s)


ALNUM = string.ascii_letters + string.digits
OCTET = st.integers(0, 255)
def _dotted(*parts: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map(lambda t: ".".join(map(str, t)))


PRIVATE_IP = st.one_of(
    _dotted(st.just(10), OCTET, OCTET, OCTET),
    _dotted(st.just(172), st.integers(16, 31), OCTET, OCTET),
    _dotted(st.just(192), st.just(168), OCTET, OCTET),
    _dotted(st.just(169), st.just(254), OCTET, OCTET),
    _dotted(st.just(100), st.integers(64, 127), OCTET, OCTET))
PUBLIC_IP = _dotted(st.integers(11, 99), OCTET, OCTET, st.integers(1, 254))


@st.composite
def plants(draw: st.DrawFn) -> tuple[Context, list[str], list[str]]:
    """(the current user's context, texts to plant, substrings that must not survive)."""
    user, user2, user3, user4, host, host2 = (draw(_name(p)) for p in
                                              ("zqu", "zqw", "zqm", "zqt", "zqh", "zqn"))
    me, my_host, ssh_user = draw(_name("zqme")), draw(_name("zqbox")), draw(_name("zqs"))
    ip, ip2, public = draw(PRIVATE_IP), draw(PRIVATE_IP), draw(PUBLIC_IP)
    port, port2 = draw(st.integers(10000, 65535)), draw(st.integers(10000, 65535))
    uuid = str(draw(st.uuids()))
    serial = str(draw(st.integers(10**11, 10**14)))
    email = f"{draw(_name('zqe'))}@{draw(_name('zqd'))}.com"
    hf = "hf_" + draw(_token(ALNUM, 31))
    sk = "sk-proj-" + draw(_token(ALNUM + "_-", 40))
    aws = "AKIA" + draw(st.text(string.ascii_uppercase + string.digits, min_size=16,
                                 max_size=16))
    ghp = "ghp_" + draw(_token(ALNUM, 33))
    bearer = draw(_token(ALNUM + "._-", 30))
    generic = draw(_token(ALNUM, 24))
    registered = draw(_token(ALNUM, 24))
    secrets.register(registered)
    texts = [
        f"/home/{user}/models/gpt-oss-20b.gguf", f"C:\\Users\\{user2}\\models\\m.gguf",
        f"/Users/{user3}/Library/Caches", f"~{user4}/x", f"\\/home\\/{user}\\/x",
        f"http://{host}.lan:{port}/v1", f"http://{ip}:{port2}/v1", f"{ip2}", f"{public}",
        f"https://{host2}.example.com:{port}/v1", f"[::1]:{port}", f"{ip}:{port2}",
        f"GPU-{uuid}", f"MIG-{uuid.upper()}", f"Serial Number: {serial}", f"serial={serial}",
        f"mail {email}", hf, sk, aws, ghp, f"Authorization: Bearer {bearer}",
        f"api_key={generic}", f'{{"client_secret": "{generic}"}}', registered,
        f"http://admin:{generic}@{public}/", me, f"{me}'s run", f"/srv/{me}/x", my_host,
        f"{my_host}.corp", f"on {host}.internal", f"ssh {ssh_user}@{ip2}"]
    forbidden = [user, user2, user3, user4, host, host2, ip, ip2, public, f":{port}",
                 f":{port2}", uuid, uuid.upper(), serial, email, hf, sk, aws, ghp, bearer,
                 generic, registered, me, my_host, ssh_user]
    return Context(users=(me,), homes=(f"/srv/{me}",), hostnames=(my_host,)), texts, forbidden


def _planted(value: Any, texts: list[str], counter: list[int]) -> Any:
    """``value`` with one planted text appended to every string and every key (in turn)."""
    def plant(text: str) -> str:
        counter[0] += 1
        return f"{text} {texts[counter[0] % len(texts)]}"

    if isinstance(value, str):
        return plant(value)
    if isinstance(value, list):
        return [_planted(item, texts, counter) for item in value]
    if isinstance(value, dict):
        return {plant(key): _planted(item, texts, counter) for key, item in value.items()}
    return value


def _text(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plants(), st.sampled_from(DOCUMENTS), st.integers(0, 31))
def test_nothing_planted_survives(planted: tuple[Context, list[str], list[str]], path: Path,
                                  offset: int) -> None:
    context, texts, forbidden = planted
    original = json.loads(path.read_text(encoding="utf-8"))
    for value in forbidden:
        if value in _text(original):
            return  # a drawn address that the fixture already holds: nothing to learn
    try:
        document = _planted(original, texts, [offset])
        redacted = redact(document, context)
        shown = _text(redacted.document) + "\n".join(redacted.removed)
        assert [value for value in forbidden if value in shown] == []
        again = redact(redacted.document, context)
        assert again.document == redacted.document
        assert again.removed == ()
    finally:
        secrets.forget_all()


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_redacted_results_still_load_and_compare_the_same(path: Path, tmp_path: Path) -> None:
    """Redaction keeps what makes runs comparable: the file loads and its key properties
    (the comparison key) are unchanged."""
    record = results.load(path)
    redacted = redact(record, Context(users=("zqnobody",), homes=("/root",)))
    target = tmp_path / "redacted.json"
    target.write_text(json.dumps(redacted.document), encoding="utf-8")
    loaded = results.load(target)
    assert loaded["key_properties"] == record["key_properties"]
    assert results.key_properties(loaded) == results.key_properties(record)
    assert loaded["tests" if "tests" in loaded else "scores"] == record[
        "tests" if "tests" in record else "scores"]


def test_the_lm_studio_fixture_loses_its_home_folder_and_its_server_address() -> None:
    record = json.loads((FIXTURES / "results" / "endpoint-lmstudio-fake.json").read_text())
    redacted = redact(record, NOBODY)
    assert redacted.document["endpoint"]["url"] == "http://<loopback>/v1"
    assert redacted.document["machine"]["disk"]["path"] == "<home>/.cache/gptoss-doctor/models"
    assert redacted.removed == ("machine.disk.path: home directory",
                                "endpoint.url: host name and port")


@pytest.mark.parametrize("text", [
    pytest.param("openai/gpt-oss-20b", id="a public repository id"),
    pytest.param("ggml-org/gpt-oss-120b-GGUF", id="a GGUF repository id"),
    pytest.param("NVIDIA GeForce RTX 4090", id="an accelerator name"),
    pytest.param("AMD Ryzen AI Max+ 395 w/ Radeon 8060S", id="a CPU name"),
    pytest.param("Apple M3 Pro", id="an Apple chip"),
    pytest.param("550.54.15", id="a driver version"),
    pytest.param("32.0.15.6094", id="a four-part Windows driver version"),
    pytest.param("mlx 0.21.1.0", id="a four-part version that could be an address"),
    pytest.param("6.18.44-fc-v857", id="a kernel release"),
    pytest.param("b6123 (llama.cpp)", id="a llama.cpp build"),
    pytest.param("fake-openai/1.0 Python/3.11.7", id="a server header"),
    pytest.param("Debian GNU/Linux 12 (bookworm)", id="a distribution"),
    pytest.param("Ubuntu 24.04", id="a distribution named like a default account"),
    pytest.param("00000000:01:00.0", id="a PCI bus id"),
    pytest.param("2026-12-01T21:36:36+00:00", id="a timestamp"),
    pytest.param("pp512 @ d4096", id="a test name"),
    pytest.param("a" * 64, id="a sha256 digest"),
    pytest.param("3f0d01a" + "0" * 33, id="a git commit"),
    pytest.param("https://huggingface.co/openai/gpt-oss-20b/resolve/main/x.gguf",
                 id="a Hub URL"),
    pytest.param("https://api.openai.com:443/v1", id="a public service URL with its port"),
    pytest.param("FIXTURE_KEY", id="the name of an API key's variable"),
    pytest.param("max_tokens=4096 tokenizer=openai/gpt-oss-20b", id="settings named token"),
    pytest.param("serial console on ttyS0", id="the word serial"),
    pytest.param("Basic understanding of the task", id="the word Basic"),
    pytest.param("~/models and ~5 tok/s", id="a tilde without a user"),
    pytest.param("/usr/local/bin/llama-server", id="a system path"),
    pytest.param("/home", id="the home root alone"),
    pytest.param("std::vector and 12:30:45", id="colons that are not IPv6"),
])
def test_kept(text: str) -> None:
    redacted = redact({"field": text, text: 1}, NOBODY)
    assert redacted.document == {"field": text, text: 1}
    assert redacted.removed == ()


@pytest.mark.parametrize(("text", "expected", "what"), [
    pytest.param("/home/alice/m.gguf and alice", "<home>/m.gguf and <user>",
                 ("home directory", "user name"), id="a home folder and its user elsewhere"),
    pytest.param("C:\\Users\\John Smith\\m.gguf", "<home>\\m.gguf", ("home directory",),
                 id="a Windows home with a space"),
    pytest.param("/mnt/c/Users/bob/m", "<home>/m", ("home directory",), id="a WSL path"),
    pytest.param("/root/.cache", "<home>/.cache", ("home directory",), id="root's home"),
    pytest.param("http://u:pw@10.1.2.3:8080/v1", "http://<secret>@<private-ip>/v1",
                 ("host name and port",), id="credentials, a private address and a port"),
    pytest.param("http://[fe80::1]:1234/x", "http://<private-ip>/x", ("host name and port",),
                 id="a link-local IPv6 URL"),
    pytest.param("http://localhost:1234/v1", "http://<loopback>/v1", ("host name and port",),
                 id="localhost"),
    pytest.param("https://llm.example.com/v1", "https://<host>/v1", ("host name and port",),
                 id="a host that is not a public service"),
    pytest.param("at 8.8.8.8", "at <ip>", ("IP address",), id="a public address"),
    pytest.param("aa:bb:cc:dd:ee:ff", "<mac>", ("MAC address",), id="a MAC address"),
    pytest.param("Authorization: Bearer abc123def456", "Authorization: Bearer <secret>",
                 ("secret",), id="a bearer token"),
    pytest.param("serial_number=PX12345", "serial_number=<serial>", ("serial number",),
                 id="a board serial"),
    pytest.param("ssh zqalice@10.0.0.5", "ssh <user>@<private-ip>", ("IP address", "user name"),
                 id="ssh's user at a private host"),
])
def test_removed(text: str, expected: str, what: tuple[str, ...]) -> None:
    redacted = redact({"f": text}, NOBODY)
    assert redacted.document == {"f": expected}
    assert redacted.removed == tuple(f"f: {w}" for w in what)


def test_values_under_telling_keys_are_replaced_and_colliding_keys_both_kept() -> None:
    document = {"headers": {"authorization": "Token abc", "x-api-key": "k",
                            "server": "llama.cpp"},
                "gpu": {"uuid": "not-a-uuid-shape", "serial": "0324"},
                "api_key_env": "OPENAI_API_KEY", "/home/a/x": 1, "/home/b/x": 2}
    redacted = redact(document, NOBODY)
    assert redacted.document == {
        "headers": {"authorization": "<secret>", "x-api-key": "<secret>",
                    "server": "llama.cpp"},
        "gpu": {"uuid": "<uuid>", "serial": "<serial>"},
        "api_key_env": "OPENAI_API_KEY", "<home>/x": 1, "<home>/x'": 2}
    assert "headers.authorization: secret" in redacted.removed
    assert "key 4: home directory" in redacted.removed


def test_the_current_users_home_and_names_are_found_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/srv/zqdev")
    monkeypatch.setenv("USER", "zqdev")
    monkeypatch.setenv("HOSTNAME", "zqbox.example.org")
    redacted = redact(["/srv/zqdev/models", "/srv/zqdevx", "ZQDEV on zqbox"])
    assert redacted.document == ["<home>/models", "/srv/zqdevx", "<user> on <host>"]


def test_a_user_named_like_an_engine_leaves_the_engine_names() -> None:
    context = Context(users=("llama",), homes=("/home/llama",), hostnames=("gpu",))
    redacted = redact(["/home/llama/m.gguf", "llama.cpp b6123 on gpu 0", "gpt-oss-20b"],
                      context)
    assert redacted.document == ["<home>/m.gguf", "llama.cpp b6123 on gpu 0", "gpt-oss-20b"]


@pytest.mark.parametrize("text", [
    pytest.param("a-" * 20_000 + "=", id="hyphenated words before an equals sign"),
    pytest.param("a." * 20_000 + ":", id="dotted words before a colon"),
    pytest.param("a-" * 20_000 + "@", id="hyphenated words before an at sign"),
    pytest.param("\\" * 40_000 + "users", id="backslashes before users"),
    pytest.param("\\/" * 20_000, id="escaped slashes"),
    pytest.param("serial" + " " * 40_000, id="spaces after serial"),
    pytest.param("C:\\Users\\" + "a " * 20_000, id="a Windows home of many words"),
    pytest.param("1:" * 20_000 + "::", id="colons and digits"),
    pytest.param("Bearer " * 10_000, id="bearer without a token"),
])
def test_long_hostile_texts_are_read_in_one_pass(text: str) -> None:
    """Texts a results file may hold (up to 1 MiB each) that make a careless pattern
    backtrack for hours (each repetition that may start anywhere is bounded): they come
    back as they were, or with only the home folder replaced."""
    redacted = redact(text, NOBODY).document
    assert redacted == text or redacted.startswith("<home>")


@pytest.mark.parametrize("name", ["doctor", "gptoss", "local"])
def test_a_user_named_like_a_schema_word_leaves_results_loadable(name: str,
                                                                  tmp_path: Path) -> None:
    context = Context(users=(name,), homes=(f"/home/{name}",), hostnames=(name,))
    redacted = redact(results.load(FIXTURES / "results" / "endpoint-lmstudio-fake.json"),
                      context).document
    target = tmp_path / "run.json"
    target.write_text(json.dumps(redacted), encoding="utf-8")
    assert results.load(target)["kind"] == "gptoss-doctor/results"


def test_the_input_is_not_changed() -> None:
    document = {"a": ["/home/alice/x"]}
    redact(document, NOBODY)
    assert document == {"a": ["/home/alice/x"]}
