"""Identity of a GGUF file: validated header, architecture, quantization, synthetic or not.

Checks happen before llama.cpp sees the file, so a wrong or damaged file gives one clear
line instead of a loader crash: not a GGUF, truncated, or the wrong architecture.

The header is parsed here (GGUF v2/v3: key-value metadata, then tensor infos) over a
memory map, skipping array values instead of building them: the o200k vocabulary is
201,088 strings, which a full reader turns into Python objects one by one. Every count and
length is checked against the bytes that remain, so a hostile header cannot make it loop
or allocate.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor.bench.synth import SYNTHETIC_KEY
from gptoss_doctor.errors import UsageError

GGUF_MAGIC = b"GGUF"
# GGUF value types: fixed-size scalars (struct format), 8 = string, 9 = array
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
WANTED = ("general.architecture", "general.file_type", "general.name", "general.alignment",
          SYNTHETIC_KEY)
MAX_ITEMS = 1 << 32


class ModelFileError(UsageError):
    """The model file is missing, not a GGUF, damaged, or not the model we need."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: str
    file_name: str
    size_bytes: int
    architecture: str
    name: str | None
    file_type: int | None
    synthetic: bool
    n_tensors: int
    sha256: str | None = None

    @property
    def is_gpt_oss(self) -> bool:
        return self.architecture == "gpt-oss"


def read_info(path: Path, require_gpt_oss: bool = False) -> ModelInfo:
    """Validate ``path`` and read its identity (no weights are read)."""
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a GGUF file",
                             "an MLX model folder runs with --engine mlx or --engine auto")
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ModelFileError(f"{path.name} is not a GGUF file")
    try:
        with open(path, "rb") as handle, \
                mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            fields, n_tensors, end = _parse(data)
    except (struct.error, ValueError, IndexError, OverflowError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path.name} is damaged or truncated ({exc})") from None
    size = path.stat().st_size
    if end > size:
        raise ModelFileError(f"{path.name} is truncated: {size} bytes, tensors need {end}",
                             "download it again")

    def field(key: str) -> object:
        return fields.get(key)

    architecture = str(field("general.architecture") or "unknown")
    if require_gpt_oss and architecture != "gpt-oss":
        raise ModelFileError(f"{path.name} is a {architecture} model, not gpt-oss")
    file_type = field("general.file_type")
    name = field("general.name")
    return ModelInfo(path=str(path.resolve()), file_name=path.name, size_bytes=size,
                     architecture=architecture, name=str(name) if name is not None else None,
                     file_type=int(file_type) if isinstance(file_type, int) else None,
                     synthetic=field(SYNTHETIC_KEY) is True, n_tensors=n_tensors)



class _Cursor:
    """Reads little-endian values from a buffer, every read bounded by its end."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def integer(self, fmt: str) -> int:
        return int(self.take(fmt))

    def count(self) -> int:
        value = self.integer("<Q")
        if value > MAX_ITEMS or value > len(self.data) - self.at:
            raise ValueError(f"a count of {value} at byte {self.at} exceeds the file")
        return value

    def string(self) -> str:
        length = self.count()
        text = bytes(self.data[self.at:self.at + length]).decode("utf-8")
        self.at += length
        return text

    def value(self, kind: int) -> object:
        if kind in SCALARS:
            return self.take(SCALARS[kind])
        if kind == STRING:
            return self.string()
        if kind != ARRAY:
            raise ValueError(f"unknown value type {kind}")
        item, n = self.integer("<I"), self.count()
        if item in SCALARS:
            self.at += n * struct.calcsize(SCALARS[item])  # skipped, not built
            return None
        for _ in range(n):
            self.value(item)
        return None


def _parse(data: mmap.mmap) -> tuple[dict[str, object], int, int]:
    """(wanted metadata, tensor count, end of the last tensor's data) of a GGUF header."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    cursor = _Cursor(data)
    cursor.at = 4  # past the magic
    version = cursor.take("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = cursor.count(), cursor.count()
    fields: dict[str, object] = {}
    for _ in range(n_kv):
        key = cursor.string()
        value = cursor.value(cursor.integer("<I"))
        if key in WANTED:
            fields[key] = value
    end = 0
    for _ in range(n_tensors):
        cursor.string()
        n_dims = cursor.integer("<I")
        if n_dims > 8:
            raise ValueError(f"a tensor with {n_dims} dimensions")
        elements = 1
        for _ in range(n_dims):
            elements *= cursor.count() or 1
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(cursor.integer("<I"))]
        offset = cursor.integer("<Q")
        end = max(end, offset + elements // block * type_size)
    align = fields.get("general.alignment")
    alignment = align if isinstance(align, int) and align > 0 else 32
    start = -(-cursor.at // alignment) * alignment
    return fields, n_tensors, start + end
