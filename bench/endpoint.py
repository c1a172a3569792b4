"""OpenAI-compatible endpoints over HTTP: the only module that imports ``httpx``.

Discovery (``GET /v1/models``; LM Studio's native ``/api/v1/models`` or ``/api/v0/models``
for load state, quantization and context), the requests that streamed Chat Completions
(``chat_stream``) and tool calls are made through, and the clients they share. Every
failure becomes one ``EndpointError`` line — connection refused, 401, unknown model, 5xx,
malformed SSE, a stream that drops or a server that hangs — and the API key never appears
in a message, a result or a log: it is sent in the ``Authorization`` header and scrubbed
from any text the server echoes back.

Servers are hostile until proven otherwise. Every request, plain or streamed, is made in one
place (``exchange``) under one deadline that covers connecting, the headers and every body
byte, so a server that trickles a byte a second cannot outlast ``--timeout``; and what a
server sends is bounded before it is kept: answers, error bodies, event lines, streams and
the identity headers stored in results.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from gptoss_doctor.bench import http1, sse
from gptoss_doctor.errors import DoctorError

LMSTUDIO_PORT = 1234
LMSTUDIO_TOKEN_ENV = "LM_API_TOKEN"  # LM Studio's name for its server token
IDENTITY_HEADERS = ("server", "x-powered-by", "via", "openai-version", "x-request-id")
CONNECT_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 8 << 20  # a JSON answer: a model list, one tool-call turn
MAX_ERROR_BYTES = 64 << 10  # an error body: only its first 200 characters are ever shown
MAX_HEADER_CHARS = 200  # an identity header as stored in results
MAX_ID_CHARS = 512  # a model id a server lists (it goes into every request and results file)
MAX_CONFIG_KEYS = 64  # settings of LM Studio's loaded config kept
DEADLINE_HINT = "the server hangs, trickles or is overloaded; raise --timeout if it is slow"


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


class DeadlineError(EndpointError):
    """A request that did not complete within its deadline (counted apart as timed out)."""


def deadline_error(url: str, timeout_s: float) -> EndpointError:
    """A request that did not complete within its deadline, in one line."""
    return DeadlineError(f"{url}: no complete answer within {timeout_s:g} s", DEADLINE_HINT)


def describe(exc: Exception, url: str, timeout_s: float) -> EndpointError:
    """An ``httpx`` failure as one actionable line."""
    if isinstance(exc, httpx.ConnectError):
        return EndpointError(f"cannot connect to {url}: {_reason(exc)}",
                             "is the server running, and is this its address and port?")
    if isinstance(exc, httpx.TimeoutException):
        return deadline_error(url, timeout_s)
    if isinstance(exc, httpx.RemoteProtocolError):
        reason = _reason(exc)
        if "closed" in reason or "disconnected" in reason:
            return EndpointError(f"{url}: the server closed the connection mid-response")
        # h11 refuses headers past its buffer ("Receive buffer too long") and broken framing
        return EndpointError(f"{url}: the server sent a malformed or oversized answer ({reason})")
    return EndpointError(f"{url}: {type(exc).__name__}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    cause: BaseException | None = exc
    for _ in range(8):  # anyio says "All connection attempts failed" over the real cause
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return text.splitlines()[0][:200]


def status_error(endpoint: Endpoint, status: int, body: str, model: str | None
                 ) -> EndpointError:
    """An HTTP error status as one line; the body (redacted) says what the server said."""
    said = sse.error_text(endpoint.redact(body))
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


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What discovery learnt: served model ids, identity headers, LM Studio's native view."""

    url: str
    host_class: str
    models: tuple[str, ...]
    headers: dict[str, str]
    lmstudio: dict[str, Any] | None  # the chosen model's native entry, when LM Studio
    is_lmstudio: bool


@asynccontextmanager
async def exchange(client: httpx.AsyncClient, endpoint: Endpoint, url: str,
                   body: dict[str, Any] | None = None) -> AsyncIterator[httpx.Response]:
    """The one place requests are made: GET ``url`` (POST ``body`` when given), the response
    open for reading inside the ``with`` block. One deadline, ``endpoint.timeout_s``, covers
    connecting, the headers and every body byte read in the block: httpx's timeouts are per
    read, so a server that trickles a byte a second would never trip them. Failures,
    the deadline included, raise one-line EndpointErrors."""
    method = "GET" if body is None else "POST"
    try:
        async with asyncio.timeout(endpoint.timeout_s), client.stream(
                method, url, json=body) as response:
            yield response
    except TimeoutError:
        raise deadline_error(url, endpoint.timeout_s) from None
    except httpx.HTTPError as exc:
        raise describe(exc, url, endpoint.timeout_s) from None


async def read_body(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether the server had more (left unread)."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


async def raise_for_status(endpoint: Endpoint, response: httpx.Response, model: str | None
                           ) -> None:
    """An EndpointError for an error status, from the first ``MAX_ERROR_BYTES`` of its body."""
    if response.status_code >= 400:
        said, _ = await read_body(response, MAX_ERROR_BYTES)
        raise status_error(endpoint, response.status_code, said.decode("utf-8", "replace"),
                           model)


async def _fetch_json(endpoint: Endpoint, url: str, body: dict[str, Any] | None
                      ) -> tuple[Any, httpx.Headers]:
    async with async_client(endpoint, 1) as client, exchange(
            client, endpoint, url, body) as response:
        await raise_for_status(endpoint, response, body.get("model") if body else None)
        data, more = await read_body(response, MAX_BODY_BYTES)
    if more:
        raise EndpointError(f"{url} answered more than {MAX_BODY_BYTES >> 20} MiB")
    try:
        return json.loads(data), response.headers
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        text = endpoint.redact(data.decode("utf-8", "replace"))
        raise EndpointError(f"{url} did not answer JSON: {text[:80]!r}") from None


def _request(endpoint: Endpoint, url: str, body: dict[str, Any] | None = None
             ) -> tuple[Any, httpx.Headers]:
    """GET ``url`` (POST ``body`` when given): (JSON answer, headers), or an EndpointError.

    Made through ``exchange`` on an event loop of its own, so that the deadline holds; not
    for use from inside a running event loop."""
    return asyncio.run(_fetch_json(endpoint, url, body))


def get_json(endpoint: Endpoint, url: str) -> tuple[Any, dict[str, str]]:
    """GET ``url`` as JSON: (body, identity headers, redacted and cut to
    ``MAX_HEADER_CHARS``)."""
    answer, headers = _request(endpoint, url)
    return answer, {k: endpoint.redact(v)[:MAX_HEADER_CHARS]
                    for k in IDENTITY_HEADERS if (v := headers.get(k))}


async def get_text(client: httpx.AsyncClient, url: str, limit_bytes: int,
                   timeout_s: float = 10.0) -> str:
    """GET ``url`` as text (UTF-8, bad bytes replaced), for plain-text APIs such as a
    Prometheus ``/metrics`` page. One deadline covers the whole answer; an error status, a
    body over ``limit_bytes`` or any failure is an EndpointError line."""
    try:
        async with asyncio.timeout(timeout_s), client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise EndpointError(f"{url} answered {response.status_code}")
            data, more = await read_body(response, limit_bytes)
    except TimeoutError:
        raise deadline_error(url, timeout_s) from None
    except httpx.HTTPError as exc:
        raise describe(exc, url, timeout_s) from None
    if more:
        raise EndpointError(f"{url} answered more than {limit_bytes} bytes")
    return data.decode("utf-8", "replace")


def parse_models(body: Any) -> tuple[str, ...]:
    """Model ids from an OpenAI ``/v1/models`` body (strings of at most ``MAX_ID_CHARS``:
    an id goes into every request and results file)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise EndpointError("/v1/models did not answer an OpenAI model list")
    return tuple(m["id"] for m in body["data"] if isinstance(m, dict)
                 and isinstance(m.get("id"), str) and 0 < len(m["id"]) <= MAX_ID_CHARS)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value[:MAX_HEADER_CHARS] if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53
    return value if ok else None


def _flat(value: Any) -> dict[str, Any] | None:
    """A loaded config's plain settings (``context_length``: 8192), bounded; nothing nested."""
    if not isinstance(value, dict):
        return None
    kept = {str(k)[:MAX_HEADER_CHARS]: (v[:MAX_HEADER_CHARS] if isinstance(v, str) else v)
            for k, v in value.items()
            if isinstance(v, str | bool) or _count(v) is not None
            or (isinstance(v, float) and math.isfinite(v))}
    return dict(list(kept.items())[:MAX_CONFIG_KEYS])


def parse_lmstudio(body: Any, model: str) -> dict[str, Any] | None:
    """LM Studio's native entry for ``model``: v1 (``models[].key``) or v0 (``data[].id``)."""
    if not isinstance(body, dict):
        return None
    for entry in _list(body.get("models")):  # /api/v1/models (LM Studio 0.4+)
        if not isinstance(entry, dict):
            continue
        instances = [i for i in _list(entry.get("loaded_instances")) if isinstance(i, dict)]
        if model in (entry.get("key"), *(i.get("id") for i in instances)):
            quant = entry.get("quantization")
            return {"api": "v1", "key": _text(entry.get("key")),
                    "format": _text(entry.get("format")),
                    "quantization": _text(quant.get("name") if isinstance(quant, dict)
                                          else quant),
                    "loaded": bool(instances), "size_bytes": _count(entry.get("size_bytes")),
                    "max_context_length": _count(entry.get("max_context_length")),
                    "loaded_config": _flat(instances[0].get("config")) if instances else None}
    for entry in _list(body.get("data")):  # /api/v0/models (LM Studio 0.3.6+)
        if isinstance(entry, dict) and entry.get("id") == model:
            return {"api": "v0", "key": _text(entry.get("id")),
                    "format": _text(entry.get("compatibility_type")),
                    "quantization": _text(entry.get("quantization")),
                    "loaded": entry.get("state") == "loaded", "size_bytes": None,
                    "max_context_length": _count(entry.get("max_context_length")),
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


# The client type, for the modules that take a client and may not import httpx themselves
AsyncClient = httpx.AsyncClient


class StreamingClient(httpx.AsyncClient):
    """httpx for every request, plus a lean keep-alive pool (bench/http1.py) that
    ``chat_stream.stream_chat`` reads plain-HTTP streams through: per-chunk work in a
    general HTTP stack was the client's limit at hundreds of streams
    (docs/serving-client.md)."""

    def __init__(self, streams: int, **options: Any) -> None:
        super().__init__(**options)
        self.lean = http1.Pool(streams)

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.lean.close()
        await super().__aexit__(*exc_info)

    async def aclose(self) -> None:  # httpx's __aexit__ does not call it: both close the pool
        await self.lean.close()
        await super().aclose()


def async_client(endpoint: Endpoint, streams: int) -> StreamingClient:
    """A client for ``streams`` parallel streams (one connection each)."""
    return StreamingClient(
        streams, headers=endpoint.headers(), trust_env=False,
        timeout=httpx.Timeout(endpoint.timeout_s, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=streams, max_keepalive_connections=streams))


def client_version() -> str:
    return f"httpx {httpx.__version__}"
