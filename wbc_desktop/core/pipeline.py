"""The one-way walk from paths to classified cells, as a generator: each yield is a progress tick and a
cancel point, for the CLI's progress bar and the GUI's worker alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wbc_desktop.core.images import ImageLoadError, load_image


@dataclass
class CellResult:
    """One image's outcome: a label with per-class probabilities, or an error message."""

    path: Path
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values()) if self.probabilities else 0.0


def classify_iter(
    paths: Iterable[Path],
    classifier,
    *,
    batch_size: int = 16,
    loader: Callable[[Path], np.ndarray] = load_image,
) -> Iterator[CellResult]:
    """Yield one :class:`CellResult` per path, in order. Bad files become results with ``error`` set.

    Images are decoded one batch at a time, so memory stays bounded by ``batch_size`` whatever the number of
    paths (which may be a lazy iterator).
    """
    classes = tuple(classifier.classes)
    pending: list[tuple[Path, np.ndarray | None, str | None]] = []

    def flush() -> Iterator[CellResult]:
        good = [(i, image) for i, (_, image, _) in enumerate(pending) if image is not None]
        probabilities: dict[int, np.ndarray] = {}
        batch_error = None
        if good:
            try:
                predicted = classifier.predict([image for _, image in good])
                probabilities = {i: row for (i, _), row in zip(good, predicted, strict=True)}
            except Exception as error:
                batch_error = f"classification failed: {error}"
        for i, (path, _, error) in enumerate(pending):
            if error is None and i in probabilities:
                row = probabilities[i]
                probs = {name: float(p) for name, p in zip(classes, row, strict=True)}
                yield CellResult(path, classes[int(np.argmax(row))], probs)
            else:
                yield CellResult(path, error=error or batch_error)
        pending.clear()

    for path in paths:
        path = Path(path)
        try:
            pending.append((path, loader(path), None))
        except ImageLoadError as error:
            pending.append((path, None, str(error)))
        except Exception as error:
            pending.append((path, None, f"image cannot be read: {error}"))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
