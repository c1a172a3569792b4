"""Redaction: what is removed from a results document before it leaves the machine.

``redact(document)`` returns a deep copy in which every string and every key has its
sensitive parts replaced by stable placeholders, and one line per field saying what went
(``"model.path: home directory"``). Pure: the only outside facts it uses are the current
user's names, home folders and host names, read once into a ``Context`` (tests pass their
own). docs/sharing.md lists the rules; in short:

Removed
  home directories and user names in paths (``/home/u``, ``/var/home/u``, ``/root``,
  ``/Users/u``, ``C:\\Users\\u``, ``/mnt/c/Users/u``, ``~u``; also JSON-escaped) → ``<home>``,
  and every user name seen in such a path, or the current user's, as a word anywhere →
  ``<user>``; URL hosts and ports (loopback → ``<loopback>``, private, link-local, CGNAT
  and unique-local addresses → ``<private-ip>``, other addresses → ``<ip>``, names →
  ``<host>``), the same outside URLs (``host:port``, bare IP addresses, names under
  private suffixes such as ``.lan`` or ``.internal``, this machine's host name, a Windows
  network path's server ``\\\\nas01\\share``); MAC
  addresses; UUIDs including GPU and MIG ids → ``<uuid>``; serial numbers given as
  ``serial: X`` or under a serial key → ``<serial>``; e-mail addresses → ``<email>``;
  secrets (``secrets.TOKEN_PATTERNS``, ``Bearer``/``Basic`` credentials, URL passwords,
  high-entropy ``key=value`` under a secret-like key, the value of a flag named for a
  secret (``--api-key X``), any value under a secret-like key,
  secrets registered with ``gptoss_doctor.secrets``) → ``<secret>``.

Kept (``PUBLIC_HOSTS`` and ``GENERIC_NAMES`` below; tests/test_redact.py checks each)
  public repository ids (``openai/gpt-oss-20b``), accelerator and CPU names, engine,
  driver and build versions (``550.54.15``, ``b6123``, ``0.3.36``), every number and
  setting, content digests (40 and 64 hex digits: the model's sha256 is what makes runs
  comparable), PCI bus ids, dates, the names of environment variables, generic account
  names (``root``, ``ubuntu``: they identify no one, and ``Ubuntu 24.04`` must stay), and
  public service hosts in URLs (``PUBLIC_HOSTS``), with their ports.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor import secrets

PLACEHOLDERS = ("<home>", "<user>", "<host>", "<loopback>", "<private-ip>", "<ip>", "<mac>",
                "<serial>", "<uuid>", "<email>", "<secret>")
# Hosts whose names say nothing about the person sharing: public model hubs and hosted
# inference services. A URL on one of these (or a subdomain) keeps its host and port.
PUBLIC_HOSTS = ("huggingface.co", "hf.co", "github.com", "githubusercontent.com",
                "openai.com", "openrouter.ai", "together.xyz", "groq.com", "fireworks.ai",
                "deepinfra.com", "cerebras.ai", "mistral.ai", "ollama.com", "lmstudio.ai",
                "pypi.org", "pythonhosted.org")
# Account and host names too common to identify anyone, words a placeholder holds, and the
# words runs are compared by (a user called "llama" must not turn "llama.cpp" into
# "<user>.cpp"): never replaced as words elsewhere (their home folders still are).
GENERIC_NAMES = frozenset({
    "root", "user", "users", "admin", "administrator", "guest", "home", "host", "public",
    "shared", "default", "runner", "ubuntu", "debian", "fedora", "ec2-user", "centos",
    "pi", "raspberrypi", "localhost", "ip", "mac", "serial", "uuid", "email", "secret",
    "loopback", "private-ip", "docker", "container", "linux", "windows", "darwin", "test",
    "dev", "server", "desktop", "laptop", "workstation", "main", "model", "models", "gpt",
    "oss", "openai", "llama", "cpp", "mlx", "lmstudio", "ollama", "vllm", "cuda", "metal",
    "vulkan", "rocm", "cpu", "gpu", "nvidia", "amd", "intel", "apple", "geforce", "radeon",
    "rtx", "gguf", "mxfp4", "endpoint", "speed", "tools", "gptoss", "doctor", "results",
    "bench", "local", "remote", "private", "partial", "complete", "usage", "chat"})
MIN_NAME = 3  # shorter names would replace parts of ordinary words

_NAME = r"[^\\/\s\"'<>:|?*]+"
_SPACED_NAME = rf"{_NAME}(?: {_NAME})*(?=\\|/)|{_NAME}"  # "John Smith" only before a separator
_SEP = r"(?:\\{0,4}/|\\{1,4})"  # bounded: a run of 100,000 backslashes must not backtrack
_HOME = re.compile(
    rf"(?i:(?:\b[a-z]:|/mnt/[a-z])?{_SEP}users{_SEP}(?P<win>{_SPACED_NAME}))"
    rf"|(?:/var)?\\{{0,2}}/home\\{{0,2}}/(?P<posix>[^\\/\s\"'<>]+)"
    r"|(?<![\w.~-])/root(?=[\\/\s\"']|$)"
    r"|(?<![\w~])~(?P<tilde>[A-Za-z_][\w.-]{0,31})(?=[\\/])")
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{0,15})://(?P<auth>[^\s/?#\"'<>\\]+)")
# a Windows network path's server: \\server\share (or JSON-escaped, four backslashes each);
# "\\?\" and "\\.\" are device paths and have none
_UNC = re.compile(r"(?<![\w\\])(?P<lead>(?:\\\\){1,2})(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252})"
                  r"(?=\\)")
_IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_BARE_IP = re.compile(
    rf"(?<![\w.])(?P<ip>{_IPV4})(?!\.?\d)(?::(?P<port>\d{{1,5}})\b)?(?![\w-])"
    r"|(?<![\w:.])\[?(?P<ip6>(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})\]?"
    r"(?::(?P<port6>\d{1,5}))?(?![\w:.])")
_HOST_PORT = re.compile(
    r"(?<![\w.:/@-])(?P<host>localhost|(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})"
    r":(?P<port>\d{1,5})(?![\w.])")
_PRIVATE_SUFFIX = re.compile(
    r"(?i)(?<![\w.-])(?:[a-z0-9-]+\.)+(?:local|lan|internal|intranet|corp|home\.arpa"
    r"|localdomain|ts\.net)(?![\w-]|\.\w)")
_MAC = re.compile(r"(?i)(?<![\w:-])(?:[0-9a-f]{2}([:-]))(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}"
                  r"(?![\w:-])")
_UUID = re.compile(r"(?i)\b(?:MIG-)?(?:GPU-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}"
                   r"-[0-9a-f]{12}\b")
_SERIAL = re.compile(r"(?i)\b(?P<label>serial(?:[ _-]?(?:number|no\.?|num))?|s/n"
                     r"|sn(?=\s{0,4}[:=#]))(?P<sep>\s{0,4}[:=#]?\s{0,4})"
                     r"(?P<value>[A-Za-z0-9][A-Za-z0-9-]{3,})")
# Every repetition that may start anywhere is bounded (RFC 5321: a local part of at most 64
# characters, labels of at most 63): unbounded, "a-a-a-…" of a megabyte takes hours.
_EMAIL = re.compile(r"(?i)(?<![\w.%+-])[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}"
                    r"(?:\.[a-z0-9-]{1,63}){0,8}\.[a-z]{2,24}\b")
# "alice@10.0.0.5", "alice@gpu1.lan" (ssh's user@host): the user goes with the host
_USER_AT_HOST = re.compile(r"(?i)(?<![\w.%+-])[a-z0-9._%+-]+@(?=<(?:host|loopback|private-ip|ip)>)")
_SECRET_KEYWORD = (r"(?:api[_-]?key|apikey|access[_-]?key(?:[_-]id)?|secret(?:[_-]?key)?|token"
                   r"|passw(?:or)?d|pwd|credentials?|auth)")
_KEY_VALUE = re.compile(  # the key ends with the keyword: "max_tokens", "tokenizer" are not
    rf"(?i)(?P<key>{_SECRET_KEYWORD})(?P<sep>\"?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^\s\"'&,;<>]{8,})")
# "--api-key VALUE" as a command line writes it (a usage line quoted in an error): any value
# of a flag named for a secret, whatever its entropy; the next flag is no value
_FLAG_VALUE = re.compile(
    rf"(?i)(?P<key>(?<![\w-])--(?:[\w-]{{0,40}}[_-])?{_SECRET_KEYWORD})(?P<sep>[ \t]{{1,8}})"
    r"(?P<value>[^\s\"'&,;<>-][^\s\"'&,;<>]{3,})")
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_-])(?:api[_-]?key|apikey|token|secret|client[_-]?secret|password|passwd"
    r"|authorization|proxy-authorization|cookie|set-cookie|credentials?|private[_-]?key"
    r"|access[_-]?key(?:[_-]id)?)$")
_KEY_PLACEHOLDERS = (
    (re.compile(r"(?i)^(?:[\w-]*[_-])?serial(?:[_-]?(?:number|no|num))?$"), "<serial>",
     "serial number"),
    (re.compile(r"(?i)^(?:[\w-]*[_-])?uuid$"), "<uuid>", "UUID"),
    (re.compile(r"(?i)^(?:host|node)[_-]?name$|^hostname$"), "<host>", "host name"),
    (re.compile(r"(?i)^(?:user|user[_-]?name|login)$"), "<user>", "user name"),
    (re.compile(r"(?i)^(?:[\w-]*[_-])?e-?mail$"), "<email>", "e-mail address"))


@dataclass(frozen=True, slots=True)
class Context:
    """The current user's names, home folders and host names (each replaced everywhere)."""

    users: tuple[str, ...] = ()
    homes: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()

    @classmethod
    def current(cls) -> Context:
        """Read from the environment: ``USER``/``LOGNAME``/``USERNAME``, ``HOME``/
        ``USERPROFILE`` and the host name (and its first label)."""
        env = os.environ
        homes = {env.get("HOME", ""), env.get("USERPROFILE", ""), os.path.expanduser("~")}
        users = {env.get(name, "") for name in ("USER", "LOGNAME", "USERNAME")}
        users |= {re.split(r"[\\/]", home.rstrip("\\/"))[-1] for home in homes if home}
        hosts = {socket.gethostname(), env.get("HOSTNAME", ""), env.get("COMPUTERNAME", "")}
        hosts |= {host.split(".")[0] for host in hosts}
        return cls(users=tuple(sorted(u for u in users if u)),
                   homes=tuple(sorted(h for h in homes if h.strip("\\/"))),
                   hostnames=tuple(sorted(h for h in hosts if h)))


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted copy and what was removed (one line per field and kind)."""

    document: Any
    removed: tuple[str, ...]


@dataclass(slots=True)
class _Pass:
    """One redaction of one document: the word patterns and what was found so far."""

    words: list[tuple[re.Pattern[str], str, str]]
    homes: re.Pattern[str] | None  # the current user's home folders, in every JSON form
    found: dict[str, None] = field(default_factory=dict)  # ordered set of removed lines
    # text -> (redacted, what was removed): keys and enum values repeat thousands of times
    seen: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def note(self, where: str, what: str) -> None:
        self.found[f"{where or '(document)'}: {what}"] = None


def redact(document: Any, context: Context | None = None) -> Redaction:
    """A deep copy of ``document`` (JSON data) with sensitive values replaced; see the
    module docstring for what is removed and kept. Idempotent: redacting the result again
    changes nothing and reports nothing."""
    context = Context.current() if context is None else context
    users = set(context.users) | set(_path_users(document))
    run = _Pass(words=_word_patterns(users, context.hostnames),
                homes=_home_pattern(context.homes))
    copy = _walk(document, "", run)
    return Redaction(copy, tuple(run.found))


def _path_users(document: Any) -> Iterable[str]:
    """Every user name in a home path anywhere in ``document`` (keys included)."""
    for text in _strings(document):
        if "/" not in text and "\\" not in text and "~" not in text:
            continue
        for match in _HOME.finditer(text):
            name = match["win"] or match["posix"] or match["tilde"]
            if name:
                yield name


def _strings(value: Any) -> Iterable[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _word_patterns(users: Iterable[str], hosts: Iterable[str]
                   ) -> list[tuple[re.Pattern[str], str, str]]:
    patterns = []
    for names, placeholder, what in ((hosts, "<host>", "host name"),
                                     (users, "<user>", "user name")):
        wanted = sorted({n for n in names if len(n) >= MIN_NAME
                         and n.lower() not in GENERIC_NAMES}, key=len, reverse=True)
        if wanted:
            alternatives = "|".join(re.escape(n) for n in wanted)
            patterns.append((re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{alternatives})"
                                        r"(?![A-Za-z0-9])"), placeholder, what))
    return patterns


def _home_pattern(homes: Iterable[str]) -> re.Pattern[str] | None:
    forms = {form for home in homes if (bare := home.rstrip("\\/"))
             for form in (bare, bare.replace("\\", "\\\\"), bare.replace("/", "\\/"))}
    if not forms:
        return None
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?:{alternatives})(?![\w.-])")


def _walk(value: Any, where: str, run: _Pass) -> Any:
    if isinstance(value, str):
        return _text(value, where, run)
    if isinstance(value, (list, tuple)):
        return [_walk(item, f"{where}[{i}]", run) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            label = f"{where} key {len(out) + 1}" if where else f"key {len(out) + 1}"
            name = _text(key, label, run) if isinstance(key, str) else key
            while name in out:  # two keys redacted to the same text: both kept
                name = f"{name}'"
            path = f"{where}.{name}" if where else str(name)
            out[name] = _by_key(str(key), item, path, run) or _walk(item, path, run)
        return out
    return value


def _by_key(key: str, value: Any, where: str, run: _Pass) -> str | None:
    """The placeholder for a string under a key that says what it holds, or None."""
    if not isinstance(value, str) or not value or value in PLACEHOLDERS:
        return None
    if _SECRET_KEY.search(key):
        run.note(where, "secret")
        return "<secret>"
    for pattern, placeholder, what in _KEY_PLACEHOLDERS:
        if pattern.search(key):
            run.note(where, what)
            return placeholder
    return None


def _text(text: str, where: str, run: _Pass) -> str:
    """``text`` through every rule, in order; each rule that changed it is noted."""
    known = run.seen.get(text)
    if known is None:
        known = run.seen[text] = _redacted(text, run)
    for what in known[1]:
        run.note(where, what)
    return known[0]


def _redacted(text: str, run: _Pass) -> tuple[str, tuple[str, ...]]:
    whats: dict[str, None] = {}
    for what, needs, rule in _RULES:
        if needs and not any(piece in text for piece in needs):
            continue  # a cheap test first: most texts hold none of what a rule looks for
        changed = rule(text, run)
        if changed != text:
            whats[what] = None
            text = changed
    for pattern, placeholder, what in run.words:
        changed = pattern.sub(placeholder, text)
        if changed != text:
            whats[what] = None
            text = changed
    return text, tuple(whats)


def _sub(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]
         ) -> Callable[[str, _Pass], str]:
    return lambda text, run: pattern.sub(replace, text)


def _address(text: str) -> str | None:
    """The placeholder for an IP address, or None when ``text`` is not one."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified:
        return "<loopback>"
    if address.is_private or address.is_link_local or address in _CGNAT:
        return "<private-ip>"
    return "<ip>"


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _host(host: str) -> str | None:
    """The placeholder for a URL's host, or None for a public service host (kept)."""
    if host.startswith("<") and host.endswith(">"):
        return host  # already a placeholder
    address = _address(host)
    if address is not None:
        return address
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "<loopback>"
    if any(name == public or name.endswith("." + public) for public in PUBLIC_HOSTS):
        return None
    return "<host>"


def _authority(match: re.Match[str]) -> str:
    """A URL's ``user:password@host:port`` with the credentials, host and port replaced."""
    auth = match["auth"]
    _, at, hostport = auth.rpartition("@")
    v6 = re.fullmatch(r"(\[[^\]]*\])(?::\d*)?", hostport)
    host = v6.group(1) if v6 else hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
    placeholder = _host(host)
    shown = hostport if placeholder is None else placeholder
    return f"{match['scheme']}://{'<secret>@' if at else ''}{shown}"


def _unc(match: re.Match[str]) -> str:
    placeholder = _host(match["host"])
    return match.group(0) if placeholder is None else f"{match['lead']}{placeholder}"


def _bare_address(match: re.Match[str]) -> str:
    text = match["ip"] or match["ip6"]
    if text.startswith("0.") or not any(c.isalnum() for c in text):
        return match.group(0)  # "0.3.36.1" is a version: no host has a 0.x address
    placeholder = _address(text)
    return match.group(0) if placeholder is None else placeholder


def _host_port(match: re.Match[str]) -> str:
    placeholder = _host(match["host"])
    return match.group(0) if placeholder is None else placeholder


def _home(match: re.Match[str]) -> str:
    return "<home>"


def _known_homes(text: str, run: _Pass) -> str:
    return text if run.homes is None else run.homes.sub("<home>", text)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _key_value(match: re.Match[str]) -> str:
    value = match["value"]
    if value.isdigit() or _entropy(value) < 3.0:
        return match.group(0)
    return f"{match['key']}{match['sep']}<secret>"


def _serial(match: re.Match[str]) -> str:
    if not any(c.isdigit() for c in match["value"]):
        return match.group(0)  # "serial console": a word, not a number
    return f"{match['label']}{match['sep']}<serial>"


def _registered(text: str, run: _Pass) -> str:
    scrubbed = secrets.scrub(text)
    return text if scrubbed == text else scrubbed.replace(secrets.REDACTED, "<secret>")


def _token(match: re.Match[str]) -> str:
    kept = match.groupdict().get("keep") or ""
    return f"{kept}<secret>"


def _scoped(pattern: re.Pattern[str]) -> str:
    flags = "".join(letter for flag, letter in ((re.IGNORECASE, "i"), (re.DOTALL, "s"))
                    if pattern.flags & flag)
    return f"(?{flags}:{pattern.pattern})" if flags else f"(?:{pattern.pattern})"


# secrets.TOKEN_PATTERNS as one alternation: one scan of the text, not one per pattern
_TOKENS = re.compile("|".join(_scoped(p) for p in secrets.TOKEN_PATTERNS))


# Order matters: credentials before the e-mail rule sees "user@host", URLs before bare
# hosts, UUIDs before IPv6 and MAC addresses, home paths before user names.
# Each rule: what it removes, the pieces a text must hold for the rule to match at all (any
# one of them; none listed: always run), and the rule.
_RULES: tuple[tuple[str, tuple[str, ...], Callable[[str, _Pass], str]], ...] = (
    ("secret", (), _registered),
    ("secret", (), _sub(_TOKENS, _token)),
    ("host name and port", ("://",), _sub(_URL, _authority)),
    ("host name", ("\\\\",), _sub(_UNC, _unc)),
    ("secret", (":", "="), _sub(_KEY_VALUE, _key_value)),
    ("secret", ("--",), _sub(_FLAG_VALUE, lambda m: f"{m['key']}{m['sep']}<secret>")),
    ("e-mail address", ("@",), _sub(_EMAIL, lambda m: "<email>")),
    ("UUID", ("-",), _sub(_UUID, lambda m: "<uuid>")),
    ("serial number", (), _sub(_SERIAL, _serial)),
    ("MAC address", (":", "-"), _sub(_MAC, lambda m: "<mac>")),
    ("home directory", (), _known_homes),
    ("home directory", ("/", "\\", "~"), _sub(_HOME, _home)),
    ("host name and port", (":",), _sub(_HOST_PORT, _host_port)),
    ("host name", (".",), _sub(_PRIVATE_SUFFIX, lambda m: "<host>")),
    ("IP address", (".", ":"), _sub(_BARE_IP, _bare_address)),
    ("user name", ("@<",), _sub(_USER_AT_HOST, lambda m: "<user>@")),
)
