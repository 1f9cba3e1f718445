"""Edits made to a LiteRT model in memory when it loads, with the flatbuffer tools that ship with LiteRT.

Two edits, both for the stain-robust ensemble (six networks, each over eight flips and turns of a cell), made
together by :func:`runtime_model` (one parse and one write of the flatbuffer):

* float weights: a model stored with int8 weights and float activations ("dynamic range": the ensemble's
  file stays under the repository's 20 MB) runs on LiteRT's hybrid kernels, which quantise every activation on the
  fly; XNNPACK's float kernels on the same weights, dequantised once at load, run the ensemble 2.1x as fast with
  the same calls (docs/figures.md, *The stain-robust model*). The file on disk, and its hash, are unchanged.
* fewer views: the ensemble averages its members over the first ``views`` of the eight views its graph
  makes of each cell (identity, the three flips, then the transposes of those four), so a manifest can trade the
  last views for speed without the members being trained or exported again.
"""

from __future__ import annotations

import numpy as np

DIHEDRAL_VIEWS = 8  # the views robust.build_ensemble's graph makes of each cell
_INT8, _FLOAT32, _INT32 = 9, 0, 2  # tflite TensorType values (schema.fbs)


class GraphEditError(ValueError):
    """The model is not the graph an edit expects (its manifest promises an edit the file cannot take)."""


def _schema():
    # deferred, like every LiteRT import: the window shows before the model loads
    from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415
    from ai_edge_litert.tools import flatbuffer_utils  # noqa: PLC0415

    return schema, flatbuffer_utils


def _op_name(model, op, schema) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)
    return next(name for name, value in vars(schema.BuiltinOperator).items() if value == number)


def _constant(model, tensor) -> np.ndarray | None:
    data = model.buffers[tensor.buffer].data
    return None if data is None or len(data) == 0 else np.asarray(data, dtype=np.uint8)


def _dequantised(model, tensor) -> np.ndarray:
    values = _constant(model, tensor).view(np.int8).reshape(tensor.shape).astype(np.float32)
    quantisation = tensor.quantization
    scale = np.asarray(quantisation.scale, np.float32)
    zero_point = np.asarray(quantisation.zeroPoint, np.float32)
    if scale.size > 1:  # per channel, along quantizedDimension
        shape = [1] * values.ndim
        shape[quantisation.quantizedDimension] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return (values - zero_point) * scale


def _float_weights(model) -> int:
    """Dequantise, in place, every constant int8 tensor whose every consumer takes a float32 activation (the
    hybrid kernels' weights; a full-integer model's weights feed int8 activations and are left alone)."""
    graph = model.subgraphs[0]
    consumers: dict[int, list] = {}
    for op in graph.operators:
        for index in op.inputs:
            consumers.setdefault(int(index), []).append(op)
    changed = 0
    for index, tensor in enumerate(graph.tensors):
        if tensor.type != _INT8 or tensor.quantization is None or _constant(model, tensor) is None:
            continue
        users = consumers.get(index, [])
        if not users or any(graph.tensors[op.inputs[0]].type != _FLOAT32 for op in users):
            continue
        weights = _dequantised(model, tensor)
        model.buffers[tensor.buffer].data = np.frombuffer(weights.astype("<f4").tobytes(), np.uint8)
        tensor.type, tensor.quantization = _FLOAT32, None
        changed += 1
    return changed


def _keep_views(model, views: int, schema) -> None:
    """Average over the first ``views`` of the graph's 8 views: the views' CONCATENATION keeps its first inputs,
    the RESHAPE to (members x 8, cells, classes) becomes (members x views, ...), unused view ops go."""
    graph = model.subgraphs[0]
    names = [_op_name(model, op, schema) for op in graph.operators]
    concatenations = [op for op, name in zip(graph.operators, names, strict=True) if name == "CONCATENATION"]
    reshapes = [op for op, name in zip(graph.operators, names, strict=True) if name == "RESHAPE"]
    if len(concatenations) != 1 or len(concatenations[0].inputs) != DIHEDRAL_VIEWS or len(reshapes) != 1:
        raise GraphEditError("the model is not an ensemble over 8 views of each cell")
    shape_tensor = graph.tensors[reshapes[0].inputs[1]]
    shape = _constant(model, shape_tensor)
    if shape is None or shape_tensor.type != _INT32:
        raise GraphEditError("the ensemble's view average has no constant shape")
    shape = shape.view(np.int32).copy()
    members, remainder = divmod(int(shape[0]), DIHEDRAL_VIEWS)
    if remainder:
        raise GraphEditError(f"the ensemble averages {shape[0]} outputs a cell, not a multiple of 8 views")
    concatenations[0].inputs = np.asarray(concatenations[0].inputs[:views], dtype=np.int32)
    shape[0] = members * views
    model.buffers[shape_tensor.buffer].data = np.frombuffer(shape.astype("<i4").tobytes(), np.uint8)
    while True:  # drop the ops whose outputs nothing reads now (the views left out)
        read = {int(i) for op in graph.operators for i in op.inputs} | {int(i) for i in graph.outputs}
        kept = [op for op in graph.operators if any(int(out) in read for out in op.outputs)]
        if len(kept) == len(graph.operators):
            break
        graph.operators = kept


def runtime_model(content: bytes, views: int | None = None) -> bytes:
    """``content`` as LiteRT should run it: int8 weights of float layers dequantised (the same values, as float32)
    and, with ``views``, the ensemble's average over its first ``views`` views. Returns ``content`` itself when
    nothing needs changing."""
    if views is not None and not 1 <= views <= DIHEDRAL_VIEWS:
        raise GraphEditError(f"views must be 1 to {DIHEDRAL_VIEWS}, not {views}")
    schema, flatbuffer_utils = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    changed = _float_weights(model)
    if views is not None and views != DIHEDRAL_VIEWS:
        _keep_views(model, views, schema)
        changed += 1
    return content if not changed else bytes(flatbuffer_utils.convert_object_to_bytearray(model))
