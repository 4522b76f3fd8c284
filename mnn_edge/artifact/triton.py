"""An artifact -> one model of an NVIDIA Triton Inference Server model repository.

Triton's layout (model repository docs)::

    <repo>/<model>/config.pbtxt
    <repo>/<model>/1/model.onnx        (platform "onnxruntime_onnx")
    <repo>/<model>/1/model.plan        (platform "tensorrt_plan")

``config.pbtxt`` is the text form of Triton's ``ModelConfig`` protobuf (model_config.proto): name,
platform, ``max_batch_size`` (with batching on, ``dims`` leave the batch axis out), inputs and
outputs with ``data_type``/``dims`` read from the artifact itself, ``dynamic_batching`` with
preferred batch sizes and a short queue delay, an ``instance_group`` (count, KIND_CPU/KIND_GPU),
and the artifact's mnn-edge metadata (normalisation, L, precision, ...) under
``parameters["mnn_edge"]`` so a client can read it back from the server's model config. Written as
text with no Triton package; the tests parse every file with ``tritonclient``'s own schema.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.artifact import METADATA_KEY, ArtifactName, ModelMetadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path, write_text_atomic

# ONNX TensorProto element types -> Triton DataType names (model_config.proto)
ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 6: "TYPE_INT32", 7: "TYPE_INT64", 3: "TYPE_INT8", 2: "TYPE_UINT8"}
NUMPY_TO_TRITON = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32", "int8": "TYPE_INT8"}
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton DataType name
    dims: tuple[int, ...]  # without the batch axis


@dataclass(frozen=True)
class ServingConfig:
    max_batch_size: int = 8  # ONNX; a plan's own profile maximum replaces it
    preferred_batch_sizes: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 500  # how long Triton may hold a request to fill a batch
    instances: int = 1
    kind: str = "KIND_CPU"  # KIND_GPU on a GPU server


def add_triton_arguments(parser) -> None:
    """``--triton-repo DIR`` and its serving options, shared by mnn-export and mnn-build."""
    t = parser.add_argument_group(
        "Triton Inference Server",
        "Also add every artifact this run writes to a Triton model repository: <repo>/<model>/config.pbtxt "
        "+ <repo>/<model>/1/model.onnx|model.plan, with the artifact's metadata under parameters[\"mnn_edge\"].")
    t.add_argument("--triton-repo", type=Path, default=None, metavar="DIR", help="model repository folder")
    t.add_argument("--triton-max-batch", type=int, default=ServingConfig.max_batch_size,
                   help="max_batch_size of ONNX models (a plan's comes from its profile)")
    t.add_argument("--triton-instances", type=int, default=ServingConfig.instances, help="instances per model")
    t.add_argument("--triton-kind", choices=("cpu", "gpu"), default="cpu", help="where the instances run")


# Triton reads max_batch_size as an int32 and would refuse the whole repository above it; a batch of
# 256x256 crops beyond a few thousand does not fit any GPU's memory anyway.
MAX_TRITON_BATCH = 4096
MAX_INSTANCES = 64


def serving_config_from_args(args) -> ServingConfig | None:
    if args.triton_repo is None:
        return None
    if not (1 <= args.triton_max_batch <= MAX_TRITON_BATCH and 1 <= args.triton_instances <= MAX_INSTANCES):
        raise MnnEdgeError(f"--triton-max-batch must be 1..{MAX_TRITON_BATCH} and --triton-instances "
                           f"1..{MAX_INSTANCES}")
    preferred = tuple(b for b in ServingConfig.preferred_batch_sizes if b <= args.triton_max_batch)
    return ServingConfig(max_batch_size=args.triton_max_batch, preferred_batch_sizes=preferred or (1,),
                         instances=args.triton_instances, kind=f"KIND_{args.triton_kind.upper()}")


def model_name_for(path: Path) -> str:
    """``pose.int8.onnx`` -> ``pose_int8``: Triton model names are folder names; dots read badly in URLs."""
    parsed = ArtifactName.parse(path)
    stem = parsed.stem if parsed is not None else Path(path).name.split(".")[0]
    return stem.replace(".", "_").replace("-", "_")


def onnx_io(path: Path) -> tuple[ModelMetadata, list[TensorSpec], list[TensorSpec]]:
    """Metadata, inputs and outputs of an ONNX artifact, dims without the (dynamic) batch axis."""
    from mnn_edge.artifact.onnx_io import get_metadata, load_onnx

    model = load_onnx(path)
    meta = get_metadata(model)
    if meta is None:
        raise MnnEdgeError(f"{path} has no mnn-edge metadata; export it with mnn-export")
    inits = {i.name for i in model.graph.initializer}

    def spec(v) -> TensorSpec:
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if not dims or dims[0] != -1:
            raise MnnEdgeError(f"{path}: tensor '{v.name}' has no dynamic batch axis (shape {dims}); "
                               "re-export it with mnn-export")
        if t.elem_type not in ONNX_TO_TRITON:
            raise MnnEdgeError(f"{path}: tensor '{v.name}' has element type {t.elem_type}, which this writer "
                               "does not map to a Triton data type")
        return TensorSpec(v.name, ONNX_TO_TRITON[t.elem_type], tuple(dims[1:]))

    inputs = [spec(v) for v in model.graph.input if v.name not in inits]
    outputs = [spec(v) for v in model.graph.output]
    return meta, inputs, outputs


def plan_io(path: Path) -> tuple[ModelMetadata, list[TensorSpec], list[TensorSpec], int]:
    """The same from a plan's JSON sidecar (no TensorRT needed), plus the profile's max batch."""
    from mnn_edge.artifact.sidecar import read_sidecar

    sc = read_sidecar(path)

    def spec(t) -> TensorSpec:
        if str(t.dtype) not in NUMPY_TO_TRITON:
            raise MnnEdgeError(f"{path}: tensor '{t.name}' has dtype {t.dtype}, not mapped to a Triton data type")
        return TensorSpec(t.name, NUMPY_TO_TRITON[str(t.dtype)], tuple(int(d) for d in t.shape[1:]))

    return sc.metadata, [spec(t) for t in sc.inputs], [spec(t) for t in sc.outputs], int(sc.max_batch)


def text_string(value: str) -> str:
    """A protobuf text-format string literal (UTF-8 kept as is; quotes, backslashes, newlines escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def config_text(name: str, platform: str, meta: ModelMetadata, inputs: list[TensorSpec],
                outputs: list[TensorSpec], cfg: ServingConfig, max_batch: int) -> str:
    preferred = [b for b in cfg.preferred_batch_sizes if b <= max_batch] or [max_batch]

    def tensors(key: str, specs: list[TensorSpec]) -> list[str]:
        lines = [f"{key} ["]
        for i, s in enumerate(specs):
            sep = "," if i < len(specs) - 1 else ""
            dims = ", ".join(map(str, s.dims))
            lines.append(f'  {{ name: "{s.name}" data_type: {s.data_type} dims: [ {dims} ] }}{sep}')
        return lines + ["]"]

    meta_json = json.dumps(json.loads(meta.to_json()), sort_keys=True, ensure_ascii=False)
    lines = [f'name: "{name}"', f'platform: "{platform}"', f"max_batch_size: {max_batch}",
             *tensors("input", inputs), *tensors("output", outputs),
             "dynamic_batching {", f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]",
             f"  max_queue_delay_microseconds: {cfg.max_queue_delay_us}", "}",
             f"instance_group [ {{ count: {cfg.instances} kind: {cfg.kind} }} ]",
             "parameters {", f'  key: "{METADATA_KEY}"', f"  value: {{ string_value: {text_string(meta_json)} }}", "}"]
    return "\n".join(lines) + "\n"


def check_triton_repo(repo: str | Path, artifacts: list[Path], force: bool) -> None:
    """Before any work: ``repo`` can be a repository (a folder, or nothing yet), and none of the
    models these artifacts would become is there already (unless ``force``)."""
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise MnnEdgeError(f"--triton-repo {repo} is a file, not a folder for a Triton model repository")
    taken = [str(repo / model_name_for(a)) for a in artifacts if (repo / model_name_for(a)).exists()]
    if taken and not force:
        raise MnnEdgeError(f"{', '.join(taken)} already exist(s) in the Triton repository; pass --force to replace")


def write_triton_model(artifact: str | Path, repo: str | Path, cfg: ServingConfig = ServingConfig(),
                       name: str | None = None, force: bool = False) -> Path:
    """Add ``artifact`` (.onnx or .plan) to the repository ``repo``; returns the model folder."""
    artifact, repo = Path(artifact), Path(repo)
    name = name or model_name_for(artifact)
    if not MODEL_NAME.match(name):
        raise MnnEdgeError(f"'{name}' is not a usable Triton model name (letters, digits, _ . - only)")
    if not (1 <= cfg.max_batch_size <= MAX_TRITON_BATCH and 1 <= cfg.instances <= MAX_INSTANCES) \
            or cfg.kind not in ("KIND_CPU", "KIND_GPU"):
        raise MnnEdgeError(f"max batch size must be 1..{MAX_TRITON_BATCH}, instance count 1..{MAX_INSTANCES}, "
                           "kind KIND_CPU or KIND_GPU")
    if artifact.suffix.lower() == ".onnx":
        meta, inputs, outputs = onnx_io(artifact)
        platform, filename, max_batch = "onnxruntime_onnx", "model.onnx", cfg.max_batch_size
    elif artifact.suffix.lower() in (".plan", ".engine"):
        meta, inputs, outputs, max_batch = plan_io(artifact)
        platform, filename = "tensorrt_plan", "model.plan"
    else:
        raise MnnEdgeError(f"{artifact}: Triton serves .onnx and .plan artifacts here, not '{artifact.suffix}'")
    folder = repo / name
    if folder.exists() and not force:
        raise MnnEdgeError(f"{folder} already exists in the Triton repository; pass --force to replace it")
    (folder / "1").mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "1" / filename) as tmp:
        shutil.copyfile(artifact, tmp)
    write_text_atomic(folder / "config.pbtxt", config_text(name, platform, meta, inputs, outputs, cfg, max_batch))
    return folder
