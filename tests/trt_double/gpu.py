"""A pretend GPU shared by the fake pycuda, fake cuda-python and fake TensorRT: device memory as
bytearrays keyed by address, a context stack, streams with an optional capture recorder.

It lets the contract tests see what our code does with CUDA (which context is current when, what
is copied where, what is freed) — it says nothing about real GPUs.
"""

from __future__ import annotations

import ctypes
import itertools
from dataclasses import dataclass, field


class FakeCudaError(RuntimeError):
    pass


@dataclass
class FakeGpu:
    name: str = "Orin (nvgpu)"
    compute_capability: tuple[int, int] = (8, 7)
    dla_cores: int = 0
    device_memory: dict[int, bytearray] = field(default_factory=dict)
    host_memory: dict[int, object] = field(default_factory=dict)  # address -> ctypes buffer (kept alive)
    context_stack: list = field(default_factory=list)
    runtime_api: bool = False  # cuda-python: the primary context is always current
    capturing: dict[int, list] = field(default_factory=dict)  # stream -> recorded ops
    calls: list = field(default_factory=list)  # (op, detail) log the tests inspect
    _next: itertools.count = field(default_factory=lambda: itertools.count(1))

    def require_context(self, what: str) -> None:
        if not self.runtime_api and not self.context_stack:
            raise FakeCudaError(f"{what}: no current CUDA context (explicit context handling failed)")

    # memory ---------------------------------------------------------------------------------
    def malloc(self, nbytes: int) -> int:
        self.require_context("mem_alloc")
        addr = 0x7F00_0000_0000 + next(self._next) * (1 << 24)
        self.device_memory[addr] = bytearray(nbytes)
        return addr

    def free(self, addr: int) -> None:
        if addr not in self.device_memory:
            raise FakeCudaError(f"free of unknown device address {addr:#x}")
        del self.device_memory[addr]

    def host_alloc(self, nbytes: int) -> int:
        buf = (ctypes.c_uint8 * max(1, nbytes))()
        addr = ctypes.addressof(buf)
        self.host_memory[addr] = buf
        return addr

    def host_free(self, addr: int) -> None:
        if self.host_memory.pop(addr, None) is None:
            raise FakeCudaError(f"free of unknown host address {addr:#x}")

    def device_view(self, addr: int, nbytes: int) -> memoryview:
        buf = self.device_memory.get(addr)
        if buf is None:
            raise FakeCudaError(f"device address {addr:#x} is not an allocation")
        if nbytes > len(buf):
            raise FakeCudaError(f"access of {nbytes} bytes at {addr:#x} overruns its {len(buf)}-byte allocation")
        return memoryview(buf)[:nbytes]

    # streams --------------------------------------------------------------------------------
    def submit(self, stream: int, op) -> None:
        """Run ``op`` now, or record it when ``stream`` is being captured into a graph."""
        if stream == 0:
            raise FakeCudaError("work on the default stream (TensorRT advises a non-default stream)")
        if stream in self.capturing:
            self.capturing[stream].append(op)
        else:
            op()

    def htod(self, stream: int, dst: int, src_bytes_getter, nbytes: int) -> None:
        def op():
            self.device_view(dst, nbytes)[:] = src_bytes_getter()
        self.calls.append(("htod", nbytes))
        self.submit(stream, op)

    def dtoh(self, stream: int, write_host, src: int, nbytes: int) -> None:
        def op():
            write_host(bytes(self.device_view(src, nbytes)))
        self.calls.append(("dtoh", nbytes))
        self.submit(stream, op)

    def leaks(self) -> list[str]:
        out = [f"device {a:#x} ({len(b)} B)" for a, b in self.device_memory.items()]
        out += [f"host {a:#x}" for a in self.host_memory]
        if self.context_stack:
            out.append(f"{len(self.context_stack)} context(s) still pushed")
        return out
