"""Server conformance (``bench conformance``): the checks on constructed answers, the whole
command against the misbehaving test server (tests/openai_server.py) for failures real
servers do not produce on demand, and llama.cpp's own server (xllamacpp, mark
``xllamacpp``) on the tiny synthetic gpt-oss, forced to write exact harmony.

llama-cpp-python's own server (marks ``llama`` and ``server``) is checked the same way.

The constructed answers are written here in the shapes the OpenAI Chat Completions API
documents (``message.tool_calls``, ``delta.reasoning_content`` as llama.cpp sends it); the
leaked-markup answer is what llama.cpp's server (xllamacpp 2026.10.11549) returned here for
a call the model wrote on the analysis channel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.bench import conformance as c
from gptoss_doctor.bench import conformance_probes as probe
from gptoss_doctor.bench import results

from conftest import llama_cpp_python_server as llama_cpp_server
from openai_server import ServerState, serve

GOOD_REASON = {"role": "assistant", "content": "Hello there.",
               "reasoning_content": "Think about it."}
GOOD_CALL = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "c1", "type": "function",
     "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}}]}
LEAKED = " to=functions.get_weather<|channel|>analysisaryary"  # recorded from llama.cpp


def answer(message: dict[str, Any], status: int = 200) -> probe.Answer:
    return probe.Answer(status, {"choices": [{"index": 0, "message": message,
                                          "finish_reason": "stop"}]})


def streamed(reasoning: list[str], content: list[str],
             calls: dict[int, dict[str, str]] | None = None) -> probe.Streamed:
    return probe.Streamed(200, content, reasoning, calls or {}, len(calls or {}), "stop")


def rendered(effort: str) -> probe.Answer:
    return probe.Answer(200, {"prompt": f"<|start|>system<|message|>Reasoning: {effort}<|end|>"})


def probes(**changes: Any) -> probe.Probes:
    fields: dict[str, Any] = {
        "reason": answer(GOOD_REASON),
        "reason_stream": streamed(["Think", " about", " it."], ["Hello", " there."]),
        "call": answer(GOOD_CALL),
        "call_stream": streamed([], [], {0: {"name": "get_weather",
                                             "arguments": '{"location": "Paris"}'}}),
        "tool_result": answer({"role": "assistant", "content": "It is 21 C in Paris."}),
        "rendered_tool_result": None,
        "effort": {api: {e: probe.Answer(200, {"choices": []}) for e in probe.EFFORTS}
                   for api in ("reasoning_effort", "template_kwargs", "responses")},
        "rendered": False}
    fields.update(changes)
    return probe.Probes(**fields)


def verdicts(p: probe.Probes) -> dict[str, str]:
    return {v.check: v.status for v in c.evaluate(p)}


def test_a_server_that_speaks_harmony_passes_what_it_shows_and_the_rest_is_not_checked(
        ) -> None:
    found = verdicts(probes())
    assert list(found) == list(c.CHECKS)
    assert {k for k, v in found.items() if v == "pass"} == {
        "reasoning_field", "reasoning_streamed", "no_markup", "header_call_parsed",
        "call_streamed", "tool_names_clean", "tool_result_accepted"}
    # no rendered prompt: neither the reasoning sent back nor the effort can be seen
    assert {k for k, v in found.items() if v == "not_checked"} == {
        "reasoning_sent_back", "effort_reasoning_effort", "effort_template_kwargs",
        "effort_responses"}


def test_reasoning_inside_content_fails_both_reasoning_checks_and_the_markup_check() -> None:
    raw = ("<|channel|>analysis<|message|>Think about it.<|end|><|start|>assistant"
           "<|channel|>final<|message|>Hello there.")
    found = verdicts(probes(reason=answer({"role": "assistant", "content": raw}),
                            reason_stream=streamed([], ["analysis", "Think about it.",
                                                        "assistantfinal", "Hello there."])))
    assert found["reasoning_field"] == found["reasoning_streamed"] == "fail"
    assert found["no_markup"] == "fail"


def test_reasoning_sent_in_one_piece_is_not_streamed() -> None:
    found = verdicts(probes(reason_stream=streamed(["Think about it at length."],
                                                   ["Hello there."])))
    assert found["reasoning_streamed"] == "fail"


def test_a_model_that_wrote_no_reasoning_is_not_checked_never_passed() -> None:
    found = verdicts(probes(reason=answer({"role": "assistant", "content": "Hi."}),
                            reason_stream=streamed([], ["Hi."])))
    assert found["reasoning_field"] == found["reasoning_streamed"] == "not_checked"


def test_markup_in_tool_names_and_calls_left_as_text_fail() -> None:
    bad = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
           "function": {"name": "get_weather<|channel|>commentary",
                        "arguments": '{"location": "Paris"}'}}]}
    found = verdicts(probes(call=answer(bad), call_stream=streamed([], [LEAKED])))
    assert found["header_call_parsed"] == "fail"
    assert found["tool_names_clean"] == "fail"
    assert found["call_streamed"] == "fail"
    assert found["no_markup"] == "fail"
    evidence = {v.check: v.evidence for v in c.evaluate(probes(call=answer(
        {"role": "assistant", "content": LEAKED})))}
    assert "the call came back as text" in evidence["header_call_parsed"]


def test_a_refused_tool_result_fails_and_a_server_error_is_not_checked() -> None:
    assert verdicts(probes(tool_result=probe.Answer(400, None, "bad tool message"))
                    )["tool_result_accepted"] == "fail"
    assert verdicts(probes(tool_result=probe.Answer(500, None, "output does not parse"))
                    )["tool_result_accepted"] == "not_checked"


def test_rendered_prompts_show_whether_effort_and_reasoning_reach_the_template() -> None:
    honoured = {e: rendered(e) for e in probe.EFFORTS}
    ignored = {e: rendered("medium") for e in probe.EFFORTS}
    back = probe.Answer(200, {"prompt": f"...{probe.REASONING_BACK}...temperature_c..."})
    found = verdicts(probes(rendered=True, rendered_tool_result=back, effort={
        "reasoning_effort": honoured, "template_kwargs": ignored,
        "responses": {e: probe.Answer(404, None, "not found") for e in probe.EFFORTS}}))
    assert found["effort_reasoning_effort"] == "pass"
    assert found["effort_template_kwargs"] == "fail"
    assert found["effort_responses"] == "not_checked"  # no Responses API
    assert found["reasoning_sent_back"] == "pass"
    dropped = probe.Answer(200, {"prompt": "...temperature_c..."})
    assert verdicts(probes(rendered=True, rendered_tool_result=dropped, effort={
        "reasoning_effort": honoured, "template_kwargs": honoured,
        "responses": honoured}))["reasoning_sent_back"] == "fail"
    lost = probe.Answer(200, {"prompt": "no tool output here"})
    assert verdicts(probes(rendered_tool_result=lost))["tool_result_accepted"] == "fail"


def test_an_effort_the_server_refuses_fails() -> None:
    refused = {e: probe.Answer(400, None, "unknown field reasoning_effort") for e in probe.EFFORTS}
    found = verdicts(probes(effort={"reasoning_effort": refused, "template_kwargs": refused,
                                    "responses": refused}))
    assert found["effort_reasoning_effort"] == "fail"


def test_evidence_is_bounded_and_markup_is_found_anywhere() -> None:
    assert len(probe.cut("x " * 5000)) <= probe.EVIDENCE_CHARS + 1
    assert c.leak("fine text") is None
    assert c.leak("a" * 500 + "assistant<|channel|>analysis") is not None


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", *args],
                          capture_output=True, text=True, timeout=600, check=False)


def _events(deltas: list[dict[str, Any]]) -> list[str]:
    return [json.dumps({"choices": [{"index": 0, "delta": d, "finish_reason": None}]})
            for d in deltas] + [json.dumps({"choices": [{"index": 0, "delta": {},
                                                         "finish_reason": "stop"}]})]


def test_the_command_against_a_well_behaved_scripted_server(tmp_path: Path) -> None:
    state = ServerState(script=[GOOD_REASON, GOOD_CALL,
                                {"role": "assistant", "content": "It is 21 C."}],
                        responses=[], events=_events([
                            {"reasoning_content": "Think"}, {"reasoning_content": " more."},
                            {"content": "Hello."},
                            {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                             "function": {"name": "get_weather",
                                                          "arguments": ""}}]},
                            {"tool_calls": [{"index": 0, "function": {
                                "arguments": '{"location": "Paris"}'}}]}]))
    out = tmp_path / "conformance.json"
    with serve(state) as url:
        done = bench("conformance", "--endpoint", url, "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)  # valid against the schema
    checks = {v["check"]: v["status"] for v in record["conformance"]["checks"]}
    assert checks["reasoning_streamed"] == checks["call_streamed"] == "pass"
    assert record["conformance"]["counts"]["fail"] == 0
    assert record["key_properties"]["tests"] == list(c.CHECKS)
    # the probes asked what the checks claim: forced grammar, required call, effort per API
    bodies = state.bodies
    assert bodies[0]["grammar"] == probe.REASON_GRAMMAR
    assert any(b.get("tool_choice") == "required" for b in bodies)
    assert {b.get("reasoning_effort") for b in bodies} >= set(probe.EFFORTS)
    assert any(b.get("chat_template_kwargs") == {"reasoning_effort": "high"} for b in bodies)
    assert any(b.get("reasoning") == {"effort": "low"} for b in bodies)
    back = next(b for b in bodies if any(m["role"] == "tool" for m in b.get("messages", [])))
    assert back["messages"][-1]["content"] == probe.TOOL_OUTPUT


def test_the_command_against_a_leaking_server_exits_1_with_the_failure(tmp_path: Path) -> None:
    raw = ("<|channel|>analysis<|message|>Think about it.<|end|><|start|>assistant"
           "<|channel|>final<|message|>Hello there.")
    state = ServerState(script=[{"role": "assistant", "content": raw},
                                {"role": "assistant", "content": LEAKED}],
                        events=_events([{"content": "analysis"}, {"content": raw}]))
    out = tmp_path / "conformance.json"
    with serve(state) as url:
        done = bench("conformance", "--endpoint", url, "-o", str(out))
    assert done.returncode == 1, done.stderr
    assert "check(s) failed" in done.stderr and "Traceback" not in done.stderr
    record = results.load(out)
    checks = {v["check"]: v["status"] for v in record["conformance"]["checks"]}
    assert checks["reasoning_field"] == checks["no_markup"] == "fail"
    assert checks["header_call_parsed"] == "fail"
    assert checks["effort_responses"] == "not_checked"  # this server has no Responses API


def test_an_error_mid_stream_is_kept_with_its_status(tmp_path: Path) -> None:
    state = ServerState(script=[GOOD_REASON], events=[
        json.dumps({"choices": [{"index": 0, "delta": {"reasoning_content": "Thi"}}]}),
        json.dumps({"error": {"message": "grammar stack empty"}})])
    out = tmp_path / "conformance.json"
    with serve(state) as url:
        bench("conformance", "--endpoint", url, "-o", str(out))
    checks = {v["check"]: v for v in results.load(out)["conformance"]["checks"]}
    assert checks["reasoning_streamed"]["status"] == "not_checked"
    assert checks["reasoning_streamed"]["evidence"].startswith("HTTP 200: ")
    assert "grammar stack empty" in checks["reasoning_streamed"]["evidence"]


def test_without_an_endpoint_or_a_serving_engine_it_is_a_usage_error() -> None:
    done = bench("conformance", "--model", "x.gguf")
    assert done.returncode == 2
    assert "--endpoint" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.xllamacpp
def test_llama_cpps_own_server_forced_to_write_harmony(tmp_path: Path) -> None:
    out = tmp_path / "conformance.json"
    done = bench("conformance", "--engine", "llama-server", "--synthetic", "tiny",
                 "-o", str(out))
    record = results.load(out)
    checks = {v["check"]: v for v in record["conformance"]["checks"]}
    status = {name: v["status"] for name, v in checks.items()}
    # what llama.cpp (xllamacpp 2026.10.11549) does with forced, well-formed harmony
    for name in ("reasoning_field", "reasoning_streamed", "header_call_parsed",
                 "call_streamed", "tool_names_clean", "tool_result_accepted",
                 "effort_reasoning_effort", "effort_template_kwargs"):
        assert status[name] == "pass", checks[name]
    assert checks["reasoning_field"]["method"] == "forced (grammar)"
    assert record["conformance"]["rendered_prompt"] is True
    # the synthetic file's own compact template renders no reasoning of earlier turns
    assert status["reasoning_sent_back"] == "fail"
    assert record["endpoint"]["served"]["engine"] == "llama-server"
    assert done.returncode == (1 if "fail" in status.values() else 0), done.stderr


@pytest.fixture(scope="module")
def llama_cpp_python_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own server (``python -m llama_cpp.server``) on the tiny model."""
    from gptoss_doctor.bench import synth

    folder = tmp_path_factory.mktemp("lcp")
    model = synth.write_synthetic("tiny", folder / "tiny.gguf").path
    with llama_cpp_server(model, folder / "server.log") as url:
        yield url


@pytest.mark.llama
@pytest.mark.server
def test_llama_cpp_pythons_server_passes_harmony_through_as_text(
        tmp_path: Path, llama_cpp_python_server: str) -> None:
    out = tmp_path / "conformance.json"
    done = bench("conformance", "--endpoint", llama_cpp_python_server, "-o", str(out))
    assert done.returncode == 1, done.stderr  # checks fail: it does not parse harmony
    checks = {v["check"]: v for v in results.load(out)["conformance"]["checks"]}
    status = {name: v["status"] for name, v in checks.items()}
    # the forced, well-formed harmony comes back verbatim in content (llama-cpp-python
    # 0.3.36 has no gpt-oss chat handler): reasoning and calls are not separated
    assert status["reasoning_field"] == status["reasoning_streamed"] == "fail"
    assert "<|channel|>analysis<|message|>" in checks["reasoning_field"]["evidence"]
    assert status["header_call_parsed"] == status["call_streamed"] == "fail"
    assert "came back as text" in checks["header_call_parsed"]["evidence"]
    assert status["no_markup"] == "fail"
    assert status["tool_result_accepted"] == "pass"
    assert status["effort_responses"] == "not_checked"  # it has no Responses API


def test_unforced_requests_carry_no_grammar_and_no_bias(tmp_path: Path) -> None:
    state = ServerState(script=[GOOD_REASON, GOOD_CALL], responses=[])
    out = tmp_path / "conformance.json"
    with serve(state) as url:
        bench("conformance", "--endpoint", url, "--unforced", "-o", str(out))
    assert not any("grammar" in b or "logit_bias" in b for b in state.bodies)
    assert all(b.get("tool_choice") in (None, "auto") for b in state.bodies)
    record = results.load(out)
    assert record["conformance"]["forced"] is False
    checks = {v["check"]: v for v in record["conformance"]["checks"]}
    assert checks["header_call_parsed"]["method"] == "model output"
    assert checks["header_call_parsed"]["status"] == "pass"
