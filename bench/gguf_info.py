"""Identity of a GGUF file: validated header, architecture, quantization, synthetic or not.

Checks happen before llama.cpp sees the file, so a wrong or damaged file gives one clear
line instead of a loader crash: not a GGUF, truncated, or the wrong architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gptoss_doctor.bench.synth import SYNTHETIC_KEY
from gptoss_doctor.errors import DoctorError

GGUF_MAGIC = b"GGUF"


class ModelFileError(DoctorError):
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
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except (ValueError, IndexError, OSError) as exc:
        raise ModelFileError(f"{path.name} is damaged or truncated ({exc})") from None
    size = path.stat().st_size
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise ModelFileError(f"{path.name} is truncated: {size} bytes, tensors need {end}",
                             "download it again")

    def field(key: str) -> object:
        found = reader.fields.get(key)
        return found.contents() if found is not None else None

    architecture = str(field("general.architecture") or "unknown")
    if require_gpt_oss and architecture != "gpt-oss":
        raise ModelFileError(f"{path.name} is a {architecture} model, not gpt-oss")
    file_type = field("general.file_type")
    name = field("general.name")
    return ModelInfo(path=str(path.resolve()), file_name=path.name, size_bytes=size,
                     architecture=architecture, name=str(name) if name is not None else None,
                     file_type=int(file_type) if isinstance(file_type, int) else None,
                     synthetic=field(SYNTHETIC_KEY) is True, n_tensors=len(reader.tensors))

