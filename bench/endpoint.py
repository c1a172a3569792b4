"""OpenAI-compatible endpoints over HTTP: the only module that imports ``httpx``.

Discovery (``GET /v1/models``; LM Studio's native ``/api/v1/models`` or ``/api/v0/models``
for load state, quantization and context), streamed Chat Completions with per-chunk
timestamps, and plain requests for tool calls. Every failure becomes one
``EndpointError`` line — connection refused, 401, unknown model, 5xx, malformed SSE, a
stream that drops or a server that hangs — and the API key never appears in a message, a
result or a log: it is sent in the ``Authorization`` header and scrubbed from any text the
server echoes back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from gptoss_doctor.errors import DoctorError

LMSTUDIO_PORT = 1234
LMSTUDIO_TOKEN_ENV = "LM_API_TOKEN"  # LM Studio's name for its server token
IDENTITY_HEADERS = ("server", "x-powered-by", "via", "openai-version", "x-request-id")
CONNECT_TIMEOUT_S = 10.0


class EndpointError(DoctorError):
    """A server that cannot be reached or answered badly, in one line."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to send requests: ``base_url`` ends in ``/v1``; the key is never serialized."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0

    @property
    def root(self) -> str:
        """The server's root URL (``base_url`` without ``/v1``), for native APIs."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced, for anything the server sends back."""
        return text.replace(self.api_key, "***") if self.api_key else text


def normalize_url(url: str) -> str:
    """``http://host:port[/v1]`` -> ``http://host:port/v1``; credentials and queries refused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"bad endpoint {url!r}: use a URL like http://127.0.0.1:1234/v1")
    if parts.username or parts.password or parts.query:
        raise EndpointError("the endpoint URL must not carry credentials or a query",
                            "put the key in an environment variable and pass --api-key-env")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def port_of(url: str) -> int | None:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def host_class(url: str) -> str:
    """"local" (this machine), "private" (LAN) or "remote": whose hardware was measured."""
    host = urlsplit(url).hostname or ""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return "local"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "private" if host.endswith((".local", ".lan", ".internal")) else "remote"
    if address.is_loopback:
        return "local"
    return "private" if address.is_private or address.is_link_local else "remote"


def describe(exc: Exception, url: str, timeout_s: float) -> EndpointError:
    """An ``httpx`` failure as one actionable line."""
    if isinstance(exc, httpx.ConnectError):
        return EndpointError(f"cannot connect to {url}: {_reason(exc)}",
                             "is the server running, and is this its address and port?")
    if isinstance(exc, httpx.TimeoutException):
        return EndpointError(f"{url}: no answer within {timeout_s:.3g} s",
                             "the server hangs or is overloaded; raise --timeout if it is slow")
    if isinstance(exc, httpx.RemoteProtocolError):
        return EndpointError(f"{url}: the server closed the connection mid-response")
    return EndpointError(f"{url}: {type(exc).__name__}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text.splitlines()[0][:200]


def status_error(endpoint: Endpoint, status: int, body: str, model: str | None
                 ) -> EndpointError:
    """An HTTP error status as one line; the body (redacted) says what the server said."""
    said = _error_text(endpoint.redact(body))
    if status in (401, 403):
        key = "the API key was refused" if endpoint.api_key else "it needs an API key"
        return EndpointError(f"the server answered {status}: {key}",
                             "pass --api-key-env VAR naming the variable that holds the key"
                             f" (LM Studio: {LMSTUDIO_TOKEN_ENV})")
    if status == 404:
        what = f"model {model!r} not found" if model else "not found"
        return EndpointError(f"the server answered 404: {what}{': ' + said if said else ''}",
                             "check that the URL ends in /v1 and that the model is loaded")
    return EndpointError(f"the server answered {status}{': ' + said if said else ''}")


def _error_text(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:200]
    error = data.get("error", data) if isinstance(data, dict) else data
    message = error.get("message", error) if isinstance(error, dict) else error
    return " ".join(str(message).split())[:200]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What discovery learnt: served model ids, identity headers, LM Studio's native view."""

    url: str
    host_class: str
    models: tuple[str, ...]
    headers: dict[str, str]
    lmstudio: dict[str, Any] | None  # the chosen model's native entry, when LM Studio
    is_lmstudio: bool


def _client(endpoint: Endpoint) -> httpx.Client:
    return httpx.Client(headers=endpoint.headers(), timeout=httpx.Timeout(
        endpoint.timeout_s, connect=CONNECT_TIMEOUT_S), trust_env=False)


def _request(endpoint: Endpoint, url: str, body: dict[str, Any] | None = None
             ) -> tuple[Any, httpx.Response]:
    """GET ``url`` (POST ``body`` when given) and its JSON answer, or an EndpointError."""
    with _client(endpoint) as client:
        try:
            response = client.get(url) if body is None else client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise describe(exc, url, endpoint.timeout_s) from None
    if response.status_code >= 400:
        raise status_error(endpoint, response.status_code, response.text,
                           body.get("model") if body else None)
    try:
        return response.json(), response
    except ValueError:
        raise EndpointError(f"{url} did not answer JSON: "
                            f"{endpoint.redact(response.text)[:80]!r}") from None


def get_json(endpoint: Endpoint, url: str) -> tuple[Any, dict[str, str]]:
    """GET ``url`` as JSON: (body, identity headers)."""
    answer, response = _request(endpoint, url)
    return answer, {k: v for k in IDENTITY_HEADERS if (v := response.headers.get(k))}


def parse_models(body: Any) -> tuple[str, ...]:
    """Model ids from an OpenAI ``/v1/models`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise EndpointError("/v1/models did not answer an OpenAI model list")
    return tuple(str(m["id"]) for m in body["data"] if isinstance(m, dict) and "id" in m)


def parse_lmstudio(body: Any, model: str) -> dict[str, Any] | None:
    """LM Studio's native entry for ``model``: v1 (``models[].key``) or v0 (``data[].id``)."""
    if not isinstance(body, dict):
        return None
    for entry in body.get("models") or []:  # /api/v1/models (LM Studio 0.4+)
        if isinstance(entry, dict) and model in (entry.get("key"), *(
                i.get("id") for i in entry.get("loaded_instances") or [])):
            instances = entry.get("loaded_instances") or []
            quant = entry.get("quantization") or {}
            return {"api": "v1", "key": entry.get("key"), "format": entry.get("format"),
                    "quantization": quant.get("name") if isinstance(quant, dict) else quant,
                    "loaded": bool(instances), "size_bytes": entry.get("size_bytes"),
                    "max_context_length": entry.get("max_context_length"),
                    "loaded_config": instances[0].get("config") if instances else None}
    for entry in body.get("data") or []:  # /api/v0/models (LM Studio 0.3.6+)
        if isinstance(entry, dict) and entry.get("id") == model:
            return {"api": "v0", "key": entry.get("id"), "format":
                    entry.get("compatibility_type"), "quantization": entry.get("quantization"),
                    "loaded": entry.get("state") == "loaded", "size_bytes": None,
                    "max_context_length": entry.get("max_context_length"),
                    "loaded_config": None}
    return None


def discover(endpoint: Endpoint, model: str | None) -> tuple[ServerInfo, str]:
    """(what the server is, the model to benchmark). Several models need ``--model``."""
    body, headers = get_json(endpoint, f"{endpoint.base_url}/models")
    models = parse_models(body)
    if model and model not in models and models:
        raise EndpointError(f"the server does not serve {model!r}",
                            f"it serves: {', '.join(models)}")
    if not model:
        if len(models) != 1:
            listed = ", ".join(models) or "none"
            raise EndpointError(f"the server serves {len(models)} models ({listed})",
                                "choose one with --model NAME")
        model = models[0]
    lmstudio: dict[str, Any] | None = None
    for path in ("/api/v1/models", "/api/v0/models"):  # LM Studio's native lists, newest first
        try:
            native, _ = get_json(endpoint, endpoint.root + path)
        except EndpointError:
            continue
        lmstudio = parse_lmstudio(native, model)
        if lmstudio is not None:
            break
    return ServerInfo(endpoint.base_url, host_class(endpoint.base_url), models, headers,
                      lmstudio, lmstudio is not None), model


def post_json(endpoint: Endpoint, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``base_url + path``; the JSON answer, or an EndpointError."""
    url = endpoint.base_url + path
    answer, _response = _request(endpoint, url, body)
    if not isinstance(answer, dict):
        raise EndpointError(f"{url} answered JSON that is not an object")
    return answer


@dataclass(slots=True)
class Stream:
    """One streamed completion: timestamps relative to the request's start (seconds)."""

    first_s: float | None = None  # first content or reasoning text
    last_s: float | None = None
    end_s: float = 0.0
    chunks: int = 0
    content: str = ""
    reasoning: str = ""
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    error: str | None = None


def _delta_text(chunk: dict[str, Any]) -> tuple[str, str, str | None]:
    """(content, reasoning, finish_reason) of one Chat Completions chunk."""
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return "", "", None
    delta = choices[0].get("delta") or {}
    # llama-server and vLLM say reasoning_content; LM Studio and Ollama say reasoning.
    reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    return str(delta.get("content") or ""), str(reasoning), choices[0].get("finish_reason")


async def stream_chat(client: httpx.AsyncClient, endpoint: Endpoint, body: dict[str, Any],
                      clock: Callable[[], float] = time.perf_counter) -> Stream:
    """Stream one Chat Completion; failures are kept in ``Stream.error`` with what came."""
    url = f"{endpoint.base_url}/chat/completions"
    result = Stream()
    start = clock()
    try:
        # A whole-request deadline too: a server that trickles pings never hits the read
        # timeout.
        async with asyncio.timeout(endpoint.timeout_s), client.stream(
                "POST", url, json={**body, "stream": True}) as response:
            if response.status_code >= 400:
                text = (await response.aread()).decode("utf-8", "replace")
                result.error = status_error(endpoint, response.status_code, text,
                                            body.get("model")).message
                return result
            done = await _read_events(response, result, start, clock)
        if result.error is None and result.finish_reason is None:
            # llama-cpp-python's server ends a stream this way when a newer request
            # interrupts it (its --interrupt_requests defaults to true).
            result.error = ("the stream ended without a finish_reason" if done else
                            "the stream ended before the completion did (no [DONE])")
    except httpx.HTTPError as exc:
        result.error = describe(exc, url, endpoint.timeout_s).message
    except TimeoutError:
        result.error = f"{url}: the completion did not finish within {endpoint.timeout_s:g} s"
    finally:
        result.end_s = clock() - start
    if result.error:
        result.error = endpoint.redact(result.error)
    return result


async def _read_events(response: httpx.Response, result: Stream, start: float,
                       clock: Callable[[], float]) -> bool:
    """Fill ``result`` from the SSE lines; True when ``[DONE]`` arrived."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, ": ping" comments, "event:" names
        data = line[5:].strip()
        if data == "[DONE]":
            return True
        try:
            chunk = json.loads(data)
        except ValueError:
            result.error = f"malformed server-sent event: {data[:60]!r}"
            return False
        if not isinstance(chunk, dict):
            result.error = f"malformed server-sent event: {data[:60]!r}"
            return False
        if "error" in chunk:
            result.error = f"the server reported an error mid-stream: {_error_text(data)}"
            return False
        content, reasoning, finish = _delta_text(chunk)
        now = clock() - start
        if content or reasoning:
            result.chunks += 1
            result.first_s = now if result.first_s is None else result.first_s
            result.last_s = now
            result.content += content
            result.reasoning += reasoning
        result.finish_reason = finish or result.finish_reason
        if isinstance(chunk.get("usage"), dict):
            result.usage = chunk["usage"]
    return False


def async_client(endpoint: Endpoint, streams: int) -> httpx.AsyncClient:
    """A client for ``streams`` parallel streams (one connection each)."""
    return httpx.AsyncClient(
        headers=endpoint.headers(), trust_env=False,
        timeout=httpx.Timeout(endpoint.timeout_s, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=streams, max_keepalive_connections=streams))


def client_version() -> str:
    return f"httpx {httpx.__version__}"
