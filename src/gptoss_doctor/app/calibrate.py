"""`gptoss-doctor calibrate`: per-machine corrections from the user's `bench speed` runs.

Each results file is read through ``bench.results.load`` (hostile input: one line, exit 2)
and becomes one ``install.corrections.Run``: the machine it ran on (fingerprint and label
of the snapshot it records), the placement the doctor predicted for it, and measured /
predicted for generation (depth-0 tg tests) and prompt processing (depth-0 pp tests of at
least one 512-token micro-batch), recomputed from the tests' means and the recorded
prediction. Runs accumulate in ``calibration.json`` in the user's configuration folder
(``settings.config_dir``), written atomically; the doctor applies the corrections for the
machine it assesses (``corrected``). Design notes: docs/calibration.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor import __version__
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.bench import results
from gptoss_doctor.errors import DoctorError, SnapshotError, UsageError
from gptoss_doctor.files import write_text
from gptoss_doctor.install import corrections
from gptoss_doctor.install.corrections import Correction, Run
from gptoss_doctor.install.predict import UBATCH
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.install.verdict_records import Assessment, ModelVerdict
from gptoss_doctor.jsonin import MIB, Limits, read_json, shown
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.serialize import from_dict
from gptoss_doctor.serde import to_json
from gptoss_doctor.settings import current

STORE_NAME = "calibration.json"
STORE_KIND = "gptoss-doctor/calibration"
STORE_VERSION = 1
# 50 runs x 3 placements x a few machines fit in well under a MiB.
STORE_LIMITS = Limits(max_bytes=1 * MIB, max_depth=6, max_text=512)
MAX_WORDS = 256  # a run's label and date as stored
RESET_HINT = "`gptoss-doctor calibrate --reset` starts over"
RUN_KEYS = {"machine": str, "label": str, "placement": str, "model": str, "created_at": str}


class CalibrationError(UsageError):
    """A results file or the stored calibration cannot be used: exit code 2."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The stored runs, the corrections they give, and what this call added or skipped."""

    store: Path
    this_machine: str  # fingerprint of the machine the command runs on
    runs: tuple[Run, ...]
    corrections: tuple[Correction, ...]
    added: int = 0
    skipped: tuple[str, ...] = ()  # "FILE: why" for files without a usable prediction


def store_path() -> Path:
    return current().config_dir / STORE_NAME


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _ratio(measured: list[float], predicted: float | None, path: Path) -> float | None:
    """Geometric mean of measured / predicted, or None; an implausible one is refused."""
    if not measured or not predicted or predicted <= 0:
        return None
    ratios = [m / predicted for m in measured]
    wrong = [r for r in ratios if not corrections.plausible(r)]
    if wrong:
        low, high = corrections.RATIO_RANGE
        raise CalibrationError(f"{path}: measured / predicted {wrong[0]:.3g} is outside "
                               f"{low:g}-{high:g}; not a run of the predicted setup")
    return round(math.exp(sum(math.log(r) for r in ratios) / len(ratios)), 4)


def _placement(roofline: dict[str, Any], config: dict[str, Any]) -> str:
    """The prediction's placement, else (files before it was recorded) the run's settings."""
    recorded = roofline.get("predicted_placement")
    if isinstance(recorded, str):
        return corrections.PLACEMENT_GROUP[recorded]
    if config.get("n_gpu_layers") == 0 or config.get("device") == "cpu":
        return "cpu"
    return "expert-offload" if config.get("n_cpu_moe") else "gpu"


def run_of(record: dict[str, Any], path: Path) -> Run | str:
    """The run in a loaded results file, or why it has none to calibrate with."""
    if record["suite"] != "speed" or "roofline" not in record:
        return "not an in-process `bench speed` run (endpoint and tools runs predict nothing)"
    roofline, model = record["roofline"], record["model"]
    key = model.get("gpt_oss")
    tg_predicted = _number(roofline.get("predicted_tokens_per_s"))
    if key not in ("20b", "120b") or tg_predicted is None:
        return ("no prediction recorded (not gpt-oss-20b/120b, or written before `bench speed` "
                "recorded the doctor's prediction)")
    try:
        snap = from_dict(record["machine"])
    except SnapshotError:
        return "its machine snapshot is from an older probe"
    ok = [t for t in record["tests"] if t.get("status") == "ok" and not t.get("depth")
          and _number(t.get("mean_ts"))]
    tg = _ratio([t["mean_ts"] for t in ok if t["kind"] == "tg"], tg_predicted, path)
    pp = _ratio([t["mean_ts"] for t in ok if t["kind"] == "pp" and t["n_tokens"] >= UBATCH],
                _number(roofline.get("predicted_prompt_tokens_per_s")), path)
    if tg is None and pp is None:
        return "no finished depth-0 tg test (or pp test of 512 tokens or more)"
    # the store reads texts of at most 512 characters (STORE_LIMITS): a results file's words
    # are cut to fit, or one long name would break every later calibrate and doctor
    return Run(corrections.fingerprint(snap), corrections.label(snap)[:MAX_WORDS],
               _placement(roofline, record["config"]), key,
               str(record["created_at"])[:MAX_WORDS], tg, pp)


def _run_from_json(item: Any, index: int, path: Path) -> Run:
    where = f"{path}: runs[{index}]"
    if not isinstance(item, dict) or set(item) != {*RUN_KEYS, "tg_ratio", "pp_ratio"}:
        raise CalibrationError(f"{where} does not have the keys of a run", RESET_HINT)
    for name, kind in RUN_KEYS.items():
        if not isinstance(item[name], kind):
            raise CalibrationError(f"{where}.{name} is not a string", RESET_HINT)
    if item["placement"] not in set(corrections.PLACEMENT_GROUP.values()):
        raise CalibrationError(f"{where}.placement is not a placement", RESET_HINT)
    ratios = [item["tg_ratio"], item["pp_ratio"]]
    for value in ratios:
        if value is not None and (_number(value) is None or not corrections.plausible(value)):
            raise CalibrationError(f"{where} has a ratio that is not a plausible number",
                                   RESET_HINT)
    if ratios == [None, None]:
        raise CalibrationError(f"{where} has neither a tg nor a pp ratio", RESET_HINT)
    return Run(item["machine"], item["label"], item["placement"], item["model"],
               item["created_at"], _number(item["tg_ratio"]), _number(item["pp_ratio"]))


def stored_runs(path: Path) -> tuple[Run, ...]:
    """The runs kept in ``path`` (none when it does not exist); a damaged file is one line."""
    if not path.exists():
        return ()
    data = read_json(path, STORE_LIMITS, kind="a calibration file", error=CalibrationError)
    if not isinstance(data, dict) or data.get("kind") != STORE_KIND:
        raise CalibrationError(f"{path} is not a gptoss-doctor calibration file", RESET_HINT)
    if data.get("schema_version") != STORE_VERSION or not isinstance(data.get("runs"), list):
        raise CalibrationError(f"{path} is not calibration schema {STORE_VERSION}", RESET_HINT)
    return tuple(_run_from_json(item, i, path) for i, item in enumerate(data["runs"]))


def _save(path: Path, runs: tuple[Run, ...]) -> None:
    import json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalibrationError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    write_text(path, json.dumps({"kind": STORE_KIND, "schema_version": STORE_VERSION,
                                 "tool_version": __version__, "runs": to_json(runs)},
                                indent=2) + "\n")


def _result(path: Path, snap: HardwareSnapshot | None, runs: tuple[Run, ...],
            added: int = 0, skipped: tuple[str, ...] = ()) -> Calibration:
    """The outcome, with this machine (probed now unless ``snap`` is given) named."""
    machine = corrections.fingerprint(snap or take_snapshot())
    return Calibration(path, machine, runs, corrections.fit(runs), added, skipped)


def calibrate(files: tuple[Path, ...], feedback: Feedback,
              snap: HardwareSnapshot | None = None) -> Calibration:
    """Add the runs in ``files`` to the stored ones; nothing is written when a file is bad
    or none has a usable run."""
    if not files:
        raise UsageError("give at least one `bench speed` results file",
                         "gptoss-doctor calibrate gptoss-bench-speed-*.json")
    path = store_path()
    kept = stored_runs(path)
    new: list[Run] = []
    skipped: list[str] = []
    with feedback.task("reading results files", total=len(files)) as task:
        for file in files:
            found = run_of(results.load(file), file)
            if isinstance(found, Run):
                new.append(found)
            else:
                skipped.append(f"{file}: {found}")
            task.update(advance=1)
    if not new:
        raise CalibrationError("no results file holds a run to calibrate with: "
                               + "; ".join(shown(s) for s in skipped[:3]))
    runs = corrections.merge(kept, tuple(new))
    _save(path, runs)
    return _result(path, snap, runs, len(set(runs) - set(kept)), tuple(skipped))


def show(snap: HardwareSnapshot | None = None) -> Calibration:
    path = store_path()
    return _result(path, snap, stored_runs(path))


def reset(snap: HardwareSnapshot | None = None) -> Calibration:
    """Forget every stored run (removes the file)."""
    path = store_path()
    if path.is_dir():
        raise CalibrationError(f"{path} is a folder, not a calibration file")
    if path.exists() or path.is_symlink():
        path.unlink()
    return _result(path, snap, ())


def corrected(assessment: Assessment, snap: HardwareSnapshot) -> Assessment:
    """``assessment`` with the stored corrections for the machine in ``snap`` applied."""
    path = store_path()
    if not path.exists():
        return assessment
    return corrections.apply(assessment, snap, corrections.fit(stored_runs(path)))


def chosen(snap: HardwareSnapshot, model: str, engine: str = "auto") -> ModelVerdict:
    """The corrected verdict that `install` and the LM Studio plan act on: ``model``, or for
    ``auto`` the largest model that runs at reading speed (else the largest that runs, else
    20b); one line with the fix where it does not fit."""
    assessment = corrected(assess(snap, engine=engine), snap)
    if model == "auto":
        fast = [v for v in assessment.verdicts if v.status == "runs"]
        runnable = fast or [v for v in assessment.verdicts if v.can_run]
        model = runnable[-1].key if runnable else "20b"
    verdict = assessment.verdict(model)
    if not verdict.can_run:
        raise DoctorError(f"{verdict.model} does not fit this machine: {verdict.reasons[0]}",
                          verdict.fixes[0] if verdict.fixes else "run `gptoss-doctor`")
    return verdict
