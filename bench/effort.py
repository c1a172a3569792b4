"""Is reasoning effort honoured? Analysis-channel token counts per effort, compared.

gpt-oss is trained to reason longer at a higher effort (the system message's
``Reasoning: low|medium|high``). Tool-use results files keep every completion, so the
reasoning each attempt wrote can be counted after the fact: the analysis messages of an
in-process run's token ids (parsed with openai-harmony), or the reasoning a server
returned (``reasoning_content``/``reasoning``, Responses reasoning items), counted in o200k
tokens. Runs of one model through one engine and API are grouped; each pair of efforts is
compared with a one-sided Mann–Whitney U test and a permutation test of the means
(``bench.stats``): the higher effort should reason longer. A synthetic model's random
weights ignore the system message, so its groups are "not measurable", whatever the
numbers say.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from gptoss_doctor.bench import harmony, stats

EFFORTS = ("low", "medium", "high")
ALPHA = 0.05
NOT_MEASURABLE = ("not measurable: a synthetic model's random weights ignore the effort "
                  "(its reasoning length is noise)")


def analysis_tokens(attempt: dict[str, Any]) -> int | None:
    """Tokens of reasoning over an attempt's turns; None when no turn could be read (a
    failed attempt, or completions that are not harmony)."""
    total, read = 0, False
    for turn in attempt.get("turns") or []:
        if "error" in turn:
            continue
        if isinstance(turn.get("message"), dict):  # a server's answer
            total += harmony.count_tokens(str(turn["message"].get("reasoning") or ""))
            read = True
            continue
        parsed = harmony.parse_completion(turn.get("completion_ids") or [])
        if parsed.error is None:
            total += sum(harmony.count_tokens(m.text) for m in parsed.messages
                         if m.channel == "analysis")
            read = True
    return total if read else None


def group_key(record: dict[str, Any]) -> tuple[str, ...]:
    """What must be equal for two runs' reasoning lengths to be compared: the model, the
    engine, the method and the API (everything but the effort)."""
    keys = record["key_properties"]
    return tuple(str(keys.get(k)) for k in ("model", "model_sha256", "engine", "method",
                                            "api", "renderer", "suite_sha256"))


def _summary(counts: Sequence[int], attempts: int) -> dict[str, Any]:
    return {"attempts": attempts, "counted": len(counts),
            "median": statistics.median(counts) if counts else None,
            "mean": round(statistics.fmean(counts), 2) if counts else None,
            "min": min(counts) if counts else None, "max": max(counts) if counts else None}


def _pair(low: str, high: str, a: Sequence[int], b: Sequence[int]) -> dict[str, Any]:
    """``high`` reasons longer than ``low``? (one-sided tests)."""
    if len(a) < 2 or len(b) < 2:
        return {"lower": low, "higher": high, "u": None, "p_mann_whitney": None,
                "p_permutation": None}
    rank = stats.mann_whitney(b, a, "greater")
    perm = stats.permutation_test(b, a, "greater")
    return {"lower": low, "higher": high, "u": rank.statistic,
            "p_mann_whitney": round(rank.p, 6), "p_permutation": round(perm.p, 6)}


def _verdict(synthetic: bool, efforts: list[str], pairs: list[dict[str, Any]]) -> str:
    if synthetic:
        return NOT_MEASURABLE
    if len(efforts) < 2:
        return "one effort only: run bench tools --reasoning with another effort"
    adjacent = [p for p in pairs if EFFORTS.index(p["higher"]) - EFFORTS.index(p["lower"])
                == 1 or len(efforts) == 2]
    if any(p["p_mann_whitney"] is None for p in adjacent):
        return "too few attempts with readable reasoning to test"
    if all(p["p_mann_whitney"] < ALPHA for p in adjacent):
        return f"honoured: each higher effort reasons longer (p < {ALPHA})"
    return f"not shown: some higher effort does not reason longer at p < {ALPHA}"


def compare(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One comparison per group of tool-use runs that differ only in their effort."""
    groups: dict[tuple[str, ...], dict[str, list[dict[str, Any]]]] = {}
    for record in records:
        effort = record["config"]["reasoning"]
        groups.setdefault(group_key(record), {}).setdefault(effort, []).append(record)
    found = []
    for by_effort in groups.values():
        first = next(iter(by_effort.values()))[0]
        efforts = [e for e in EFFORTS if e in by_effort]
        counts: dict[str, list[int]] = {}
        summaries = {}
        for effort in efforts:
            attempts = [a for r in by_effort[effort] for a in r["attempts"]]
            counts[effort] = [n for a in attempts if (n := analysis_tokens(a)) is not None]
            summaries[effort] = _summary(counts[effort], len(attempts))
        pairs = [_pair(low, high, counts[low], counts[high])
                 for i, low in enumerate(efforts) for high in efforts[i + 1:]]
        keys = first["key_properties"]
        synthetic = bool(first["model"].get("synthetic"))
        model = keys.get("model") or first["model"].get("name") or first["model"]["file_name"]
        found.append({"model": model, "engine": keys.get("engine"),
                      "method": keys.get("method"), "api": keys.get("api"),
                      "synthetic": synthetic, "efforts": summaries, "tests": pairs,
                      "verdict": _verdict(synthetic, efforts, pairs)})
    return found
