"""The sources of one mnn-run: repeatable --camera / --video / --images flags and --sources FILE,
kept in command-line order (stream 0 is the first source given)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnn_edge.errors import MnnEdgeError
from mnn_edge.run.app import SourceConfig, SourceKind

FILE = "file"  # a --sources entry, expanded into its lines by source_configs
SOURCES_FILE_HELP = ("a text file with one source per line: 'KIND LOCATION', KIND one of camera, video, images "
                     "(e.g. 'camera 0', 'video clips/a.mp4', 'images photos/'); blank lines and lines starting "
                     "with # are ignored; relative paths are relative to the file's folder")


class AddSource(argparse.Action):
    """Appends (kind, value) to one shared list, so the streams keep the order of the command line."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), (self.const, values)])


def read_sources_file(path: Path) -> list[tuple[SourceKind, str]]:
    """(kind, location) per source line of ``path``; a bad line fails naming its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MnnEdgeError(f"--sources file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MnnEdgeError(f"cannot read --sources file {path}: {getattr(e, 'strerror', None) or e}") from e
    kinds = ", ".join(k.value for k in SourceKind)
    found = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, location = line.partition(" ")
        location = location.strip()
        if kind not in {k.value for k in SourceKind} or not location:
            raise MnnEdgeError(f"{path}:{n}: expected 'KIND LOCATION' with KIND one of {kinds}, got {line!r}")
        kind = SourceKind(kind)
        if kind is not SourceKind.CAMERA and not Path(location).is_absolute():
            location = str(path.parent / location)  # the file and its media travel together
        found.append((kind, location))
    if not found:
        raise MnnEdgeError(f"--sources file {path} lists no source (one 'KIND LOCATION' per line, KIND one of "
                           f"{kinds})")
    return found


def source_configs(specs: list[tuple[str, str]], camera_retries: int, retry_wait: float) -> tuple[SourceConfig, ...]:
    """The (flag kind, value) pairs AddSource collected -> one SourceConfig per stream, in order."""
    if not specs:
        raise MnnEdgeError("no source given: pass --camera, --video, --images (each repeatable) or --sources FILE")
    expanded: list[tuple[SourceKind, str]] = []
    for kind, value in specs:
        if kind == FILE:
            expanded.extend(read_sources_file(Path(value)))
        else:
            expanded.append((SourceKind(kind), value))
    return tuple(SourceConfig(kind, location, camera_retries, retry_wait) for kind, location in expanded)
