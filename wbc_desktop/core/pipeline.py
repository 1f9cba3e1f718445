"""The one-way walk from paths to classified cells, as a generator: each yield is a progress tick and a
cancel point, for the CLI's progress bar and the GUI's worker alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wbc_desktop.core.fields import SINGLE_CELL_MAX_SIDE, crop_cell, find_wbcs, looks_like_field
from wbc_desktop.core.images import ImageLoadError, load_image

MODES = ("cell", "field", "auto")
NO_WBC_FOUND = "no white blood cell found in this field"


@dataclass
class CellResult:
    """One cell's outcome: a label with per-class probabilities, or an error message.

    A cell detected in a smear field has ``source`` (the field's path), ``box`` (``[x0, y0, x1, y1]`` in the
    field's pixels) and ``path`` ``"<field>#wbc<n>"``; ``crop`` holds its pixels until a consumer drops them.
    """

    path: Path
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    source: Path | None = None
    box: list[int] | None = None
    crop: np.ndarray | None = field(default=None, repr=False)
    domain_score: float | None = None  # > 1: the image looks unlike the training data
    first_of_image: bool = True  # once per input image (progress counts images; a field yields several cells)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values()) if self.probabilities else 0.0


@dataclass
class _Pending:
    path: Path
    image: np.ndarray | None
    error: str | None = None
    source: Path | None = None
    box: list[int] | None = None
    first: bool = True


def expand(path: Path, image: np.ndarray, mode: str) -> list[_Pending]:
    """One pending item for a single-cell image; one per detected WBC for a field (``mode`` decides)."""
    if mode == "cell" or (mode == "auto" and max(image.shape[:2]) <= SINGLE_CELL_MAX_SIDE):
        return [_Pending(path, image)]  # small images are single-cell crops: no need to look for fields
    detections = find_wbcs(image)
    if mode == "auto" and not looks_like_field(image, detections):
        return [_Pending(path, image)]
    if not detections:
        return [_Pending(path, None, NO_WBC_FOUND)]
    return [
        _Pending(
            Path(f"{path}#wbc{n}"), crop_cell(image, detection), source=path, box=list(detection.box), first=n == 1
        )
        for n, detection in enumerate(sorted(detections, key=lambda d: (d.box[1], d.box[0])), start=1)
    ]


def classify_iter(
    paths: Iterable[Path],
    classifier,
    *,
    batch_size: int = 16,
    loader: Callable[[Path], np.ndarray] = load_image,
    mode: str = "cell",
) -> Iterator[CellResult]:
    """Yield one :class:`CellResult` per cell, in order. Bad files become results with ``error`` set.

    ``mode`` is ``cell`` (each image is one cell), ``field`` (find the WBCs in each image) or ``auto`` (decide
    per image). Images are decoded one batch at a time, so memory stays bounded by ``batch_size`` whatever the
    number of paths (which may be a lazy iterator).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    classes = tuple(classifier.classes)
    pending: list[_Pending] = []

    def flush() -> Iterator[CellResult]:
        good = [(i, item.image) for i, item in enumerate(pending) if item.image is not None]
        probabilities: dict[int, np.ndarray] = {}
        domain: dict[int, float] = {}
        batch_error = None
        if good:
            try:
                images = [image for _, image in good]
                if hasattr(classifier, "analyse"):
                    predicted, scores = classifier.analyse(images)
                    if scores is not None:
                        domain = {i: float(score) for (i, _), score in zip(good, scores, strict=True)}
                else:
                    predicted = classifier.predict(images)
                probabilities = {i: row for (i, _), row in zip(good, predicted, strict=True)}
            except Exception as error:  # one failing batch must not stop the run
                batch_error = f"classification failed: {error}"
        for i, item in enumerate(pending):
            if item.error is None and i in probabilities:
                row = probabilities[i]
                probs = {name: float(p) for name, p in zip(classes, row, strict=True)}
                crop = item.image if item.source is not None else None
                label = classes[int(np.argmax(row))]
                yield CellResult(item.path, label, probs, None, item.source, item.box, crop, domain.get(i), item.first)
            else:
                error = item.error or batch_error
                yield CellResult(item.path, error=error, source=item.source, box=item.box, first_of_image=item.first)
        pending.clear()

    for path in paths:
        path = Path(path)
        try:
            pending.extend(expand(path, loader(path), mode))
        except ImageLoadError as error:
            pending.append(_Pending(path, None, str(error)))
        except Exception as error:  # unexpected decoder failures are per-file too
            pending.append(_Pending(path, None, f"image cannot be read: {error}"))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
