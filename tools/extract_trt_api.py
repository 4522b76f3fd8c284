#!/usr/bin/env python3
"""Extract the API name lists of TensorRT, pycuda and cuda-python into mnn_edge/runtime/tensorrt/api_names/.

Run by hand when a new TensorRT release should be supported (it downloads from PyPI); CI only
reads the committed lists (tests/test_api_surface.py).

    python tools/extract_trt_api.py                    # the default set below
    python tools/extract_trt_api.py --trt 10.3.0 --trt 11.4.0.106 --lean 11.4.0.106

What each list is:
- ``tensorrt-<v>.txt``: the trailing identifier of every string literal in the bindings' compiled module
  (``tensorrt-cu12-bindings`` / ``tensorrt-bindings`` for 8.6: the module without its libraries, so
  it cannot be imported here) plus the Python functions of its ``__init__.py`` (``nptype``,
  ``volume``). The linker merges string literals by tail ("INT8" can live inside "UINT8"), so a
  name counts as present when some identifier ENDS with it, and as absent only when none does.
- ``tensorrt-lean-<v>.json``: class -> public members, by importing the runtime-only
  ``tensorrt-lean-cu13`` wheel (it imports without a GPU) — exact, per class.
- ``pycuda-<v>.txt``: names defined in the sdist's Boost.Python wrapper (``"name"`` strings in
  ``.def``/``py::def``/``class_``) and the functions/classes of ``pycuda/driver.py``.
- ``cuda-python-<v>.txt``: ``dir()`` of ``cuda.bindings.runtime`` (imports without a driver),
  plus the members of its enums as ``Enum.member``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "mnn_edge" / "engine" / "api_names"
TRT_DEFAULT = {"8.6.1": "tensorrt-bindings==8.6.1", "10.3.0": "tensorrt-cu12-bindings==10.3.0",
               "11.4.0.106": "tensorrt-cu12-bindings==11.4.0.106"}
LEAN_DEFAULT = "11.4.0.106"
PYCUDA_DEFAULT = "2026.1"
CUDA_PYTHON_DEFAULT = "13.4.4"
TAIL = re.compile(rb"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]{1,80}$")
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_35_x86_64"]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def download_wheel(spec: str, dest: Path) -> Path:
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    pip("download", "--no-deps", "--only-binary=:all:", "--python-version",
        f"{sys.version_info.major}.{sys.version_info.minor}", *plat, "-d", str(dest), spec)
    return max(dest.glob("*.whl"), key=lambda p: p.stat().st_mtime)


def header(source: str, digest: str) -> str:
    return f"# extracted by tools/extract_trt_api.py from {source} (sha256 {digest[:16]}...)\n"


def extract_trt(version: str, spec: str, work: Path) -> Path:
    whl = download_wheel(spec, work / version)
    names: set[str] = set()
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            data = z.read(info)
            if info.filename.endswith(".so"):
                # Each NUL-terminated literal's trailing identifier: a literal the linker tail-merged
                # into a longer one ("DataType" inside "tensorrt.DataType") is a suffix of it.
                for chunk in data.split(b"\0"):
                    m = TAIL.search(chunk)
                    if m:
                        names.add(m.group().decode())
            elif info.filename.endswith("__init__.py") and info.filename.count("/") == 1:
                tree = ast.parse(data)
                names.update(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
                names.update(t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                             if isinstance(t, ast.Name))
    out = OUT / f"tensorrt-{version}.txt"
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    out.write_text(header(whl.name, digest) + "\n".join(sorted(names)) + "\n")
    return out


def extract_lean(version: str, work: Path) -> Path:
    target = work / "lean"
    pip("install", "--no-deps", "--target", str(target), f"tensorrt-lean-cu13=={version}",
        f"tensorrt-lean-cu13-bindings=={version}", f"tensorrt-lean-cu13-libs=={version}")
    code = ("import json, inspect, tensorrt_lean as t\n"
            "out = {'module': sorted(n for n in dir(t) if not n.startswith('_'))}\n"
            "for n in out['module']:\n"
            "    o = getattr(t, n)\n"
            "    if inspect.isclass(o):\n"
            "        out[n] = sorted(m for m in dir(o) if not m.startswith('_'))\n"
            "print(json.dumps(out, sort_keys=True))\n")
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": str(target)})
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["_source"] = f"tensorrt-lean-cu13=={version} (imported, introspected)"
    out = OUT / f"tensorrt-lean-{version}.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return out


def extract_pycuda(version: str, work: Path) -> Path:
    pip("download", "--no-deps", "--no-binary=:all:", "--no-build-isolation", "-d", str(work), f"pycuda=={version}")
    sdist = next(work.glob(f"pycuda-{version}.tar.gz"))
    names: set[str] = set()
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            if m.name.endswith("src/wrapper/wrap_cudadrv.cpp"):
                text = tar.extractfile(m).read().decode()
                names.update(re.findall(r'(?:def|class_<[^>]*>|DEF_SIMPLE_METHOD|DEF_SIMPLE_FUNCTION|'
                                        r'staticmethod|add_property|attr)\s*\(\s*"?([A-Za-z_][A-Za-z0-9_]*)', text))
                names.update(re.findall(r'class_<[^;]*?>\s*\(\s*"([A-Za-z_]\w*)"', text, re.S))
                names.update(re.findall(r'attr\("([A-Za-z_]\w*)"\)', text))
                names.update(re.findall(r'DECLARE_EXC\((\w+)', text))
            elif m.name.endswith("pycuda/driver.py"):
                tree = ast.parse(tar.extractfile(m).read())
                names.update(n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    out = OUT / f"pycuda-{version}.txt"
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    out.write_text(header(sdist.name, digest) + "\n".join(sorted(names)) + "\n")
    return out


def extract_cuda_python(version: str, work: Path) -> Path:
    target = work / "cudapy"
    pip("install", "--no-deps", "--target", str(target), f"cuda-bindings=={version}", "cuda-pathfinder")
    code = ("import cuda.bindings.runtime as rt\n"
            "names = set(n for n in dir(rt) if not n.startswith('_'))\n"
            "for n in list(names):\n"
            "    o = getattr(rt, n)\n"
            "    if isinstance(o, type) and hasattr(o, '__members__'):  # its FastEnum types\n"
            "        names.update(f'{n}.{m}' for m in o.__members__)\n"
            "print('\\n'.join(sorted(names)))\n")
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": str(target)})
    out = OUT / f"cuda-python-{version}.txt"
    out.write_text(f"# extracted by tools/extract_trt_api.py from cuda-bindings=={version} (imported)\n" + res.stdout)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trt", action="append", help="TensorRT version, e.g. 10.3.0 (repeatable)")
    p.add_argument("--lean", default=LEAN_DEFAULT, help="tensorrt-lean-cu13 version to import")
    p.add_argument("--pycuda", default=PYCUDA_DEFAULT)
    p.add_argument("--cuda-python", default=CUDA_PYTHON_DEFAULT)
    args = p.parse_args()
    trt = {v: TRT_DEFAULT.get(v, f"tensorrt-cu12-bindings=={v}") for v in args.trt} if args.trt else TRT_DEFAULT
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for version, spec in trt.items():
            print("wrote", extract_trt(version, spec, work))
        print("wrote", extract_lean(args.lean, work))
        print("wrote", extract_pycuda(args.pycuda, work))
        print("wrote", extract_cuda_python(args.cuda_python, work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
