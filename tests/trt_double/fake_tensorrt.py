"""Fake ``tensorrt`` module: the subset of the TensorRT Python API that mnn-edge uses, backed by
ONNX Runtime, in the shape of a chosen release ("8.6", "10.3" or "11.4").

This is a CONTRACT DOUBLE. It checks the sequence and arguments our code uses (names, shapes,
dtypes, profile, flags, context, buffer sizes) against what the documentation says; it is not
evidence that TensorRT works, and says nothing about the speed or accuracy of real engines.

Written from (cited per class below):
- TensorRT Python API reference (docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/):
  Core/Logger, Core/Builder, Core/BuilderConfig, Core/Network, Core/Profile (IOptimizationProfile),
  Core/ProgressMonitor, Core/Runtime, Core/Engine (ICudaEngine), Core/ExecutionContext,
  parsers/Onnx/pyOnnx (OnnxParser, ParserError) — and the same docstrings inside the 10.3 and 11.4
  bindings (tensorrt.so strings), e.g. "Deserialize an ICudaEngine ... :returns: The
  ICudaEngine, or None if it could not be deserialized."
- Which names exist in which release: mnn_edge/runtime/tensorrt/api_names/ (extracted from the wheels);
  tests/test_api_surface.py checks this double's per-version surface against those lists.
- Behaviour rules from the TensorRT developer guide: strongly typed networks reject precision
  flags ("Strongly Typed Networks"; "Explicit Quantization": "Precision-control build flags are
  not required and should not be specified"); 8.x parses ONNX only into explicit-batch networks;
  dynamic inputs need an optimization profile; DLA needs FP16/INT8 and a valid core.
"""

from __future__ import annotations

import base64
import enum
import json
import types
from importlib.machinery import ModuleSpec

import numpy as np

from .gpu import FakeGpu

MAGIC = b"FAKE-TRT-PLAN\n"
ACCESSED: set[tuple[str, str]] = set()  # (owner, attribute) pairs our code touched

# Names that exist only in some releases (checked against the real lists by test_api_surface).
ONLY_FROM = {  # name -> first release that has it
    ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"): "10.3",
    ("module", "IProgressMonitor"): "10.3",
    ("IBuilderConfig", "progress_monitor"): "10.3",
    ("ParserError", "node_name"): "10.3",
    ("ParserError", "node_operator"): "10.3",
}
UNTIL = {  # name -> last release that has it
    ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH"): "10.3",
    ("BuilderFlag", "FP16"): "10.3",
    ("BuilderFlag", "INT8"): "10.3",
    ("module", "IInt8EntropyCalibrator2"): "10.3",
    ("Builder", "platform_has_fast_fp16"): "10.3",
}
VERSIONS = {"8.6": "8.6.1", "10.3": "10.3.0", "11.4": "11.4.0.106"}


def _key(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def exists_in(owner: str, name: str, version: str) -> bool:
    if (owner, name) in ONLY_FROM and _key(version) < _key(ONLY_FROM[owner, name]):
        return False
    if (owner, name) in UNTIL and _key(version) > _key(UNTIL[owner, name]):
        return False
    return True


class _Recorded:
    """Records every public attribute our code reads on the fake objects."""

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)  # recorded only when it exists (hasattr probes are free)
        if not name.startswith("_") and _faked(type(self), name):
            ACCESSED.add((type(self).__trt_name__, name))
        return value

    def __setattr__(self, name, value):
        # pybind11 objects refuse unknown attributes; Python subclasses (our loggers) may add their own.
        if not name.startswith("_") and type(self).__module__ == __name__ and not hasattr(type(self), name):
            raise AttributeError(f"'{type(self).__trt_name__}' object has no attribute '{name}'")
        if not name.startswith("_") and _faked(type(self), name):
            ACCESSED.add((type(self).__trt_name__, name))
        object.__setattr__(self, name, value)


def _faked(cls: type, name: str) -> bool:
    """True when ``name`` is TensorRT API (defined by a fake class), not an attribute our subclass added."""
    return any(name in vars(c) for c in cls.__mro__ if c.__module__ == __name__ and c is not _Recorded)


class _RecordingModule(types.ModuleType):
    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if not name.startswith("_"):
            ACCESSED.add(("module", name))
        return value


def _np_to_trt_name(dtype: np.dtype) -> str:
    return {"float32": "FLOAT", "float16": "HALF", "int8": "INT8", "int32": "INT32", "int64": "INT64",
            "bool": "BOOL", "uint8": "UINT8"}[np.dtype(dtype).name]


def make_tensorrt(version: str = "10.3", gpu: FakeGpu | None = None) -> types.ModuleType:
    """A fresh fake ``tensorrt`` module in the shape of ``version``."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {sorted(VERSIONS)}")
    gpu = gpu or FakeGpu()
    trt = _RecordingModule("tensorrt")
    trt.__spec__ = ModuleSpec("tensorrt", None)  # importlib.util.find_spec needs one
    trt.__version__ = VERSIONS[version]
    has = lambda owner, name: exists_in(owner, name, version)  # noqa: E731

    def enum_of(owner: str, members: list[str]) -> type:
        kept = [m for m in members if has(owner, m)]
        e = enum.IntEnum(owner, {m: i for i, m in enumerate(members) if m in kept})
        return e

    # -- enums (Core/BuilderConfig, Core/Network, FoundationalTypes/DataType docs) ---------------
    trt.DataType = enum_of("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "INT64"])
    trt.NetworkDefinitionCreationFlag = enum_of("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "STRONGLY_TYPED"])
    trt.BuilderFlag = enum_of("BuilderFlag", ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "TF32"])
    trt.MemoryPoolType = enum_of("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.DeviceType = enum_of("DeviceType", ["GPU", "DLA"])
    trt.TensorIOMode = enum_of("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])

    np_of = {trt.DataType.FLOAT: np.float32, trt.DataType.HALF: np.float16, trt.DataType.INT8: np.int8,
             trt.DataType.INT32: np.int32, trt.DataType.BOOL: np.bool_, trt.DataType.UINT8: np.uint8,
             trt.DataType.INT64: np.int64}

    def nptype(trt_type):  # bindings __init__.py: "Returns the numpy-equivalent of a TensorRT DataType"
        return np_of[trt_type]

    trt.nptype = nptype

    def cls(trt_name: str):
        return type(trt_name, (_Recorded,), {"__trt_name__": trt_name})

    # -- Core/Logger: ILogger (subclassable: "explicitly instantiate the base class in __init__") --
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger(_Recorded):
        __trt_name__ = "ILogger"

        def __init__(self):
            self._base_init = True

        def log(self, severity, msg):
            raise NotImplementedError("ILogger.log must be overridden")

    class Logger(ILogger):
        __trt_name__ = "Logger"

        min_severity = None

        def __init__(self, min_severity=None):
            ILogger.__init__(self)
            self.min_severity = min_severity
            self._messages: list = []

        def log(self, severity, msg):
            self._messages.append((severity, msg))

    ILogger.Severity = Severity
    for _sev in Severity:
        setattr(ILogger, _sev.name, _sev)

    def _log(logger, severity, msg):
        if not getattr(logger, "_base_init", False):
            raise TypeError("ILogger subclass did not call ILogger.__init__(self)")
        logger.log(severity, msg)

    trt.ILogger, trt.Logger = ILogger, Logger

    # -- Core/ProgressMonitor (10.0+) ----------------------------------------------------------
    if has("module", "IProgressMonitor"):
        class IProgressMonitor(_Recorded):
            __trt_name__ = "IProgressMonitor"

            def __init__(self):
                self._base_init = True

        trt.IProgressMonitor = IProgressMonitor

    # -- Network + ONNX parser ------------------------------------------------------------------
    class ITensor(_Recorded):  # Core/Network ITensor: name, shape (Dims, -1 = dynamic), dtype
        __trt_name__ = "ITensor"
        name, shape, dtype = "", (), None

        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    # Core/Network: INetworkDefinition.num_inputs/num_outputs, get_input(i)/get_output(i) -> ITensor
    class INetworkDefinition(_Recorded):
        __trt_name__ = "INetworkDefinition"

        def __init__(self, flags):
            self._flags = flags
            self._inputs: list = []
            self._outputs: list = []
            self._onnx = None

        @property
        def num_inputs(self):
            return len(self._inputs)

        @property
        def num_outputs(self):
            return len(self._outputs)

        def get_input(self, index):
            return self._inputs[index]

        def get_output(self, index):
            return self._outputs[index]

        def _has(self, flag_name):
            flag = getattr(trt.NetworkDefinitionCreationFlag, flag_name, None)
            return flag is not None and bool(self._flags & (1 << int(flag)))

        @property
        def _strongly_typed(self):
            return version.startswith("11") or self._has("STRONGLY_TYPED")

    class ParserError(_Recorded):  # parsers/Onnx/pyOnnx: code(), desc(), node() (+ node_name/operator 10.x)
        __trt_name__ = "ParserError"

        def __init__(self, desc, node, node_name="", op=""):
            self._desc, self._node, self._node_name, self._op = desc, node, node_name, op

        def code(self):
            return 8  # UNSUPPORTED_NODE

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def node_name(self):
            return self._node_name

        def node_operator(self):
            return self._op

    for attr in ("node_name", "node_operator"):
        if not has("ParserError", attr):
            delattr(ParserError, attr)

    SUPPORTED_OPS = {"Conv", "Relu", "Add", "Mul", "Sub", "Div", "MatMul", "Gemm", "Reshape", "Flatten", "Concat",
                     "Identity", "Sigmoid", "Softmax", "ReduceSum", "ReduceMean", "Transpose", "Constant", "Shape",
                     "Gather", "Unsqueeze", "Squeeze", "Slice", "MaxPool", "AveragePool", "GlobalAveragePool",
                     "BatchNormalization", "Resize", "Cast", "QuantizeLinear", "DequantizeLinear", "Pow", "Sqrt",
                     "Exp", "Clip", "Tanh", "ConvTranspose", "Pad", "Expand", "Where", "Equal", "Neg", "Floor",
                     "ConstantOfShape", "Range", "Split", "ArgMax", "Max", "Min", "ReduceMax", "Erf", "PRelu",
                     "LeakyRelu", "HardSigmoid", "HardSwish", "Abs", "Greater", "Less", "Not", "And", "Tile"}

    # parsers/Onnx/pyOnnx: OnnxParser(network, logger); parse(model, path=None) -> bool;
    # parse_from_file(model: str) -> bool; num_errors; get_error(index) -> ParserError; clear_errors()
    class OnnxParser(_Recorded):
        __trt_name__ = "OnnxParser"

        def __init__(self, network, logger):
            self._network, self._logger = network, logger
            self._errors: list = []

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, index):
            return self._errors[index]

        def clear_errors(self):
            self._errors.clear()

        def parse_from_file(self, model):
            import onnx

            try:
                m = onnx.load(str(model))
            except Exception as e:
                self._errors.append(ParserError(f"Failed to parse ONNX model from file: {model} ({e})", -1))
                return False
            return self._parse(m)

        def parse(self, model, path=None):
            import onnx

            try:
                m = onnx.load_from_string(bytes(model))
            except Exception as e:
                self._errors.append(ParserError(f"Failed to parse ONNX model ({e})", -1))
                return False
            return self._parse(m)

        def _parse(self, m):
            net = self._network
            if version.startswith("8") and not net._has("EXPLICIT_BATCH"):
                self._errors.append(ParserError("The ONNX parser only supports explicit-batch networks", -1))
                return False
            opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
            if opset > (17 if version.startswith("8") else 22):
                self._errors.append(ParserError(f"Unsupported ONNX opset {opset}", -1))
                return False
            for i, node in enumerate(m.graph.node):
                if node.op_type not in SUPPORTED_OPS:
                    self._errors.append(ParserError(f"No importer registered for op: {node.op_type}", i,
                                                    node.name, node.op_type))
            if self._errors:
                return False
            init = {t.name for t in m.graph.initializer}
            import onnx

            def tensor(vi):
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
                dt = getattr(trt.DataType, _np_to_trt_name(onnx.helper.tensor_dtype_to_np_dtype(
                    vi.type.tensor_type.elem_type)))
                return ITensor(vi.name, dims, dt)

            net._inputs = [tensor(v) for v in m.graph.input if v.name not in init]
            net._outputs = [tensor(v) for v in m.graph.output]
            net._onnx = m.SerializeToString()
            net._has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in m.graph.node)
            return True

    # -- Core/Profile, Core/BuilderConfig, ITimingCache ---------------------------------------
    # Core/Profile: set_shape(input, min, opt, max), conditions (1)-(3) of its docstring; get_shape(input)
    class IOptimizationProfile(_Recorded):
        __trt_name__ = "IOptimizationProfile"

        def __init__(self):
            self._shapes: dict = {}

        def set_shape(self, input, min, opt, max):  # noqa: A002 (the documented parameter names)
            lo, mid, hi = (tuple(int(d) for d in s) for s in (min, opt, max))
            if not (len(lo) == len(mid) == len(hi)) or any(a > b or b > c for a, b, c in zip(lo, mid, hi)):
                raise ValueError(f"set_shape({input}): need min <= opt <= max per dimension, got {lo} {mid} {hi}")
            self._shapes[input] = (lo, mid, hi)

        def get_shape(self, input):  # noqa: A002
            return list(self._shapes.get(input, ()))

    class IHostMemory(bytes):  # the real one supports the buffer protocol; bytes gives that on 3.10+
        __trt_name__ = "IHostMemory"

        @property
        def nbytes(self):
            return len(self)

    # Core/BuilderConfig ITimingCache: serialize() -> IHostMemory; combine(input_cache, ignore_mismatch)
    class ITimingCache(_Recorded):
        __trt_name__ = "ITimingCache"

        def __init__(self, entries: dict):
            self._entries = entries

        def serialize(self):
            return IHostMemory(b"FAKECACHE" + json.dumps(self._entries, sort_keys=True).encode())

        def combine(self, input_cache, ignore_mismatch):
            self._entries.update(input_cache._entries)
            return True

    # Core/BuilderConfig: set_flag/get_flag/clear_flag(BuilderFlag); set_memory_pool_limit(pool, pool_size);
    # add_optimization_profile(profile) -> index; create_timing_cache(serialized_timing_cache) -> ITimingCache;
    # set_timing_cache(cache, ignore_mismatch) -> bool; get_timing_cache(); properties default_device_type,
    # DLA_core, builder_optimization_level, progress_monitor (10.0+)
    class IBuilderConfig(_Recorded):
        __trt_name__ = "IBuilderConfig"

        def __init__(self):
            self._flags: set = {trt.BuilderFlag.TF32}  # BuilderFlag docs: TF32 "Enabled by default"
            self._pools: dict = {}
            self._profiles: list = []
            self._cache = None
            self._props = {"default_device_type": trt.DeviceType.GPU, "DLA_core": -1,
                           "builder_optimization_level": 3, "progress_monitor": None}

        def set_flag(self, flag):
            if not isinstance(flag, trt.BuilderFlag):
                raise TypeError("set_flag takes a tensorrt.BuilderFlag")
            self._flags.add(flag)

        def get_flag(self, flag):
            return flag in self._flags

        def clear_flag(self, flag):
            self._flags.discard(flag)

        def set_memory_pool_limit(self, pool, pool_size):
            if not isinstance(pool, trt.MemoryPoolType) or int(pool_size) <= 0:
                raise TypeError("set_memory_pool_limit(pool: MemoryPoolType, pool_size: int > 0)")
            self._pools[pool] = int(pool_size)

        def get_memory_pool_limit(self, pool):
            return self._pools.get(pool, 1 << 40)

        def add_optimization_profile(self, profile):
            self._profiles.append(profile)
            return len(self._profiles) - 1

        @property
        def num_optimization_profiles(self):
            return len(self._profiles)

        def create_timing_cache(self, serialized_timing_cache):
            data = bytes(serialized_timing_cache)
            if data == b"":
                return ITimingCache({})
            if not data.startswith(b"FAKECACHE"):
                return None
            return ITimingCache(json.loads(data[len(b"FAKECACHE"):]))

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache is None:
                return False
            if cache._entries.get("_device") not in (None, gpu.name) and not ignore_mismatch:
                return False
            self._cache = cache
            return True

        def get_timing_cache(self):
            return self._cache

    def _prop(name):  # pybind11 properties are class-level descriptors: hasattr(IBuilderConfig, name) works
        return property(lambda self: self._props[name], lambda self, v: self._props.__setitem__(name, v))

    for name in ("default_device_type", "DLA_core", "builder_optimization_level", "progress_monitor"):
        if has("IBuilderConfig", name):
            setattr(IBuilderConfig, name, _prop(name))

    # -- Core/Builder --------------------------------------------------------------------------
    # Core/Builder: Builder(logger); create_network(flags=0); create_builder_config();
    # create_optimization_profile(); build_serialized_network(network, config) -> IHostMemory or None;
    # num_DLA_cores; platform_has_fast_fp16 (gone in 11.x)
    class Builder(_Recorded):
        __trt_name__ = "Builder"

        def __init__(self, logger):
            self._logger = logger
            gpu.require_context("Builder()")

        @property
        def num_DLA_cores(self):  # noqa: N802 (the real name)
            return gpu.dla_cores

        @property
        def platform_has_fast_fp16(self):
            return True

        def create_network(self, flags=0):
            return INetworkDefinition(int(flags))

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            gpu.require_context("build_serialized_network")
            err = self._check(network, config)
            if err:
                _log(self._logger, Severity.ERROR, err)
                return None
            mon = config._props.get("progress_monitor")
            if mon is not None:
                if not getattr(mon, "_base_init", False):
                    raise TypeError("IProgressMonitor subclass did not call IProgressMonitor.__init__(self)")
                mon.phase_start("Building engine", None, 2)
                mon.phase_start("Tactic selection", "Building engine", 3)
                for step in range(3):
                    if not mon.step_complete("Tactic selection", step):
                        mon.phase_finish("Tactic selection")
                        mon.phase_finish("Building engine")
                        return None
                mon.phase_finish("Tactic selection")
                mon.step_complete("Building engine", 0)
                mon.step_complete("Building engine", 1)
                mon.phase_finish("Building engine")
            if config._cache is not None:
                config._cache._entries.update({"_device": gpu.name, network.get_input(0).name: "tactic"})
            (lo, opt, hi), = [p._shapes[network.get_input(0).name] for p in config._profiles]
            header = {
                "version": trt.__version__, "device": gpu.name,
                "dla_core": config.DLA_core if config.default_device_type == trt.DeviceType.DLA else None,
                "flags": sorted(f.name for f in config._flags), "strongly_typed": network._strongly_typed,
                "workspace": config._pools.get(trt.MemoryPoolType.WORKSPACE),
                "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network._inputs],
                "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network._outputs],
                "profile": [list(lo), list(opt), list(hi)],
                "onnx": base64.b64encode(network._onnx).decode()}
            return IHostMemory(MAGIC + json.dumps(header).encode())

        def _check(self, network, config):
            if network._onnx is None:
                return "network is empty (was the ONNX parsed into it?)"
            flags = {f.name for f in config._flags}
            precision_flags = flags & {"FP16", "INT8"}
            if network._strongly_typed and precision_flags:
                return (f"BuilderFlag {sorted(precision_flags)} set on a strongly typed network: "
                        f"precision flags are not allowed there")
            if not network._strongly_typed and network._has_qdq and "INT8" not in flags:
                return "network has Q/DQ layers but the INT8 builder flag is not set (weakly typed)"
            if config.default_device_type == trt.DeviceType.DLA:
                if not 0 <= config.DLA_core < gpu.dla_cores:
                    return f"DLA core {config.DLA_core} does not exist ({gpu.dla_cores} DLA cores)"
                if not precision_flags:
                    return "DLA requires FP16 or INT8 precision"
            if trt.MemoryPoolType.WORKSPACE not in config._pools:
                return "(double) mnn-edge always sets a WORKSPACE limit; none was set"
            if len(config._profiles) != 1:
                return f"expected exactly one optimization profile, got {len(config._profiles)}"
            prof = config._profiles[0]._shapes
            for t in network._inputs:
                if t.name not in prof:
                    return f"Network has dynamic or shape inputs, but no optimization profile defines '{t.name}'"
                for s in prof[t.name]:
                    if len(s) != len(t.shape) or any(d != -1 and d != x for d, x in zip(t.shape, s)):
                        return f"profile shape {s} does not fit input '{t.name}' {t.shape}"
            return ""

    trt.Builder, trt.IBuilderConfig, trt.OnnxParser = Builder, IBuilderConfig, OnnxParser
    trt.INetworkDefinition, trt.IOptimizationProfile, trt.ITimingCache = (INetworkDefinition, IOptimizationProfile,
                                                                          ITimingCache)
    trt.ParserError, trt.IHostMemory = ParserError, IHostMemory
    if has("module", "IInt8EntropyCalibrator2"):
        trt.IInt8EntropyCalibrator2 = cls("IInt8EntropyCalibrator2")

    # -- Core/Runtime, Core/Engine, Core/ExecutionContext -------------------------------------
    # Core/Runtime: Runtime(logger); deserialize_cuda_engine(serialized_engine) -> ICudaEngine or None; DLA_core
    class Runtime(_Recorded):
        __trt_name__ = "Runtime"
        DLA_core = -1  # Core/Runtime: "The DLA core that the engine executes on"

        def __init__(self, logger):
            self._logger = logger

        def deserialize_cuda_engine(self, serialized_engine):
            gpu.require_context("deserialize_cuda_engine")
            data = bytes(serialized_engine)
            try:
                if not data.startswith(MAGIC):
                    raise ValueError("magic tag not found")
                header = json.loads(data[len(MAGIC):])
            except ValueError as e:
                _log(self._logger, Severity.ERROR, f"IRuntime::deserializeCudaEngine: corrupt plan ({e})")
                return None
            if header["version"] != trt.__version__:
                _log(self._logger, Severity.ERROR, "The engine plan file is not compatible with this version "
                     f"of TensorRT, expecting library version {trt.__version__} got {header['version']}")
                return None
            return ICudaEngine(header)

    # Core/Engine: num_io_tensors, get_tensor_name(index), get_tensor_mode/dtype/shape(name),
    # get_tensor_profile_shape(name, profile_index) -> [min, opt, max]; create_execution_context()
    class ICudaEngine(_Recorded):
        __trt_name__ = "ICudaEngine"

        def __init__(self, header):
            self._h = header
            self._io = ([(n, s, d, trt.TensorIOMode.INPUT) for n, s, d in header["inputs"]]
                        + [(n, s, d, trt.TensorIOMode.OUTPUT) for n, s, d in header["outputs"]])

        @property
        def num_io_tensors(self):
            return len(self._io)

        @property
        def num_optimization_profiles(self):
            return 1

        def get_tensor_name(self, index):
            return self._io[index][0]

        def _t(self, name):
            for t in self._io:
                if t[0] == name:
                    return t
            raise KeyError(f"no tensor named {name!r}")

        def get_tensor_mode(self, name):
            return self._t(name)[3]

        def get_tensor_dtype(self, name):
            return trt.DataType[self._t(name)[2]]

        def get_tensor_shape(self, name):
            return tuple(self._t(name)[1])

        def get_tensor_profile_shape(self, name, profile_index):
            if profile_index != 0 or self._t(name)[3] != trt.TensorIOMode.INPUT:
                return []
            return [tuple(s) for s in self._h["profile"]]

        def create_execution_context(self):
            gpu.require_context("create_execution_context")
            return IExecutionContext(self)

    # Core/ExecutionContext: set_input_shape(name, shape) -> bool; get_tensor_shape(name);
    # set_tensor_address(name, memory) -> bool; execute_async_v3(stream_handle) -> bool
    class IExecutionContext(_Recorded):
        __trt_name__ = "IExecutionContext"

        def __init__(self, engine):
            import onnxruntime as ort

            self._engine = engine
            self._shapes: dict = {}
            self._addresses: dict = {}
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(base64.b64decode(engine._h["onnx"]), opts,
                                                 providers=["CPUExecutionProvider"])

        def set_input_shape(self, name, shape):
            shape = tuple(int(d) for d in shape)
            lo, _, hi = self._engine._h["profile"]
            if len(shape) != len(lo) or any(s < a or s > b for s, a, b in zip(shape, lo, hi)):
                return False  # real TensorRT logs an error and returns False
            self._shapes[name] = shape
            return True

        def get_tensor_shape(self, name):
            n, static, _, mode = self._engine._t(name)
            if mode == trt.TensorIOMode.INPUT:
                return self._shapes.get(name, tuple(static))
            if not self._shapes:
                return tuple(static)
            batch = next(iter(self._shapes.values()))[0]
            if all(d >= 0 for d in static[1:]):
                return (batch, *static[1:])
            return self._inferred_shapes()[name]  # TensorRT resolves such dims by shape inference

        def _inferred_shapes(self):
            key = tuple(sorted(self._shapes.items()))
            if getattr(self, "_shape_cache_key", None) != key:
                feeds = {}
                for n, _s, d, m in self._engine._io:
                    if m == trt.TensorIOMode.INPUT:
                        feeds[n] = np.zeros(self._shapes[n], nptype(trt.DataType[d]))
                outs = self._session.run(None, feeds)
                names = [t[0] for t in self._engine._io if t[3] == trt.TensorIOMode.OUTPUT]
                self._shape_cache = {n: tuple(v.shape) for n, v in zip(names, outs)}
                self._shape_cache_key = key
            return self._shape_cache

        def set_tensor_address(self, name, memory):
            self._engine._t(name)
            self._addresses[name] = int(memory)
            return True

        def execute_async_v3(self, stream_handle):
            gpu.require_context("execute_async_v3")
            for n, *_ in self._engine._io:
                if n not in self._addresses:
                    raise RuntimeError(f"(double) tensor '{n}' has no address: set_tensor_address was not called")
            ins = [t for t in self._engine._io if t[3] == trt.TensorIOMode.INPUT]
            for n, *_ in ins:
                if n not in self._shapes:
                    raise RuntimeError(f"(double) input '{n}' has no shape: set_input_shape was not called")
            shapes = {t[0]: tuple(self.get_tensor_shape(t[0])) for t in self._engine._io}

            def run():
                feeds = {}
                for n, _s, d, _m in ins:
                    dt = np.dtype(nptype(trt.DataType[d]))
                    nbytes = int(np.prod(shapes[n])) * dt.itemsize
                    feeds[n] = np.frombuffer(bytes(gpu.device_view(self._addresses[n], nbytes)), dt).reshape(shapes[n])
                outs = self._session.run(None, feeds)
                for (n, _s, d, _m), value in zip([t for t in self._engine._io if t[3] == trt.TensorIOMode.OUTPUT],
                                                outs):
                    value = np.ascontiguousarray(value, dtype=nptype(trt.DataType[d]))
                    if value.shape != shapes[n]:
                        raise RuntimeError(f"(double) output {n} shape {value.shape} != context shape {shapes[n]}")
                    gpu.device_view(self._addresses[n], value.nbytes)[:] = value.tobytes()

            gpu.calls.append(("execute_async_v3", shapes))
            gpu.submit(int(stream_handle), run)
            return True

    trt.Runtime, trt.ICudaEngine, trt.IExecutionContext = Runtime, ICudaEngine, IExecutionContext
    trt._gpu = gpu
    return trt
