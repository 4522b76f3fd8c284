#!/usr/bin/env python3
"""Run every command of the docs a user follows in order (README.md, then docs/TRAINING.md) on a fresh
clone of this repository, as CI could: `git clone` into a temporary folder (so only committed files,
and nothing beside it), `mnn-data fetch all --from MIRROR` when --mirror is given, then each command
of the ```bash blocks from the clone's root in the Python environment this script runs in (nothing
is pip-installed; --install runs the README's install steps instead; the clone's code comes first
on PYTHONPATH). A command still running at --budget seconds gets Ctrl-C (SIGINT): the tools save
what they have and exit 130, which counts as started and stopped cleanly (mnn-export and
mnn-data pseudo-label, whose complete-or-absent outputs later commands read, get --finish-budget). Commands marked
`# needs: WHAT` in the docs (a camera, a GPU, TensorRT, a download, a running server) are skipped
with that reason unless --have names WHAT; the test-suite command is CI's (.ci/run). Exits 1 when
any command fails; --out writes the table as Markdown."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mnn_edge.doc_commands import DocCommand, plan  # noqa: E402
from mnn_edge.doc_commands import commands as doc_commands  # noqa: E402

DOCS = ("README.md", "docs/TRAINING.md")
INTERRUPTED = 130  # mnn_edge.cli_util.EXIT_INTERRUPTED


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mirror", type=Path, help="folder laid out like the data mirror (e.g. ../shared)")
    p.add_argument("--budget", type=float, default=120.0, help="seconds per command before Ctrl-C (120)")
    p.add_argument("--finish-budget", type=float, default=900.0,
                   help="seconds for commands let run to the end (mnn-export, pseudo-label: others read their output)")
    p.add_argument("--grace", type=float, default=60.0, help="seconds a stopped command may take to exit (60)")
    p.add_argument("--docs", nargs="+", default=list(DOCS), help=f"docs, in order (default: {' '.join(DOCS)})")
    p.add_argument("--have", default="", help="comma-separated needs this machine meets (e.g. camera,GPU)")
    p.add_argument("--install", action="store_true", help="run the install steps too (venv, pip: network)")
    p.add_argument("--out", type=Path, help="also write the results as a Markdown table here")
    p.add_argument("--keep", action="store_true", help="keep the clone and the command logs")
    return p.parse_args(argv)


def run_one(text: str, cwd: Path, env: dict[str, str], log: Path, budget: float, grace: float) -> tuple[str, float]:
    """('ok' | 'stopped' | 'FAILED: ...', seconds) for one command run by bash in ``cwd``."""
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", "-c", text], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=budget)
            stopped = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            stopped = True
            try:
                rc = proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return f"FAILED: still running {grace:.0f} s after Ctrl-C", time.monotonic() - t0
    took = time.monotonic() - t0
    if stopped and rc in (0, INTERRUPTED):  # a server (mnn-serve) ends a Ctrl-C'd run with 0
        return "stopped at budget cleanly", took
    if rc == 0:
        return "ok", took
    return f"FAILED: exit {rc}" + (" after Ctrl-C" if stopped else ""), took


def tail(log: Path, n: int = 6) -> list[str]:
    lines = [seg.strip() for line in log.read_text(errors="replace").splitlines() for seg in line.split("\r")]
    return [line for line in lines if line][-n:]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A shell starts a background job ('cmd &') with Ctrl-C ignored, children inherit that, and Python
    # then installs no KeyboardInterrupt: the budget's Ctrl-C would do nothing. Handled here, it is
    # reset to the default in every command started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    have = frozenset(h.strip() for h in args.have.split(",") if h.strip())
    mirror = str(args.mirror.resolve()) if args.mirror else None
    work = Path(tempfile.mkdtemp(prefix="doc-commands-"))
    clone, logs = work / "clone", work / "logs"
    logs.mkdir()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(clone), VIRTUAL_ENV=sys.prefix)
    todo: list[DocCommand] = []
    if mirror:
        todo.append(DocCommand("(setup)", 0, "mnn-data fetch all --from MIRROR"))
    for doc in args.docs:
        todo += doc_commands(doc, (clone / doc).read_text())
    rows: list[tuple[str, str, str, float]] = []
    t_all = time.monotonic()
    for i, cmd in enumerate(todo):
        p = plan(cmd, install=args.install, have=have, mirror=mirror)
        if p.run is None:
            result, took = f"skipped ({p.why})", 0.0
        else:
            print(f"[{i + 1}/{len(todo)}] {cmd.where}: {p.run}", flush=True)
            log = logs / f"{i:02d}.log"
            budget = args.finish_budget if p.to_end else args.budget
            result, took = run_one(p.run, clone, env, log, budget, args.grace)
            if result.startswith("FAILED"):
                print("    " + "\n    ".join(tail(log)), flush=True)
                result += ": " + " / ".join(tail(log, 2))
            elif p.why:
                result += f" ({p.why})"
        print(f"    -> {result} [{took:.0f} s]", flush=True)
        rows.append((cmd.where, cmd.text, result, took))
    total = time.monotonic() - t_all
    failed = sum(r[2].startswith("FAILED") for r in rows)
    print(f"\n{'where':<22} {'s':>4}  {'result':<40} command")
    for where, text, result, took in rows:
        print(f"{where:<22} {took:4.0f}  {result.split(':')[0][:40]:<40} {text[:80]}")
    print(f"\n{len(rows)} commands, {failed} failed, {total / 60:.1f} min (budget {args.budget:.0f} s each)")
    if args.out:
        md = [f"# Doc commands on a fresh clone ({', '.join(args.docs)})", "",
              f"Budget {args.budget:.0f} s per command, mirror: {args.mirror or 'none'}; "
              f"{len(rows)} commands, {failed} failed, {total / 60:.1f} min.", "",
              "| where | command | result | s |", "| --- | --- | --- | --- |"]
        md += [f"| {w} | `{t.replace('|', '&#124;')}` | {r.replace('|', '&#124;')} | {s:.0f} |" for w, t, r, s in rows]
        args.out.write_text("\n".join(md) + "\n")
    if args.keep or failed:
        print(f"clone and logs kept in {work}")
    else:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
