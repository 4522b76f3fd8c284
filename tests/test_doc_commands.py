"""The doc-command check's parsing and skip rule (mnn_edge/doc_commands.py, run by
tools/check_doc_commands.py): fast, nothing is run."""

from __future__ import annotations

from pathlib import Path

from mnn_edge.doc_commands import DocCommand, commands, plan, split_comment

ROOT = Path(__file__).resolve().parents[1]

DOC = """# Title

```bash
mnn-info                 # a comment
# a comment line
mnn-data profile --data a \\
    --mesh b \\
    --out c   # long; needs: GPU, camera
```

```text
mnn-eval --data DIR [--limit N]
```

```toml
x = 1  # not a command
```

```bash
grep '#not a comment' x.txt
```
"""


def test_bash_blocks_only_in_order_with_line_numbers():
    found = commands("doc.md", DOC)
    assert [c.text for c in found] == ["mnn-info", "mnn-data profile --data a --mesh b --out c",
                                       "grep '#not a comment' x.txt"]
    assert [c.line for c in found] == [4, 6, 20]
    assert found[1].where == "doc.md:6"


def test_markers_come_from_any_line_of_a_continued_command():
    found = commands("doc.md", DOC)
    assert found[0].needs == () and found[1].needs == ("GPU", "camera")
    two = commands("d", "```sh\na  # needs: x \\\n  b\n```\n")
    assert [(c.line, c.text) for c in two] == [(2, "a"), (3, "b")]  # a backslash in a comment continues nothing


def test_comments_start_at_a_word_outside_quotes():
    assert split_comment("echo a#b # c") == ("echo a#b", "c")
    assert split_comment('echo "# x" # y') == ('echo "# x"', "y")
    assert split_comment("# only") == ("", "only")


def cmd(text: str, needs: tuple[str, ...] = ()) -> DocCommand:
    return DocCommand("README.md", 1, text, needs)


def test_needs_skip_unless_had():
    assert plan(cmd("mnn-run --camera 0", ("camera",))).run is None
    assert plan(cmd("mnn-run --camera 0", ("camera",))).why == "needs camera"
    assert plan(cmd("mnn-run --camera 0", ("camera",)), have=frozenset({"Camera"})).run == "mnn-run --camera 0"


def test_install_steps_dropped_and_the_test_suite_skipped():
    p = plan(cmd("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2 && pip install -e '.[dev]' "
                 "&& mnn-export --out export"))
    assert p.run == "mnn-export --out export" and "install" in p.why
    assert plan(cmd("python3 -m venv .venv && mnn-info"), install=True).run == "python3 -m venv .venv && mnn-info"
    assert plan(cmd("pip install x")).run is None
    tests = plan(cmd("pip install y && mnn-data fetch all --from ../shared && python -m pytest -m 'not gpu' -q"))
    assert tests.run is None and ".ci/run" in tests.why


def test_mirror_words_stand_for_the_mirror():
    assert plan(cmd("mnn-data fetch all --from MIRROR"), mirror="/m m").run == "mnn-data fetch all --from '/m m'"
    assert plan(cmd("mnn-data fetch x --from ../shared/"), mirror="/m").run == "mnn-data fetch x --from /m/"
    assert plan(cmd("mnn-data fetch all --from MIRROR")).run is None
    assert plan(cmd("echo MIRRORS a/../shared"), mirror="/m").run == "echo MIRRORS a/../shared"


def test_readme_setup_commands_plan_as_ci_runs_them():
    """README's install command runs its mnn-export (installing is the venv's business); its test command
    is .ci/run's."""
    found = commands("README.md", (ROOT / "README.md").read_text())
    install, tests = found[0], found[1]
    assert plan(install).run.startswith("mnn-export ")
    assert "pytest" in tests.text and plan(tests).run is None


def test_complete_or_absent_tools_run_to_the_end():
    assert plan(cmd("pip install x && mnn-export --out export")).to_end
    assert plan(cmd("mnn-data pseudo-label --out l.jsonl")).to_end
    assert not plan(cmd("mnn-data synth --out s")).to_end and not plan(cmd("mnn-train --config c")).to_end
