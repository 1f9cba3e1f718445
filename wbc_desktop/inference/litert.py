"""Run the bundled ``.tflite`` model with the LiteRT runtime (no TensorFlow import: 0.3 s instead of 10 s)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wbc_desktop.core.canonical import canonical_of_frame, frame_on_nucleus, model_view
from wbc_desktop.core.domain import DomainModel, colour_statistics
from wbc_desktop.core.pipeline import ViewSpec
from wbc_desktop.inference.base import dihedral_views, identity_of, mean_over_views, softmax
from wbc_desktop.inference.graph_edit import DIHEDRAL_VIEWS, GraphEditError, runtime_model
from wbc_desktop.inference.manifest import (
    MANIFEST_NAME,
    Manifest,
    ModelError,
    check_setting,
    read_manifest,
    read_verified_model,
    sha256_bytes,
)
from wbc_desktop.paths import model_store_dir

ROBUST_KEY = "robust_model"  # manifest entry: the model for cells the out-of-domain score calls foreign


class LiteRTClassifier:
    """Classifier over a verified LiteRT model; thread-safe (one interpreter, calls serialised)."""

    def __init__(self, model_dir: str | Path, num_threads: int | None = None, views: int | None = None):
        """``views``: for an ensemble over the 8 flips and turns of each cell (the stain-robust model), average
        over the first ``views`` only (:mod:`wbc_desktop.inference.graph_edit`)."""
        # deferred: importing LiteRT takes a third of a second; the window shows before the model loads
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        self.model_dir = Path(model_dir)
        self.manifest: Manifest = read_manifest(self.model_dir)
        content = read_verified_model(self.model_dir, self.manifest)  # checked by hash as stored
        self.views = views
        try:
            self._interpreter = Interpreter(model_content=content, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"model file cannot be loaded by LiteRT: {error}") from None
        # int8 weights run at half speed on LiteRT's hybrid kernels: the first batch gets an interpreter over the
        # float weights (and the manifest's views). Not here: rewriting the graph takes 0.3 s, which every start
        # would wait for, while most runs never need the stain-robust model.
        edit = self.manifest.extra.get("weights") == "int8" or views is not None
        self._runtime_edit: tuple[bytes, int | None, int | None] | None = (
            (content, views, num_threads) if edit else None
        )
        self._lock = threading.Lock()
        self._input = self._interpreter.get_input_details()[0]
        self._batch = 0
        outputs = self._interpreter.get_output_details()
        num_classes = len(self.manifest.classes)
        by_width = {int(detail["shape"][-1]): detail["index"] for detail in outputs}
        if num_classes not in by_width:
            widths = sorted(by_width)
            raise ModelError(f"model outputs {widths} values per image but its manifest names {num_classes} classes")
        self._logits_index = by_width[num_classes]
        feature_widths = [w for w in by_width if w != num_classes]
        self._features_index = by_width[feature_widths[0]] if feature_widths else None
        self.feature_size = feature_widths[0] if feature_widths else None
        self.test_time_views = test_time_views_of(self.manifest)
        domain = self.manifest.extra.get("domain")
        self.domain = DomainModel.from_dict(domain) if domain else None
        expected = int(self._input["shape"][1])
        if expected != self.manifest.input_size:
            raise ModelError(f"model input is {expected} px but its manifest says {self.manifest.input_size} px")
        self.robust: LiteRTClassifier | None = None
        self.route_above = float("inf")
        if ROBUST_KEY in self.manifest.extra:
            # The ensemble is 48 networks a cell: given both cores of a 2-core PC, BCCD crops went through `count`
            # 1.3-1.5x as fast (10.1-10.9 -> 12.9-16.1 cells/s); the bundled model itself gains nothing from a
            # second thread. The window asks for fewer threads (a core stays free for it).
            robust_threads = num_threads if num_threads is not None else os.cpu_count() or 1
            self.robust, self.route_above = self._load_robust(self.manifest.extra[ROBUST_KEY], robust_threads)

    def _load_robust(self, entry: dict, num_threads: int | None) -> tuple[LiteRTClassifier, float]:
        """The stain-robust model named in the manifest, checked by hash (a changed file is refused, as ours)."""
        try:
            folder, expected = str(entry["folder"]), str(entry["sha256"]).lower()
            manifest_digest, route_above = str(entry["manifest_sha256"]).lower(), float(entry["route_above"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(
                "model manifest: 'robust_model' needs folder, sha256, manifest_sha256 and route_above"
            ) from None
        if Path(folder).name != folder or folder in ("", ".", "..") or self.domain is None:
            raise ModelError("model manifest: 'robust_model' must be a folder inside the model's, beside domain data")
        check_setting("robust_model route_above", route_above, 0.0, 1e6)
        views = entry.get("views", DIHEDRAL_VIEWS)
        if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= DIHEDRAL_VIEWS:
            raise ModelError(f"model manifest: robust_model views must be a whole number 1 to 8, not {views!r}")
        manifest_path = self.model_dir / folder / MANIFEST_NAME
        try:
            robust_manifest = manifest_path.read_bytes()
        except FileNotFoundError:
            raise ModelError(
                f"the stain-robust model (for other labs' cells): manifest not found: {manifest_path}"
            ) from None
        except OSError as error:
            raise ModelError(f"the stain-robust model's manifest cannot be read: {error}") from None
        if sha256_bytes(robust_manifest) != manifest_digest:
            # its classes, temperature and threshold decide calls as much as its weights do
            raise ModelError(
                "the stain-robust model's manifest is not the one this model was shipped with: "
                "reinstall the app or restore the model"
            )
        try:
            robust = LiteRTClassifier(self.model_dir / folder, num_threads, views)
        except ModelError as error:
            raise ModelError(f"the stain-robust model (for other labs' cells) cannot be used: {error}") from None
        if robust.sha256 != expected.lower() or robust.robust is not None:
            raise ModelError(
                "the stain-robust model (for other labs' cells) is not the one this model was shipped with: "
                "reinstall the app or restore the model"
            )
        unknown = sorted(set(robust.classes) - set(self.classes))
        if unknown or len(set(robust.classes)) != len(robust.classes):
            raise ModelError(f"the stain-robust model has classes the model does not know: {unknown}")
        return robust, route_above

    def robust_probabilities(
        self, images: Sequence[np.ndarray], frames: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """The stain-robust model's probabilities in this model's class order, matched by name: a class it
        does not have (it knows the five normal white cells) gets 0, so a foreign cell is never called one.
        ``frames``: the cells framed on their nucleus already (:meth:`frames_of`)."""
        logits, _ = self.robust.outputs_of(self.robust.prepare(images, frames))
        theirs = softmax(logits, self.robust.temperature)
        ours = np.zeros((len(theirs), len(self.classes)), dtype=np.float64)
        for column, name in enumerate(self.robust.classes):
            ours[:, self.classes.index(name)] = theirs[:, column]
        return ours

    def routed(self, scores: np.ndarray | None) -> np.ndarray:
        """Which cells the stain-robust model classifies: those whose out-of-domain score passes the manifest's
        ``route_above`` (all False without a robust model or without scores)."""
        if scores is None or self.robust is None:
            return np.zeros(0 if scores is None else len(scores), dtype=bool)
        return np.asarray(scores) > self.route_above

    profile = None  # the bundled model's own calls (a ProfileClassifier wraps this one for a lab profile)

    @property
    def base(self) -> LiteRTClassifier:
        return self

    @property
    def identity(self) -> dict[str, str]:
        return identity_of(self)

    @property
    def has_robust_model(self) -> bool:
        return self.robust is not None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.manifest.classes

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    @property
    def review_threshold(self) -> float:
        return self.manifest.review_threshold

    @property
    def temperature(self) -> float:
        return self.manifest.temperature

    @property
    def view_spec(self) -> ViewSpec:
        return ViewSpec(self.manifest.input_size, self.manifest.view, colours=self.domain is not None)

    def prepare(self, images: Sequence[np.ndarray], frames: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """The model's input for RGB images: each in the manifest's view, float32. ``frames``: the images framed
        on their nucleus (:meth:`frames_of`), for a model with the canonical view: the same input, cheaper."""
        size, view = self.manifest.input_size, self.manifest.view
        if frames is not None and view == "canonical":
            return np.stack([canonical_of_frame(frame, size) for frame in frames]).astype(np.float32)
        return np.stack([model_view(image, size, view) for image in images]).astype(np.float32)

    def frames_of(self, images: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """Each image framed on its nucleus, when both this model and its stain-robust model read the canonical
        view (which starts from that frame); None otherwise."""
        if self.manifest.view != "canonical" or (self.robust is not None and self.robust.manifest.view != "canonical"):
            return None
        return [frame_on_nucleus(image) for image in images]

    def _edit_for_runtime(self) -> None:
        """Swap the stored model's interpreter for one over :func:`runtime_model`'s graph (same tensor indices:
        the edit removes operators, never tensors)."""
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        content, views, num_threads = self._runtime_edit
        try:
            interpreter = Interpreter(model_content=runtime_model(content, views), num_threads=num_threads)
        except GraphEditError as error:
            raise ModelError(f"model file cannot be run as its manifest asks: {error}") from None
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"model file cannot be loaded by LiteRT: {error}") from None
        self._interpreter, self._runtime_edit, self._batch = interpreter, None, 0

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with self._lock:
            if self._runtime_edit is not None:
                self._edit_for_runtime()
            if batch.shape[0] != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
                self._interpreter.allocate_tensors()
                self._batch = batch.shape[0]
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            logits = self._interpreter.get_tensor(self._logits_index).copy()
            features = (
                self._interpreter.get_tensor(self._features_index).copy() if self._features_index is not None else None
            )
        return logits, features

    def logits_and_features(
        self, images: Sequence[np.ndarray], dihedral: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw logits (before temperature) and pooled features for RGB uint8 images of any size; with
        ``dihedral`` both are averaged over the 8 flips and turns of each cell (8 times the work)."""
        if len(images) == 0:
            return np.zeros((0, len(self.classes)), np.float32), None
        return self.outputs_of(self.prepare(images), dihedral)

    def outputs_of(self, batch: np.ndarray, dihedral: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and features of a batch already in the model's view (:meth:`prepare`). The logits are the mean
        over the manifest's ``test_time_views`` flips and turns of each cell, the features those of the cell as
        it is (what the out-of-domain statistics were fitted on); with ``dihedral`` both are the mean of all 8."""
        count = len(batch)
        if dihedral:
            logits, features = self._run(dihedral_views(batch))
            return mean_over_views(logits, count), (None if features is None else mean_over_views(features, count))
        views = self.test_time_views
        if views == 1:
            return self._run(batch)
        logits, features = self._run(dihedral_views(batch, views))
        return mean_over_views(logits, count, views), (None if features is None else features[:count])

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities, shape ``(N, classes)``: ``softmax(logits / temperature)``, or the stain-robust
        model's for cells that look foreign (:meth:`analyse`)."""
        if self.robust is not None:
            return self.analyse(images)[0]
        logits, _ = self.logits_and_features(images)
        return softmax(logits, self.temperature)

    def domain_scores(
        self, images: Sequence[np.ndarray], features: np.ndarray | None, colours: np.ndarray | None = None
    ) -> np.ndarray | None:
        """How unlike the training images each image is (>1 unusual), or None for a model without statistics;
        ``colours`` are the images' colour statistics when the pipeline computed them already."""
        if self.domain is None or not len(images):
            return None
        if colours is None:
            colours = np.stack([colour_statistics(image) for image in images])
        return self.domain.scores(colours, features)

    def analyse(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and out-of-domain scores in one pass. Cells scored foreign (:meth:`routed`) get the
        stain-robust model's probabilities: this model's are only trustworthy on cells like its training data."""
        if len(images) == 0:
            return np.zeros((0, len(self.classes)), np.float32), None
        frames = self.frames_of(images)
        return self.analyse_batch(images, self.prepare(images, frames), frames=frames)

    def analyse_prepared(
        self,
        images: Sequence[np.ndarray],
        views: np.ndarray,
        colours: np.ndarray | None,
        frames: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`analyse` for cells the pipeline prepared (:attr:`view_spec`): uint8 views, colour statistics
        and, for the canonical view, each cell's frame (:meth:`frames_of`)."""
        if len(images) == 0:
            return np.zeros((0, len(self.classes)), np.float32), None
        return self.analyse_batch(images, views.astype(np.float32), colours, frames)

    def analyse_batch(
        self,
        images: Sequence[np.ndarray],
        batch: np.ndarray,
        colours: np.ndarray | None = None,
        frames: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`analyse` for images whose model view (:meth:`prepare`) is already computed."""
        logits, features = self.outputs_of(batch)
        probabilities = softmax(logits, self.temperature)
        scores = self.domain_scores(images, features, colours)
        foreign = np.flatnonzero(self.routed(scores))
        if len(foreign):
            chosen = None if frames is None else [frames[i] for i in foreign]
            probabilities[foreign] = self.robust_probabilities([images[i] for i in foreign], chosen)
        return probabilities, scores


def test_time_views_of(manifest: Manifest) -> int:
    """How many of a cell's 8 flips and turns the model's calls average (the manifest's ``test_time_views``,
    chosen on the val split when the model was exported; 1 when absent)."""
    views = manifest.extra.get("test_time_views", 1)
    if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= DIHEDRAL_VIEWS:
        raise ModelError(f"model manifest: test_time_views must be a whole number 1 to 8, not {views!r}")
    return views


def load_classifier(model_dir: str | Path | None = None, num_threads: int | None = None) -> LiteRTClassifier:
    """The classifier for ``model_dir``, or for the bundled model store."""
    return LiteRTClassifier(model_dir if model_dir is not None else model_store_dir(), num_threads)


def classified_by_robust(classifier, domain_score: float | None) -> bool:
    """Whether the stain-robust model made a cell's call (the bundled model routed it there). A lab profile's
    calls are its own: False."""
    if not isinstance(classifier, LiteRTClassifier) or domain_score is None:
        return False
    return bool(classifier.routed(np.array([domain_score]))[0])
