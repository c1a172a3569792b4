"""Synthetic gpt-oss GGUFs: exact release shapes, the real vocabulary, safe writing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gptoss_doctor.bench import synth, vocab
from gptoss_doctor.catalog import GPT_OSS_20B, GPT_OSS_120B

GIB = 1024**3


def test_20b_tensor_table_matches_the_release() -> None:
    # ggml-org/gpt-oss-20b-GGUF: 459 tensors (289 F32, 98 Q8_0, 72 MXFP4), 11.27 GiB.
    specs = synth.tensor_specs(synth.SHAPES["20b"])
    assert len(specs) == 459
    assert Counter(s.ggml_type for s in specs) == {"F32": 289, "Q8_0": 98, "MXFP4": 72}
    total = synth.weights_bytes(synth.SHAPES["20b"])
    assert total == GPT_OSS_20B.shape.weights_bytes
    assert total / GIB == pytest.approx(11.27, abs=0.005)
    by_name = {s.name: s for s in specs}
    assert by_name["blk.0.ffn_down_exps.weight"].dims == (2880, 2880, 32)
    assert by_name["blk.23.attn_q.weight"].dims == (2880, 4096)
    assert by_name["blk.5.attn_k.weight"].dims == (2880, 512)
    assert by_name["output.weight"].dims == (2880, 201088)
    assert by_name["blk.0.attn_sinks.weight"].dims == (64,)


def test_120b_tensor_table_matches_the_release_size() -> None:
    specs = synth.tensor_specs(synth.SHAPES["120b"])
    assert len(specs) == 3 + 19 * 36
    assert synth.weights_bytes(synth.SHAPES["120b"]) == GPT_OSS_120B.shape.weights_bytes
    assert synth.weights_bytes(synth.SHAPES["120b"]) / GIB == pytest.approx(59.02, abs=0.005)


def test_vocabulary_is_the_verified_o200k_with_harmony_specials(tmp_path: Path) -> None:
    path = vocab.export_o200k(tmp_path / "enc")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == vocab.O200K_SHA256
    gguf_vocab = vocab.harmony_gguf_vocab()
    assert len(gguf_vocab.tokens) == 201088
    assert gguf_vocab.tokens[200005] == "<|channel|>" and gguf_vocab.tokens[200012] == "<|call|>"
    assert gguf_vocab.tokens[200001] == "<|reserved_200001|>"
    assert gguf_vocab.token_types[199997] == 1 and gguf_vocab.token_types[199998] == 3
    assert gguf_vocab.tokens[1] == '"' and gguf_vocab.tokens[220] == "Ġ"  # GPT-2 byte level
    # Every multi-byte base token is reachable by exactly one recovered merge.
    assert len(gguf_vocab.merges) == sum(1 for t in vocab.o200k_ranks() if len(t) > 1)


def test_merge_recovery_on_a_hand_made_vocabulary() -> None:
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4, b"bc": 5}
    # "abc" is built from "ab" + "c": "ab" (rank 3) merges before "bc" (rank 5).
    assert vocab.recover_merges(ranks) == [(b"a", b"b"), (b"ab", b"c"), (b"b", b"c")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("synth") / "tiny.gguf",
                                 seed=7).path


def test_tiny_file_metadata_marks_it_synthetic(tiny: Path) -> None:
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(tiny)
    fields = reader.fields
    assert fields["general.architecture"].contents() == "gpt-oss"
    assert fields[synth.SYNTHETIC_KEY].contents() is True
    assert fields["gptoss_doctor.seed"].contents() == 7
    assert "synthetic" in fields["general.name"].contents()
    # llama.cpp type-checks these keys strictly: counts u32, floats f32.
    assert fields["gpt-oss.block_count"].types == [GGUFValueType.UINT32]
    assert fields["gpt-oss.attention.key_length"].contents() == 64
    assert fields["gpt-oss.rope.freq_base"].types == [GGUFValueType.FLOAT32]
    assert fields["gpt-oss.rope.scaling.type"].contents() == "yarn"
    assert fields["tokenizer.ggml.pre"].contents() == "gpt-4o"
    assert fields["tokenizer.ggml.eos_token_id"].contents() == vocab.RETURN_ID
    assert "<|start|>assistant" in fields["tokenizer.chat_template"].contents()
    assert len(reader.tensors) == 3 + 19 * 2
    for tensor, spec in zip(reader.tensors, synth.tensor_specs(synth.SHAPES["tiny"]),
                            strict=True):
        assert (tensor.name, int(tensor.n_bytes)) == (spec.name, spec.n_bytes)
        assert tensor.tensor_type.name == spec.ggml_type


def test_same_seed_same_bytes_other_seed_other_bytes(tiny: Path, tmp_path: Path) -> None:
    again = synth.write_synthetic("tiny", tmp_path / "a.gguf", seed=7).path
    other = synth.write_synthetic("tiny", tmp_path / "b.gguf", seed=8).path
    assert again.read_bytes() == tiny.read_bytes()
    assert other.read_bytes() != tiny.read_bytes()
    assert other.stat().st_size == tiny.stat().st_size


def test_refuses_when_the_disk_is_too_small(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(synth.SynthError, match="not enough disk space"):
        synth.write_synthetic("20b", folder / "big.gguf", free_bytes=lambda _p: 10 * GIB)
    assert list(folder.iterdir()) == []


def test_an_interrupted_write_leaves_no_file(tmp_path: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        synth.write_synthetic("tiny", folder / "t.gguf", progress=interrupt)
    assert list(folder.iterdir()) == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_synth_command_writes_the_file_and_reports_json(tmp_path: Path) -> None:
    target = tmp_path / "tiny.gguf"
    done = _cli("synth", "tiny", "-o", str(target), "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["synthetic"] is True and report["tensors"] == 41
    assert report["size_bytes"] == target.stat().st_size


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(("synth", "7b", "-o", "x.gguf"), "'7b' is not one of", id="unknown shape"),
    pytest.param(("synth", "tiny", "-o", "/nonexistent-dir/x.gguf"), "does not exist",
                 id="missing folder"),
    pytest.param(("synth", "tiny"), "Missing option", id="no output"),
])
def test_synth_command_bad_input(args: tuple[str, ...], message: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
