"""What an MCP server hands over, made fit for gpt-oss: names, schemas, results.

The schemas are the shapes the MCP SDK's own servers generate from Python signatures
(pydantic: ``title`` on every property, ``$defs``/``$ref`` for nested models,
``anyOf`` with ``null`` for optional values) and the hostile ones a server may send.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.types import CallToolResult, ImageContent, TextContent

from gptoss_doctor.bench import harmony, mcp_client
from gptoss_doctor.bench.sandbox import MAX_RESULT_BYTES

pytestmark = pytest.mark.mcp

PYDANTIC = {  # as the SDK generates for search(query: str, filters: Filters | None = None)
    "type": "object", "title": "searchArguments", "required": ["query"],
    "properties": {"query": {"title": "Query", "type": "string"},
                   "filters": {"anyOf": [{"$ref": "#/$defs/Filters"}, {"type": "null"}],
                               "default": None}},
    "$defs": {"Filters": {"title": "Filters", "type": "object",
                          "properties": {"year": {"title": "Year", "type": "integer"},
                                         "kind": {"const": "paper"}}}}}


def test_an_sdk_generated_schema_is_translated_for_harmony() -> None:
    out = mcp_client.translate(PYDANTIC)
    assert out == {"type": "object", "required": ["query"], "properties": {
        "query": {"type": "string"},
        # the model inlined; "or null" dropped, as harmony would not render its fields
        "filters": {"default": None, "type": "object",
                    "properties": {"year": {"type": "integer"}, "kind": {"enum": ["paper"]}}},
    }}
    rendered = harmony.decode(harmony.tool_prompt(
        "i", [{"name": "search", "description": "d", "parameters": out}], "u"))
    assert "query: string," in rendered and "year?: number," in rendered, rendered
    assert "Query" not in rendered and "$ref" not in rendered


@pytest.mark.parametrize(("schema", "expected"), [
    pytest.param({"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
                 {"a": {"type": ["string", "null"]}}, id="optional text"),
    pytest.param({"properties": {"a": {"$ref": "#/$defs/Y"}}, "$defs": {"Y": {
        "type": "object", "properties": {"b": {"type": "integer", "title": "B"}}}}},
        {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}}, id="a $ref"),
    pytest.param({"properties": {"a": {"const": 3}}}, {"a": {"enum": [3]}}, id="a const"),
    pytest.param({"properties": {"a": {"$ref": "https://evil.example/schema"}}}, {"a": {}},
                 id="a remote $ref"),
    pytest.param({"properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {
        "properties": {"a": {"$ref": "#/$defs/A"}}}}}, None, id="a recursive $ref"),
])
def test_schema_shapes(schema: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = mcp_client.translate({"type": "object", **schema})
    if expected is not None:
        assert out["properties"] == expected
    assert len(json.dumps(out)) <= mcp_client.MAX_SCHEMA_BYTES


@pytest.mark.parametrize("schema", [
    pytest.param(None, id="no schema"), pytest.param([1, 2], id="a list"),
    pytest.param({"type": "string"}, id="not an object"),
    pytest.param({"type": "object", "properties": {
        f"p{i}": {"type": "string", "description": "x" * 5000} for i in range(64)}},
        id="over the size bound"),
])
def test_a_hostile_schema_becomes_an_object_with_no_known_properties(schema: Any) -> None:
    out = mcp_client.translate(schema)
    assert out["type"] == "object" and isinstance(out["properties"], dict)
    assert len(json.dumps(out)) <= mcp_client.MAX_SCHEMA_BYTES


def test_names_are_made_safe_and_unique() -> None:
    taken: set[str] = set()
    names = []
    for server, name in [("ref", "read_file"), ("fs", "read_file"), ("fs", "read_file"),
                         ("my server", "web.search/v2"), ("x", "!!!"), ("y", "a" * 200)]:
        names.append(mcp_client.safe_name(name, server, taken))
        taken.add(names[-1])
    assert names[:4] == ["read_file", "fs__read_file", "fs__read_file_2", "web_search_v2"]
    assert names[4] == "tool" and len(names[5]) == mcp_client.MAX_NAME
    assert all(n.replace("_", "").isalnum() for n in names) and len(set(names)) == len(names)


def result(*content: Any, error: bool = False, structured: Any = None) -> CallToolResult:
    return CallToolResult(content=list(content), is_error=error,
                          structured_content=structured)


@pytest.mark.parametrize(("given", "expected"), [
    pytest.param(result(TextContent(type="text", text='{"a": 1}')), {"a": 1},
                 id="JSON text"),
    pytest.param(result(TextContent(type="text", text="plain words")), "plain words",
                 id="plain text"),
    pytest.param(result(TextContent(type="text", text="no such file"), error=True),
                 {"error": "no such file"}, id="a tool error"),
    pytest.param(result(TextContent(type="text", text="x"), structured={"n": 2}), {"n": 2},
                 id="structured content"),
    pytest.param(result(TextContent(type="text", text="see"),
                        ImageContent(type="image", data="aGk=", mime_type="image/png")),
                 {"text": "see", "omitted": ["image"]}, id="an image beside text"),
    pytest.param(result(TextContent(type="text", text="x" * (MAX_RESULT_BYTES + 1))),
                 {"error": f"the tool's result is over {MAX_RESULT_BYTES} bytes"},
                 id="a result over the bound"),
])
def test_results_as_the_model_reads_them(given: CallToolResult, expected: Any) -> None:
    assert mcp_client.as_result(given) == expected
