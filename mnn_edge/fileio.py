"""Atomic writes: a file appears complete under its final name or not at all.

Temporaries (files, or folders for :func:`atomic_folder`) are ``.NAME.<pid>.<random>.part`` beside
the target; the next write of the same target removes those whose process is gone (a SIGKILLed run).
Long runs claim their outputs first (:func:`claim_output`), so a second writer is refused rather
than interleaved.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnn_edge.errors import MnnEdgeError


def make_folder(path: str | os.PathLike) -> Path:
    """``mkdir -p`` whose error names the real problem: a path component that is a file says so
    (not "File exists"), anything else gives the system's reason."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise MnnEdgeError(f"cannot write to {path}: {blocker} is a file, not a folder") from e
    except OSError as e:
        raise MnnEdgeError(f"cannot write to {path}: {e.strerror}") from e
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    make_folder(target.parent)
    try:
        remove_stale_parts(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent)
    except OSError as e:
        raise MnnEdgeError(f"cannot write to {target.parent}: {e.strerror}") from e
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the finished file the mode a plain open() would have.
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; only when the block succeeds does it become
    ``target`` (an old ``target`` is moved aside first and removed after), so a reader never sees a
    half-filled folder under the final name. On failure the temporary folder is removed."""
    target = Path(target)
    make_folder(target.parent)
    try:
        remove_stale_parts(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent))
    except OSError as e:
        raise MnnEdgeError(f"cannot write to {target.parent}: {e.strerror}") from e
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; give it a plain mkdir's mode
    old = None
    try:
        yield tmp
        if target.exists():
            # a .part name of this process: if we are killed between the renames, the next write cleans it
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent))
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def claim_output(target: str | os.PathLike, what: str = "output") -> Iterator[None]:
    """Hold an exclusive claim on ``target`` for the whole block, so a second writer of the same
    output is refused with one line naming the first instead of both exiting 0 over a mixed file.

    The claim is an advisory lock (``flock``) on ``.NAME.lock`` beside the target, holding the
    owner's pid. The kernel drops it when the process dies, however it dies, so the lock file a
    killed run leaves behind is recognised as stale and simply taken over.
    """
    import fcntl  # POSIX only: Linux (Jetson, x86 servers) and macOS are the platforms served

    target = Path(target)
    lock = target.with_name(f".{target.name}.lock")
    make_folder(target.parent)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    except OSError as e:
        raise MnnEdgeError(f"cannot write to {target.parent}: {e.strerror}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise MnnEdgeError(f"{what} {target} is being written by another process (pid {owner}); wait for "
                               "it to finish or choose another output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # while still held: a waiting writer never sees a stale one
    finally:
        os.close(fd)


@contextlib.contextmanager
def claim_outputs(*outputs: tuple[str | os.PathLike | None, str]) -> Iterator[None]:
    """:func:`claim_output` on each ``(target, what)`` whose target is not None, for the whole block.
    Two targets that resolve to one path are refused first: the second claim would otherwise
    fail on the command's own lock and blame "another process" with its own pid."""
    check_distinct([], list(outputs))
    with contextlib.ExitStack() as stack:
        for target, what in outputs:
            if target is not None:
                stack.enter_context(claim_output(target, what))
        yield


def remove_stale_parts(target: Path) -> None:
    """Remove ``.NAME.<pid>.<random>.part`` files beside ``target`` whose writer process is gone
    (a run killed by SIGKILL or a power cut cannot clean up after itself)."""
    # ``..NAME.<pid>....part``: a temporary of a temporary, as exports before 2026-12-03 left them
    for prefix in (f".{target.name}.", f"..{target.name}."):
        for part in target.parent.glob(f"{glob.escape(prefix)}*.part"):
            pid = part.name[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                if part.is_dir() and not part.is_symlink():  # a folder of atomic_folder
                    shutil.rmtree(part, ignore_errors=True)
                else:
                    part.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")  # not the locale's: every file here is UTF-8


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


PathRole = tuple["str | os.PathLike | None", str]  # (path, what it is for the user: "input video", ...)


def check_distinct(inputs: list[PathRole], outputs: list[PathRole], output_folders_named: bool = False,
                   outputs_replaced: bool = False) -> None:
    """Refuse, before any work and whatever --force says, an output that is (after symlinks and
    ``..``) one of the command's inputs, the folder an input sits in directly (unless the command
    writes into its output folders only under names of its own: ``output_folders_named``), or
    another output of the same command: one line naming both. ``outputs_replaced``: the outputs
    are folders replaced as a whole (``mnn-data profile --force``), so an input anywhere inside
    one would be deleted with it and is refused too."""
    def real(p) -> Path:
        return Path(p).expanduser().resolve()

    ins = [(real(p), what) for p, what in inputs if p is not None and str(p)]
    seen: list[tuple[Path, str]] = []
    for p, what in outputs:
        if p is None:
            continue
        out = real(p)
        for inp, in_what in ins:
            if out == inp:
                raise MnnEdgeError(f"{what} {p} is the {in_what} itself: writing it would destroy the input; "
                                   "choose another path")
            if out == inp.parent and inp.is_file() and not output_folders_named:
                raise MnnEdgeError(f"{what} {p} is the folder the {in_what} {inp.name} is in: writing there "
                                   "could replace it; choose another folder")
            if outputs_replaced and out in inp.parents:
                raise MnnEdgeError(f"{what} {p} holds the {in_what} {inp}: replacing it would delete the input; "
                                   "choose another folder")
        for other, other_what in seen:
            if out == other:
                raise MnnEdgeError(f"{what} and {other_what} are the same file {p}: give each its own path")
        seen.append((out, what))


def refuse_existing(paths: list[Path], force: bool) -> None:
    """Outputs are new, or the user said --force: one error naming every file in the way."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise MnnEdgeError(f"{', '.join(existing)} already exist; pass --force to overwrite")


def require_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise MnnEdgeError(f"{what} not found: {p}")
    return p


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """A text file's contents; missing, unreadable or binary is one clear error naming ``what``."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")  # JSON and TOML are UTF-8 whatever the locale says
    except FileNotFoundError as e:
        raise MnnEdgeError(f"{what} not found: {p}") from e
    except UnicodeDecodeError as e:
        raise MnnEdgeError(f"{p} is not a text file, so not a valid {what}") from e
    except OSError as e:
        raise MnnEdgeError(f"cannot read {what} {p}: {e.strerror}") from e


def read_json(path: str | os.PathLike, what: str):
    """Parse a JSON file; a missing, binary or malformed file is one clear error naming ``what``."""
    p = Path(path)
    try:
        return json.loads(read_text_file(p, what))
    except json.JSONDecodeError as e:
        raise MnnEdgeError(f"{p} is not valid JSON: {e}") from e
    except RecursionError:  # nesting deeper than Python's stack: no file this toolkit writes
        raise MnnEdgeError(f"{p} nests JSON too deeply to be a {what}") from None


def read_toml(path: str | os.PathLike, what: str) -> dict:
    """Parse a TOML file (tomllib, or the tomli backport on Python 3.10 / JetPack 6)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        try:
            import tomli as tomllib
        except ImportError as e:
            raise MnnEdgeError("reading TOML on Python 3.10 needs tomli: pip install tomli") from e
    p = Path(path)
    text = read_text_file(p, what)  # missing, a folder or binary: one line (was a traceback for the last two)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MnnEdgeError(f"{what} {p} is not valid TOML: {e}") from e
