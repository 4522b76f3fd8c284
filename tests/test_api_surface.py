"""Every TensorRT / pycuda / cuda-python name our code touches exists in each supported release
(8.6.1, 10.3.0 = JetPack 6, 11.4.0.106 = newest), or sits behind a capability check — checked
against name lists extracted from the real wheels (mnn_edge/runtime/tensorrt/api_names/, by
tools/extract_trt_api.py), so no download or TensorRT is needed here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from trt_double import fake_tensorrt
from trt_double.fake_cudart import make_cudart
from trt_double.fake_pycuda import make_pycuda
from trt_double.flow import run_all_paths
from trt_double.gpu import FakeGpu

from mnn_edge.runtime.tensorrt import api_surface as api

ROOT = Path(__file__).resolve().parents[1]


def test_committed_lists_are_there_and_real():
    for v in api.SUPPORTED_TRT:
        for name in ("Builder", "OnnxParser", "execute_async_v3", "set_tensor_address", "deserialize_cuda_engine"):
            assert api.trt_has(v, name), (v, name)
    assert "execute_async_v3" in api.lean_members()["IExecutionContext"]
    assert "retain_primary_context" in api.pycuda_names()
    assert "cudaGraphInstantiate" in api.cuda_python_names()


def test_release_facts_from_the_issue():
    """11.x: strongly typed only (no FP16/INT8 builder flags, no calibrators); 10.3 has both paths."""
    lean_flags = api.lean_members()["BuilderFlag"]
    assert "FP16" not in lean_flags and "INT8" not in lean_flags and "GPU_FALLBACK" in lean_flags
    assert not api.trt_has("11.4.0.106", "IInt8EntropyCalibrator2")
    assert api.trt_has("10.3.0", "IInt8EntropyCalibrator2") and api.trt_has("10.3.0", "FP16")
    assert api.trt_has("10.3.0", "STRONGLY_TYPED") and api.trt_has("11.4.0.106", "STRONGLY_TYPED")
    assert not api.trt_has("8.6.1", "STRONGLY_TYPED") and not api.trt_has("8.6.1", "IProgressMonitor")
    assert not api.trt_has("11.4.0.106", "EXPLICIT_BATCH")


@pytest.mark.parametrize("version", api.SUPPORTED_TRT)
def test_double_has_the_per_release_shape_of_the_real_module(version):
    """The double hides/exposes names per release exactly where the real lists say so."""
    lean = api.lean_members() if version == api.LEAN else {}
    for owner, name in sorted(set(fake_tensorrt.ONLY_FROM) | set(fake_tensorrt.UNTIL)):
        expected = fake_tensorrt.exists_in(owner, name, api.version_key(version))
        if owner in lean:  # exact, per class
            assert (name in lean[owner]) == expected, (version, owner, name)
        elif expected:
            assert api.trt_has(version, name), (version, owner, name)
        else:
            assert not api.trt_has(version, name), (version, owner, name)


@pytest.mark.parametrize("version", api.SUPPORTED_TRT)
def test_every_name_our_code_touches_exists_in_the_release(tmp_path, version):
    fake_tensorrt.ACCESSED.clear()
    run_all_paths(tmp_path, api.version_key(version))
    used = set(fake_tensorrt.ACCESSED)
    assert ("IExecutionContext", "execute_async_v3") in used and ("Builder", "build_serialized_network") in used
    assert api.check_trt_names(used, version) == []
    for enum_name, members in api.ENUM_MEMBERS_USED.items():
        for m in members:
            if (enum_name, m) not in api.GUARDED:
                assert api.trt_has(version, m), (version, enum_name, m)


def _attributes_on(source: Path, roots: set[str]) -> set[str]:
    """Attribute names read on any of ``roots`` (e.g. 'self._cuda', 'cudart') in a module; an
    attribute of an attribute gives 'A.B' (an enum member)."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Attribute):
            base = ast.unparse(node.value)
            if base in roots:
                names.add(node.attr)
            elif isinstance(node.value, ast.Attribute) and ast.unparse(node.value.value) in roots:
                names.add(f"{node.value.attr}.{node.attr}")
    return names


def test_pycuda_names_exist_in_its_sources():
    roots = {"cuda", "self._cuda", "self._device", "self._context", "self._stream", "dev", "host_alloc"}
    used = _attributes_on(ROOT / "mnn_edge/runtime/tensorrt/cuda_memory.py", roots)
    used = {n.split(".")[-1] for n in used}
    assert {"retain_primary_context", "pagelocked_empty", "memcpy_htod_async", "pop"} <= used
    assert sorted(used - api.pycuda_names()) == []


def test_cuda_python_names_exist_in_the_module():
    used = _attributes_on(ROOT / "mnn_edge/runtime/tensorrt/cuda_memory.py", {"cudart", "self._rt"})
    assert {"cudaMemcpyAsync", "cudaStreamBeginCapture", "cudaMemcpyKind.cudaMemcpyHostToDevice"} <= used
    assert sorted(used - api.cuda_python_names()) == []


def test_the_cuda_doubles_only_fake_real_names():
    _, driver = make_pycuda(FakeGpu())
    faked = {n for n in vars(driver) if not n.startswith("_")}
    assert sorted(faked - api.pycuda_names()) == []
    rt = make_cudart(FakeGpu())
    faked = {n for n in vars(rt) if not n.startswith("_")}
    assert sorted(faked - api.cuda_python_names()) == []


def test_the_check_catches_names_a_release_lacks():
    assert api.check_trt_names({("module", "IInt8EntropyCalibrator2")}, "11.4.0.106")
    assert api.check_trt_names({("IExecutionContext", "execute_async_v2")}, "11.4.0.106")  # removed in 10.0
    assert api.check_trt_names({("IBuilderConfig", "max_workspace_size")}, "10.3.0")  # removed in 10.0
    assert not api.check_trt_names({("module", "IProgressMonitor")}, "8.6.1")  # guarded by a capability check


def test_enum_member_list_covers_the_code():
    """Every ``trt.Enum.MEMBER`` written in our TensorRT code is in ENUM_MEMBERS_USED (so it is checked)."""
    files = [*sorted((ROOT / "mnn_edge/runtime/tensorrt").glob("*.py")), ROOT / "mnn_edge/bench/gpu_check.py"]
    written = set()
    for f in files:
        written |= {n for n in _attributes_on(f, {"trt"}) if "." in n and not n.split(".")[1].startswith("_")}
    listed = {f"{e}.{m}" for e, ms in api.ENUM_MEMBERS_USED.items() for m in ms}
    assert written and sorted(written - listed) == []
