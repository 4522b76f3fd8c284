"""mnn-data fetch: copies from a mirror (what CI does), hash checks, atomic folders, --list, and the
one-line errors of a download that cannot be made. No test touches the network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mnn_edge.cli_util import run_cli
from mnn_edge.data import fetch
from mnn_edge.data.cli import main
from mnn_edge.data.fetch import Source, SourceFile, Tree, tree_digest, tree_listing


def _write(path: Path, data: bytes) -> SourceFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return SourceFile(path.name, hashlib.sha256(data).hexdigest(), len(data), url=path.as_uri())


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A tiny mirror laid out like ../shared: a two-file model and a tree-pinned frame folder."""
    root = tmp_path / "mirror"
    model = (_write(root / "models/toy/toy.onnx", b"weights"), _write(root / "models/toy/LICENSE", b"MIT"))
    (root / "models/toy/README.md").write_text("the mirror's own notes: not copied")
    for sub, name in (("train", "a.jpg"), ("train", "keypoints.csv"), ("unlabelled", "b.jpg")):
        _write(root / "data/frames" / sub / name, f"{sub}/{name}".encode())
    rows = tree_listing(root / "data/frames", ("train", "unlabelled"))
    tree = Tree(("train", "unlabelled"), len(rows), sum(r[2] for r in rows), tree_digest(rows))
    monkeypatch.setattr(fetch, "SOURCES", {
        "toy": Source("toy", "a test model", "models/teachers/toy", "models/toy", "nowhere", "MIT", files=model),
        "frames": Source("frames", "test frames", "data/real/frames", "data/frames", "nowhere", "research only",
                         tree=tree, manual="ask the authors for the frames")})
    return root


def _cli(argv: list[str]) -> int:
    return run_cli(main, argv)


def _leftovers(folder: Path) -> list[str]:
    """Temporary folders/files or locks a fetch left behind."""
    return [p.name for p in folder.rglob(".*") if p.name.endswith((".part", ".lock"))] if folder.exists() else []


def test_fetch_all_from_a_mirror_lands_the_pinned_files_only(mirror, tmp_path, capsys):
    root = tmp_path / "repo"
    assert _cli(["fetch", "all", "--from", str(mirror), "--root", str(root)]) == 0
    assert sorted(p.name for p in (root / "models/teachers/toy").iterdir()) == ["LICENSE", "toy.onnx"]
    assert (root / "data/real/frames/train/keypoints.csv").read_bytes() == b"train/keypoints.csv"
    assert (root / "data/real/frames/unlabelled/b.jpg").is_file()
    assert "sha256 checked" in capsys.readouterr().out
    assert _leftovers(root) == []
    # a second run keeps what is there
    assert _cli(["fetch", "toy", "--from", str(mirror), "--root", str(root)]) == 0
    assert "already in" in capsys.readouterr().out


def test_fetch_one_name_from_its_own_folder(mirror, tmp_path):
    root = tmp_path / "repo"
    assert _cli(["fetch", "toy", "--from", str(mirror / "models/toy"), "--root", str(root)]) == 0
    assert (root / "models/teachers/toy/toy.onnx").read_bytes() == b"weights"
    assert not (root / "data").exists()


@pytest.mark.parametrize("name, corrupt", [("toy", "models/toy/toy.onnx"), ("frames", "data/frames/train/a.jpg")])
def test_a_wrong_hash_is_one_line_and_leaves_nothing(mirror, tmp_path, capsys, name, corrupt):
    (mirror / corrupt).write_bytes(b"tampered")
    root = tmp_path / "repo"
    assert _cli(["fetch", name, "--from", str(mirror), "--root", str(root)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "sha256" in err and "nothing was written" in err
    assert not root.exists()  # not even the empty parent folders


def test_a_missing_file_is_refused(mirror, tmp_path, capsys):
    (mirror / "models/toy/LICENSE").unlink()
    assert _cli(["fetch", "toy", "--from", str(mirror), "--root", str(tmp_path / "repo")]) == 1
    assert "LICENSE is missing" in capsys.readouterr().err
    assert not (tmp_path / "repo/models/teachers/toy").exists()


def test_a_different_destination_needs_force_and_is_replaced_whole(mirror, tmp_path, capsys):
    root = tmp_path / "repo"
    dest = root / "models/teachers/toy"
    dest.mkdir(parents=True)
    (dest / "toy.onnx").write_bytes(b"old")
    assert _cli(["fetch", "toy", "--from", str(mirror), "--root", str(root)]) == 1
    assert "--force" in capsys.readouterr().err and (dest / "toy.onnx").read_bytes() == b"old"
    assert _cli(["fetch", "toy", "--from", str(mirror), "--root", str(root), "--force"]) == 0
    assert (dest / "toy.onnx").read_bytes() == b"weights" and _leftovers(root) == []


def test_download_checks_hashes_and_says_why_it_cannot(mirror, tmp_path, capsys):
    # file:// URLs run the download code without a network
    root = tmp_path / "repo"
    assert _cli(["fetch", "toy", "--root", str(root)]) == 0
    assert (root / "models/teachers/toy/toy.onnx").read_bytes() == b"weights"
    (mirror / "models/toy/toy.onnx").unlink()
    assert _cli(["fetch", "toy", "--root", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot download" in err and "--from DIR" in err
    assert not (tmp_path / "other").exists()


def test_a_by_hand_source_says_how_and_fails(mirror, tmp_path, capsys):
    assert _cli(["fetch", "frames", "--root", str(tmp_path / "repo")]) == 1
    out, err = capsys.readouterr()
    assert "ask the authors" in out and "by hand" in err and "--from DIR" in err
    assert not (tmp_path / "repo").exists()  # nothing created, not even an empty folder


def test_list_shows_every_source_and_whether_it_is_present(mirror, tmp_path, capsys):
    root = tmp_path / "repo"
    assert _cli(["fetch", "toy", "--from", str(mirror), "--root", str(root)]) == 0
    capsys.readouterr()
    assert _cli(["fetch", "--list", "--root", str(root)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"toy", "frames"}
    assert "models/teachers/toy/" in rows["toy"] and " yes " in rows["toy"] and "MIT" in rows["toy"]
    assert " no " in rows["frames"] and "by hand" in rows["frames"]


def test_unknown_name_and_no_name_are_one_line(mirror, capsys):
    assert _cli(["fetch", "nope"]) == 1
    assert "unknown source nope" in capsys.readouterr().err
    assert _cli(["fetch"]) == 1
    assert "toy, frames or all" in capsys.readouterr().err


def test_real_mirror_matches_every_pinned_hash(shared_mirror, tmp_path, capsys):
    """The table's hashes are those of the development mirror: fetch all of it, as .ci/run does."""
    assert _cli(["fetch", "all", "--from", str(shared_mirror), "--root", str(tmp_path)]) == 0
    for source in fetch.SOURCES.values():
        fetch.verify(source, tmp_path / source.dest, "the fetched copy")
        assert fetch.presence(source, tmp_path / source.dest) == "yes"
    assert _leftovers(tmp_path) == []


def test_real_table_is_complete():
    for source in fetch.SOURCES.values():
        assert source.licence and source.origin and source.dest.startswith(("data/", "models/"))
        assert source.files or source.tree
        assert fetch.can_download(source) or source.manual  # every entry says how to get it


def test_ci_runs_the_readme_test_command_and_it_fetches_before_testing():
    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    ci = (repo / ".ci/run").read_text().splitlines()
    command = next(line for line in ci if "pytest" in line)
    assert f"```bash\n{command}\n```" in readme
    assert command.index("mnn-data fetch all --from ../shared") < command.index("pytest")


def test_a_missing_fetch_destination_says_what_to_run(tmp_path, monkeypatch):
    from mnn_edge.data.readers import DataSource
    from mnn_edge.data.teacher.fsanet import load_teacher
    from mnn_edge.errors import MnnEdgeError

    monkeypatch.chdir(tmp_path)  # a fresh clone: nothing fetched
    with pytest.raises(MnnEdgeError, match="get it with: mnn-data fetch ytf-keypoints"):
        DataSource(Path("data/real/ytf_keypoints/train"), "keypoints-csv").read()
    with pytest.raises(MnnEdgeError, match="get it with: mnn-data fetch fsanet"):
        load_teacher("models/teachers/fsanet")
    assert fetch.fetch_hint("elsewhere/train") == ""
