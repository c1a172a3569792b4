"""The typed records and the published JSON Schemas say the same thing.

Closed value sets (``Literal`` aliases) equal the schemas' enums; records whose schema is
closed (``additionalProperties: false``) have exactly the schema's properties; and records
built by the one converter validate against the schema they are published under.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any, get_args

import jsonschema
import pytest

from gptoss_doctor import serde, types
from gptoss_doctor.app.checks import Check
from gptoss_doctor.app.records import (
    Conditions,
    EnergyReport,
    Envelope,
    GpuConditions,
    PerTestEnergy,
    SourceEnergy,
    SpeedRecord,
    ToolsRecord,
)
from gptoss_doctor.bench.records import EngineConfig, ModelFacts
from gptoss_doctor.bench.speed import ChatResult
from gptoss_doctor.bench.speed import TestResult as SpeedTestResult
from gptoss_doctor.install.verdict_records import ModelVerdict
from gptoss_doctor.load_settings import LoadSettings


def _schema(package: str, name: str) -> dict[str, Any]:
    text = resources.files(package).joinpath(f"schemas/{name}").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


RESULTS = _schema("gptoss_doctor.bench", "results.schema.json")
DOCTOR = _schema("gptoss_doctor.reports", "doctor.schema.json")


def _enum(node: dict[str, Any]) -> set[Any]:
    return {v for v in node["enum"] if v is not None}


@pytest.mark.parametrize(("alias", "enum"), [
    pytest.param(types.Suite, RESULTS["properties"]["suite"], id="results suite"),
    pytest.param(types.RunStatus, RESULTS["properties"]["status"], id="results status"),
    pytest.param(types.TestStatus, RESULTS["$defs"]["test"]["properties"]["status"],
                 id="speed test status"),
    pytest.param(types.TestStatus, RESULTS["properties"]["chat"]["properties"]["status"],
                 id="chat status"),
    pytest.param(types.VerdictStatus, DOCTOR["$defs"]["verdict"]["properties"]["status"],
                 id="verdict status"),
    pytest.param(types.EngineName, DOCTOR["$defs"]["verdict"]["properties"]["engine"],
                 id="verdict engine"),
    pytest.param(types.Backend, DOCTOR["$defs"]["verdict"]["properties"]["backend"],
                 id="verdict backend"),
    pytest.param(types.Placement, DOCTOR["$defs"]["verdict"]["properties"]["placement"],
                 id="verdict placement"),
    pytest.param(types.CheckStatus, DOCTOR["$defs"]["check"]["properties"]["status"],
                 id="check status"),
    pytest.param(types.EnergyStatus, RESULTS["$defs"]["energy"]["properties"]["status"],
                 id="energy status"),
    pytest.param(types.EnergyKind, RESULTS["$defs"]["source_energy"]["properties"]["kind"],
                 id="energy source kind"),
])
def test_literal_sets_equal_the_schema_enums(alias: object, enum: dict[str, Any]) -> None:
    assert set(get_args(alias)) == _enum(enum)


@pytest.mark.parametrize(("record", "schema"), [
    pytest.param(SpeedTestResult, RESULTS["$defs"]["test"], id="speed test"),
    pytest.param(ModelVerdict, DOCTOR["$defs"]["verdict"], id="verdict"),
    pytest.param(Check, DOCTOR["$defs"]["check"], id="check"),
    pytest.param(EnergyReport, RESULTS["$defs"]["energy"], id="energy"),
    pytest.param(PerTestEnergy, RESULTS["$defs"]["test_energy"], id="energy of one test"),
    pytest.param(SourceEnergy, RESULTS["$defs"]["source_energy"], id="energy of one source"),
    pytest.param(Conditions, RESULTS["$defs"]["conditions"], id="conditions"),
    pytest.param(GpuConditions, RESULTS["$defs"]["gpu_conditions"], id="conditions of one GPU"),
])
def test_closed_records_have_exactly_the_schema_properties(record: type, schema: dict[str, Any]
                                                           ) -> None:
    assert schema["additionalProperties"] is False
    fields = {f.name for f in dataclasses.fields(record)}
    assert set(schema["required"]) <= fields <= set(schema["properties"])


def test_record_fields_are_schema_properties() -> None:
    """Every top-level key a typed record writes is a documented results property."""
    documented = set(RESULTS["properties"])
    for record in (SpeedRecord, ToolsRecord):
        data = serde.to_json(_speed_record() if record is SpeedRecord else _tools_record())
        assert set(data) <= documented, set(data) - documented
    envelope_keys = {f.name for f in dataclasses.fields(Envelope)}
    assert envelope_keys <= documented


def _envelope(suite: types.Suite) -> Envelope:
    snapshot = json.loads((_fixture_results())["machine_json"])
    return Envelope(suite, "complete", snapshot, _software(), ModelFacts(
        file_name="m.gguf", size_bytes=1, synthetic=True, sha256="0" * 64, format="gguf",
        gpt_oss="tiny"))


def _software() -> Any:
    from gptoss_doctor.bench.records import SoftwareFacts

    return SoftwareFacts(python="3.11", backends=("CPU",), llama_cpp_python="0.3.36",
                         gpu_offload=False, system_info="CPU")


def _fixture_results() -> dict[str, str]:
    from conftest import FIXTURES

    record = json.loads((FIXTURES / "results" / "synthetic-tiny-cpu.json").read_text())
    return {"machine_json": json.dumps(record["machine"])}


def _speed_record() -> SpeedRecord:
    from gptoss_doctor.app.records import Roofline, SpeedConfig, SpeedSettings
    from gptoss_doctor.bench.records import EngineExtras, MemoryFigures

    test = SpeedTestResult("tg16", "tg", 16, 0, "ok", None, (0.1,), (160.0,), 160.0, 0.0)
    chat = ChatResult("skipped", "--no-chat", 0, 0, (), (), (), None, None)
    return SpeedRecord(_envelope("speed"), SpeedConfig(
        EngineConfig("llama.cpp", "test", threads=2, n_ctx=256, n_gpu_layers=0,
                     flash_attn=True), SpeedSettings(1)), (test,), chat,
        MemoryFigures(1024), Roofline(10, "whole file (dense)", 1e9, "test", 1e8, {}),
        EngineExtras())


def _tools_record() -> ToolsRecord:
    from gptoss_doctor.app.records import ToolsConfig, ToolsSettings
    from gptoss_doctor.bench.records import EngineExtras, MemoryFigures

    run = ToolsSettings("openai-harmony", "low", 1, 8, 1.0, {"temperature": 1.0}, ("simple",),
                        {"name": "s", "sha256": "0" * 64, "cases": 0})
    return ToolsRecord(_envelope("tools"), ToolsConfig(
        EngineConfig("llama.cpp", "test", threads=2, n_ctx=256, n_gpu_layers=0,
                     flash_attn=True), run), (), {}, MemoryFigures(1024), EngineExtras())


def test_a_typed_speed_record_validates_against_the_published_schema() -> None:
    from gptoss_doctor.app.records import to_results

    jsonschema.validate(to_results(_speed_record()), RESULTS)


def test_converter_round_trips_typed_records() -> None:
    record = _speed_record()
    assert serde.from_json(SpeedRecord, serde.to_json(record)) == record
    settings = LoadSettings(n_ctx=8192, n_gpu_layers=-1, n_cpu_moe=3)
    assert serde.from_json(LoadSettings, serde.to_json(settings)) == settings


@pytest.mark.parametrize(("data", "message"), [
    pytest.param({"n_ctx": "8192"}, "LoadSettings.n_ctx: expected int", id="a string for an int"),
    pytest.param({"n_ctx": True}, "expected a number", id="a bool for an int"),
    pytest.param([], "expected an object", id="a list for an object"),
])
def test_converter_names_the_bad_field(data: Any, message: str) -> None:
    with pytest.raises(serde.SerdeError, match=message):
        serde.from_json(LoadSettings, data)


def test_converter_checks_literal_sets() -> None:
    config = serde.to_json(EngineConfig("llama.cpp", "test"))
    with pytest.raises(serde.SerdeError, match="engine"):
        serde.from_json(EngineConfig, {**config, "engine": "vllm"})
