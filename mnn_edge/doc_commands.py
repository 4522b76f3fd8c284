"""The shell commands a user runs from the docs, in document order, and the rule that says which of
them a check may run here (``tools/check_doc_commands.py`` runs them on a fresh clone).

A command is one logical line of a fenced ```bash block: lines ending in a backslash are joined, and
comments are dropped. A trailing comment may carry a marker, ``# needs: camera`` (several: ``needs:
GPU, TensorRT``), that says what the command needs beyond the CPU and the mirror; the check skips it
and prints why, unless ``--have`` names everything it needs. Install steps (venv, ``pip install``)
are left out of ``&&`` chains unless asked for, and a chain that runs the test suite is skipped
(CI's own job, ``.ci/run``). ``mnn-export`` and ``mnn-data pseudo-label`` write complete-or-absent
outputs that later commands read, so they are let run to the end (:data:`RUN_TO_END`). ``MIRROR``
and ``../shared`` stand for the mirror of external data.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
SHELL_LANGUAGES = {"bash", "sh", "shell"}
NEEDS = re.compile(r"needs:\s*([^;#]+)")
INSTALL = re.compile(r"^(python3? -m venv\b|\. \S*activate$|source \S*activate$|(python3? -m )?pip install\b)")
SKIP_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(^|\s)(python3? -m )?pytest\b"), "runs the test suite: CI's job (.ci/run)"),
)
# Tools whose output is complete or absent (a stop leaves nothing) and which later commands read: these
# run to the end (up to the check's longer budget) instead of being stopped at the usual one.
RUN_TO_END = re.compile(r"(^|&& )(mnn-export|mnn-data pseudo-label)\b")
MIRROR_WORDS = re.compile(r"(?<![\w./-])(MIRROR|\.\./shared)(?![\w-])")


@dataclass(frozen=True)
class DocCommand:
    doc: str
    line: int  # 1-based line of the command's first physical line
    text: str  # the command as the shell gets it: joined, without its comment
    needs: tuple[str, ...] = ()  # from '# needs: ...' markers

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of one shell line: ``#`` starts a comment at the start of a word, outside quotes."""
    quote = ""
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def shell_blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line of the block's first line, its lines) for every fenced bash/sh block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(2), m.group(3).lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if lang in SHELL_LANGUAGES:
            yield i + 2, lines[i + 1:end]
        i = end + 1


def commands(doc: str, text: str) -> list[DocCommand]:
    """Every command of ``text``'s shell blocks, in document order."""
    found: list[DocCommand] = []
    for first, block in shell_blocks(text):
        parts: list[str] = []
        needs: list[str] = []
        start = 0
        for offset, raw in enumerate(block):
            code, comment = split_comment(raw)
            if not parts:
                start = first + offset
            for m in NEEDS.finditer(comment):
                needs += [n.strip() for n in m.group(1).split(",") if n.strip()]
            if code.endswith("\\") and not comment:  # a backslash before a comment continues nothing
                parts.append(code[:-1].strip())
                continue
            parts.append(code.strip())
            joined = " ".join(p for p in parts if p)
            if joined:
                found.append(DocCommand(doc, start, joined, tuple(needs)))
            parts, needs = [], []
    return found


@dataclass(frozen=True)
class Plan:
    run: str | None  # what to run, or None: skipped
    why: str = ""  # why skipped, or what was left out
    to_end: bool = False  # complete-or-absent output that later commands read: let it finish


def plan(cmd: DocCommand, *, install: bool = False, have: frozenset[str] = frozenset(),
         mirror: str | None = None) -> Plan:
    """What the check runs for ``cmd``: install steps dropped (unless ``install``), mirror words
    replaced, and a skip with its reason by the markers and :data:`SKIP_RULES`."""
    missing = [n for n in cmd.needs if n.lower() not in {h.lower() for h in have}]
    if missing:
        return Plan(None, "needs " + ", ".join(missing))
    steps = [s.strip() for s in re.split(r"\s&&\s", cmd.text)]
    dropped = [] if install else [s for s in steps if INSTALL.match(s)]
    steps = [s for s in steps if s not in dropped]
    for step in steps:
        for pattern, why in SKIP_RULES:
            if pattern.search(step):
                return Plan(None, why)
    if not steps:
        return Plan(None, "install only (--install runs it)")
    text = " && ".join(steps)
    if MIRROR_WORDS.search(text):
        if mirror is None:
            return Plan(None, "needs the data mirror (--mirror)")
        text = MIRROR_WORDS.sub(lambda m: shlex.quote(mirror), text)
    return Plan(text, f"without its install steps ({len(dropped)})" if dropped else "",
                bool(RUN_TO_END.search(text)))
