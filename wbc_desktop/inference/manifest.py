"""The model manifest: the single source of truth for class order, input size, temperature and threshold."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from wbc_desktop.core.canonical import VIEWS
from wbc_desktop.core.metrics import MAX_TEMPERATURE

MANIFEST_NAME = "manifest.json"
KERAS_FILE = "wbc_mobilenetv2.keras"  # the model's source of truth beside its .tflite (training, fine-tuning)


class ModelError(Exception):
    """The model cannot be used; ``str(error)`` says why in words a technician or admin understands."""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    model_file: str
    sha256: str
    classes: tuple[str, ...]
    input_size: int
    temperature: float = 1.0
    review_threshold: float = 0.9
    preprocessing: str = "RGB uint8, Pillow bilinear resize to input_size; scaling inside the model"
    outputs: dict[str, int] = field(default_factory=lambda: {"logits": 0})
    view: str = "resize"  # how an image becomes the model's input: wbc_desktop.core.canonical.model_view
    extra: dict = field(default_factory=dict)  # training data, metrics, anything else recorded

    @property
    def feature_size(self) -> int | None:
        return self.extra.get("feature_size")

    def to_dict(self) -> dict:
        data = dict(self.extra)
        data.update(
            name=self.name,
            version=self.version,
            model_file=self.model_file,
            sha256=self.sha256,
            classes=list(self.classes),
            input_size=self.input_size,
            temperature=self.temperature,
            review_threshold=self.review_threshold,
            preprocessing=self.preprocessing,
            outputs=self.outputs,
            view=self.view,
        )
        return data


REQUIRED_KEYS = ("name", "version", "model_file", "sha256", "classes", "input_size")


def read_manifest(model_dir: str | Path) -> Manifest:
    """Read and validate ``manifest.json`` in ``model_dir``; raise :class:`ModelError` on any problem."""
    path = Path(model_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model manifest not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"model manifest cannot be read ({path}): {error}") from None
    except RecursionError:
        raise ModelError(f"model manifest cannot be read ({path}): nested too deeply") from None
    if not isinstance(data, dict):
        raise ModelError(f"model manifest is not a JSON object: {path}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ModelError(f"model manifest lacks {', '.join(missing)}: {path}")
    classes = data["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ModelError("model manifest: 'classes' must be a non-empty list of names")
    if Path(data["model_file"]).name != data["model_file"]:
        # The model is only ever loaded from inside its own store, never from a path the manifest points to.
        raise ModelError("model manifest: 'model_file' must be a file name inside the model folder")
    known = set(REQUIRED_KEYS) | {"temperature", "review_threshold", "preprocessing", "outputs", "view"}
    if data.get("view", "resize") not in VIEWS:
        raise ModelError(f"model manifest: unknown view {data.get('view')!r} (known: {', '.join(VIEWS)})")
    check_classes(classes, "model manifest")
    try:
        manifest = Manifest(
            name=str(data["name"]),
            version=str(data["version"]),
            model_file=data["model_file"],
            sha256=str(data["sha256"]).lower(),
            classes=tuple(classes),
            input_size=int(data["input_size"]),
            temperature=float(data.get("temperature", 1.0)),
            review_threshold=float(data.get("review_threshold", 0.9)),
            preprocessing=str(data.get("preprocessing", "")),
            outputs=dict(data.get("outputs", {"logits": 0})),
            view=str(data.get("view", "resize")),
            extra={k: v for k, v in data.items() if k not in known},
        )
    except (TypeError, ValueError) as error:
        raise ModelError(f"model manifest has a bad value: {error}") from None
    check_setting("temperature", manifest.temperature, 0.0, MAX_TEMPERATURE)
    check_setting("review_threshold", manifest.review_threshold, 0.0, 1.0)
    if not 8 <= manifest.input_size <= 1024:
        raise ModelError(f"model manifest: input_size {manifest.input_size} px is not a model input size")
    return manifest


def check_setting(name: str, value: float, above: float, at_most: float, where: str = "model manifest") -> None:
    """``above < value <= at_most`` and finite, else :class:`ModelError` naming the setting: a temperature of 0
    or NaN made every call *basophil* with confidence NaN, a negative one inverted every call."""
    if not math.isfinite(value) or not above < value <= at_most:
        raise ModelError(f"{where}: {name} must be a number above {above:g} and at most {at_most:g}, not {value!r}")


def check_classes(classes: list[str] | tuple[str, ...], where: str) -> None:
    """Class names unique and in the order training writes them (sorted by name, as the folders are read):
    a list with two names swapped would otherwise label every cell of one class as the other, silently."""
    if len(set(classes)) != len(classes):
        raise ModelError(f"{where}: a class is named twice in {list(classes)}")
    if list(classes) != sorted(classes):
        raise ModelError(
            f"{where}: classes {list(classes)} are not in the order the model was trained in (sorted by name); "
            "a reordered list would mislabel cells"
        )


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_verified_model(model_dir: str | Path, manifest: Manifest) -> bytes:
    """The model file's bytes, after checking them against the manifest's sha256.

    The verified bytes are what gets loaded, so nothing can swap the file between check and use.
    """
    path = Path(model_dir) / manifest.model_file
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file is missing: {path}") from None
    except OSError as error:
        raise ModelError(f"model file cannot be read ({path}): {error}") from None
    actual = sha256_bytes(content)
    if actual != manifest.sha256:
        raise ModelError(
            f"model file does not match its manifest (sha256 {actual[:12]}… instead of "
            f"{manifest.sha256[:12]}…): it is damaged or was changed. Reinstall the app or restore the model."
        )
    return content
