"""ONNX -> TensorRT plan + JSON sidecar, with the TensorRT Python builder API only.

The sequence (TensorRT Python API reference: Builder, IBuilderConfig, OnnxParser,
IOptimizationProfile, ITimingCache, IProgressMonitor):

    builder = trt.Builder(logger)
    network = builder.create_network(flags)        # flags: 1 << NetworkDefinitionCreationFlag.X
    parser = trt.OnnxParser(network, logger)
    parser.parse_from_file(path)                   # False -> parser.num_errors / get_error(i)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, bytes)
    profile = builder.create_optimization_profile(); profile.set_shape(name, min, opt, max)
    # IBuilderConfig.add_optimization_profile docs: "The index of the optimization profile ... or -1
    # if the input is not valid".
    if config.add_optimization_profile(profile) < 0:
        raise MnnEdgeError(f"TensorRT rejected the batch profile {cfg.min_batch}/{cfg.opt_batch}/{cfg.max_batch}")
    config.set_flag(trt.BuilderFlag.FP16 | INT8)   # weakly typed builds only (never on 11.x)
    config.default_device_type = trt.DeviceType.DLA; config.DLA_core = n; GPU_FALLBACK flag
    cache = config.create_timing_cache(bytes);  config.set_timing_cache(cache, ignore_mismatch=False)
    config.progress_monitor = monitor              # 10.0+
    plan = builder.build_serialized_network(network, config)   # IHostMemory, or None on failure

Precision policy (``typing_plan.choose_typing``): INT8 only from an explicitly quantized (Q/DQ) graph —
there is no implicit-calibrator path, since calibrators are deprecated in 10.1 and gone in 11.x.
TensorRT's "Explicit Quantization" page: "Use explicit quantization with Strong Typing.
Precision-control build flags are not required and should not be specified." FP16 comes from an
FP16 graph when strongly typed (the only way on 11.x), or from an FP32 graph + ``BuilderFlag.FP16``
on 8.6/10.x.
"""

from __future__ import annotations

import shlex
import sys
import threading
from pathlib import Path

import numpy as np

from mnn_edge.artifact import MODEL_NAMES, ArtifactName, ModelMetadata, Precision
from mnn_edge.artifact.sidecar import EngineSidecar, TensorInfo, sidecar_path, write_sidecar
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path, refuse_existing, require_file, sha256_file
from mnn_edge.runtime.tensorrt.capabilities import Capabilities, import_tensorrt
from mnn_edge.runtime.tensorrt.compat import check_trt_compat
from mnn_edge.runtime.tensorrt.config import MIB, BuildConfig
from mnn_edge.runtime.tensorrt.typing_plan import (
    OnnxFacts,
    TypingPlan,
    choose_typing,
    inspect_onnx,
    network_flags,
    sibling_for,
)


def parser_errors(parser) -> list[str]:
    """The ONNX parser's own messages (OnnxParser.num_errors / get_error(i) -> ParserError)."""
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = f"node {err.node()}"
        if hasattr(err, "node_name"):  # 10.x+: IParserError::nodeName / nodeOperator
            where += f" '{err.node_name()}' ({err.node_operator()})"
        lines.append(f"{where}: {err.desc()}")
    return lines


def make_logger(trt, verbose: bool = False):
    """An ILogger that prints warnings and keeps errors, so a failed build can say why in one line.

    ILogger docs: "To implement a custom logger, ensure that you explicitly instantiate the base
    class in __init__ ... def log(self, severity, msg)".
    """

    class CollectingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                self.errors.append(str(msg))
            if verbose or severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR, trt.ILogger.WARNING):
                print(f"[TensorRT] {msg}", file=sys.stderr)

    return CollectingLogger()


def make_progress_monitor(trt):
    """An IProgressMonitor drawing one tqdm bar per phase (10.0+ only; the caller checks).

    IProgressMonitor docs: phase_start(phase_name, parent_phase, num_steps), step_complete(
    phase_name, step) -> bool (False cancels the build), phase_finish(phase_name); "must be
    thread-safe"; base class initialised explicitly as for ILogger.
    """
    from tqdm import tqdm

    class TqdmMonitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._bars: dict[str, tqdm] = {}
            self._depth: dict[str, int] = {}
            self._lock = threading.Lock()

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
                self._depth[phase_name] = depth
                if depth <= 1:  # deeper phases flicker by too fast to be useful
                    self._bars[phase_name] = tqdm(total=num_steps, desc=("  " * depth) + phase_name,
                                                  position=depth, leave=depth == 0, file=sys.stderr)

        def step_complete(self, phase_name, step):
            with self._lock:
                bar = self._bars.get(phase_name)
                if bar is not None:
                    bar.update(step + 1 - bar.n)
            return True

        def phase_finish(self, phase_name):
            with self._lock:
                bar = self._bars.pop(phase_name, None)
                self._depth.pop(phase_name, None)
                if bar is not None:
                    bar.close()

    return TqdmMonitor()


def engine_path(out_dir: Path, meta: ModelMetadata, precision: Precision) -> Path:
    return out_dir / ArtifactName(meta.kind, precision).plan()


def rebuild_command(onnx_path: Path, cfg: BuildConfig, precision: Precision) -> str:
    parts = ["mnn-build", str(onnx_path), "--precision", precision.value, "--min-batch", str(cfg.min_batch),
             "--opt-batch", str(cfg.opt_batch), "--max-batch", str(cfg.max_batch), "--out", str(cfg.out_dir)]
    if cfg.dla_core is not None:
        parts += ["--dla-core", str(cfg.dla_core)]
    return " ".join(shlex.quote(p) for p in parts)


def _dims(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def _tensor_info(trt, t) -> TensorInfo:
    return TensorInfo(t.name, _dims(t.shape), np.dtype(trt.nptype(t.dtype)).name)


def build_engine(onnx_path: Path, cfg: BuildConfig, device: int = 0) -> Path:
    """Build ``onnx_path`` into ``cfg.out_dir/<model>.<precision>.plan`` + sidecar; returns the plan path."""
    onnx_path = require_file(onnx_path, "ONNX model")
    facts = inspect_onnx(onnx_path)
    precision = cfg.precision or facts.graph_precision
    plan_path = engine_path(cfg.out_dir, facts.metadata, precision)
    refuse_existing([plan_path, sidecar_path(plan_path)], cfg.force)
    if facts.graph_precision is Precision.INT8:
        problems = check_trt_compat(onnx_path)
        if problems:
            raise MnnEdgeError(f"{onnx_path} is not TensorRT-compatible: {'; '.join(problems)}")

    trt = import_tensorrt()
    caps = Capabilities.of(trt)
    plan = choose_typing(caps, cfg, precision, facts)

    from mnn_edge.runtime.tensorrt.cuda_memory import open_cuda
    from mnn_edge.runtime.tensorrt.loader import machine_gpu

    cuda = open_cuda(device)  # the GPU's identity for the sidecar, and a current context for the build
    try:
        with cuda.active():
            serialized, network_io = _build(trt, caps, cfg, plan, facts, precision)
        gpu = machine_gpu(cuda)
    finally:
        cuda.close()

    with atomic_path(plan_path) as tmp:
        tmp.write_bytes(serialized)
    inputs, outputs = network_io
    b = facts.input_shape
    profile = {facts.input_name: {k: [n, *(int(d) for d in b[1:])] for k, n in
                                  (("min", cfg.min_batch), ("opt", cfg.opt_batch), ("max", cfg.max_batch))}}
    sidecar = EngineSidecar(
        plan_file=plan_path.name, plan_sha256=sha256_file(plan_path), plan_bytes=plan_path.stat().st_size,
        tensorrt_version=caps.version, gpu=gpu, precision=precision, typing=plan.typing.value,
        dla_core=cfg.dla_core, profile=profile, inputs=inputs, outputs=outputs,
        metadata=facts.metadata.with_(precision=precision), source_onnx=str(onnx_path),
        source_onnx_sha256=sha256_file(onnx_path),
        build=cfg.settings() | {"precision": precision.value, "builder_flags": list(plan.flags),
                                "cuda_backend": cuda.backend},
        rebuild_command=rebuild_command(onnx_path, cfg, precision))
    write_sidecar(sidecar, plan_path)
    return plan_path


def _build(trt, caps: Capabilities, cfg: BuildConfig, plan: TypingPlan, facts: OnnxFacts, precision: Precision):
    logger = make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, caps, plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(facts.path)):
        errors = parser_errors(parser) or logger.errors or ["unknown parser error"]
        raise MnnEdgeError(f"TensorRT's ONNX parser rejected {facts.path}: " + " | ".join(errors))

    config = builder.create_builder_config()
    if caps.memory_pool_limit:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mib * MIB)
    if cfg.optimization_level is not None and caps.optimization_level:
        config.builder_optimization_level = cfg.optimization_level
    for name in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if precision is Precision.FP32 and not cfg.tf32 and hasattr(trt.BuilderFlag, "TF32"):
        # BuilderFlag.TF32 docs: "TF32 computes inner products by rounding the inputs to 10-bit
        # mantissas ... Enabled by default." An fp32 engine is the accuracy reference: clear it.
        config.clear_flag(trt.BuilderFlag.TF32)

    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        rest = _dims(t.shape)[1:]
        if any(d < 0 for d in rest):
            raise MnnEdgeError(f"input '{t.name}' has dynamic non-batch dims {_dims(t.shape)}; only the batch may vary")
        profile.set_shape(t.name, (cfg.min_batch, *rest), (cfg.opt_batch, *rest), (cfg.max_batch, *rest))
    # IBuilderConfig.add_optimization_profile docs: "The index of the optimization profile ... or -1
    # if the input is not valid".
    if config.add_optimization_profile(profile) < 0:
        raise MnnEdgeError(f"TensorRT rejected the batch profile {cfg.min_batch}/{cfg.opt_batch}/{cfg.max_batch}")

    if cfg.dla_core is not None:
        if builder.num_DLA_cores <= cfg.dla_core:
            raise MnnEdgeError(f"DLA core {cfg.dla_core} requested but this device has {builder.num_DLA_cores} "
                               f"DLA core(s) (DLA exists on Jetson AGX/NX Orin, not on Orin Nano or x86 GPUs)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = cfg.dla_core
        if cfg.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    cache = None
    if cfg.timing_cache is not None and caps.timing_cache:
        data = cfg.timing_cache.read_bytes() if cfg.timing_cache.is_file() else b""
        # create_timing_cache docs: b"" creates a new cache; the cache carries a device header and
        # set_timing_cache(ignore_mismatch=False) rejects one from another GPU.
        cache = config.create_timing_cache(data)
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            print(f"warning: {cfg.timing_cache} is from another device or TensorRT; starting a fresh cache",
                  file=sys.stderr)
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, ignore_mismatch=False)

    monitor = None
    if cfg.progress and caps.progress_monitor:
        # "The lifetime of the IProgressMonitor must exceed the lifetime of all TensorRT objects
        # that use it" (IProgressMonitor docs): `monitor` stays referenced until this function returns.
        monitor = make_progress_monitor(trt)
        config.progress_monitor = monitor

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        reason = logger.errors[-1] if logger.errors else "see the TensorRT log above"
        raise MnnEdgeError(f"TensorRT could not build an engine from {facts.path}: {reason}")

    if cache is not None:
        with atomic_path(cfg.timing_cache) as tmp:
            tmp.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))

    inputs = tuple(_tensor_info(trt, network.get_input(i)) for i in range(network.num_inputs))
    outputs = tuple(_tensor_info(trt, network.get_output(i)) for i in range(network.num_outputs))
    plan = bytes(memoryview(serialized))
    del serialized, config, parser, network, builder, monitor  # TensorRT objects before the logger they use
    return plan, (inputs, outputs)


def source_for_export(export_dir: Path, model: str, precision: Precision, caps: Capabilities | None = None) -> Path:
    """Which artifact of ``export_dir`` an engine of ``precision`` is built from."""
    base = export_dir / ArtifactName.for_model(model).onnx()
    if precision is Precision.FP32:
        return base
    want = sibling_for(base, precision)
    if want.is_file() or precision is Precision.INT8 or (caps is not None and caps.strongly_typed_only):
        return want
    return base  # fp16 on 8.6/10.x from the fp32 graph + FP16 flag


def build_engines_for_export(export_dir: Path, precisions, cfg: BuildConfig, device: int = 0) -> list[Path]:
    """Build every model of an ``mnn-export`` folder at each precision; returns the plan paths.

    ``precisions``: an iterable of Precision (or their string values). Sources: fp32 from
    ``<model>.onnx``, fp16 from ``<model>.fp16.onnx`` (or the fp32 graph + FP16 flag on 8.6/10.x
    when no fp16 graph exists), int8 from ``<model>.int8-trt.onnx`` (required).
    """
    export_dir = Path(export_dir)
    wanted = [Precision(p) for p in precisions]
    caps = Capabilities.of(import_tensorrt())
    jobs, missing = [], []
    for model in MODEL_NAMES.values():
        if not (export_dir / ArtifactName.for_model(model).onnx()).is_file():
            missing.append(ArtifactName.for_model(model).onnx())
            continue
        for p in wanted:
            src = source_for_export(export_dir, model, p, caps)
            if not src.is_file():
                raise MnnEdgeError(f"{src} not found: write it first (the {p.value} artifact of {model})")
            jobs.append((src, p))
    if not jobs:
        raise MnnEdgeError(f"{export_dir} has no pose.onnx or mnn.onnx; run mnn-export first")
    if missing:  # a half-written export folder: say what is not built, not only what is
        print(f"note: {export_dir} has no {' or '.join(missing)}; building the other model only "
              "(re-run mnn-export for both)", file=sys.stderr)
    return [build_engine(src, cfg.with_(precision=p), device) for src, p in jobs]
