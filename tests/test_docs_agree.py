"""The shipped starter's headline numbers are said once in its card and repeated alike elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "mnn_edge/assets/mnn_starter.md"


def headline() -> dict[str, float]:
    """The card's second paragraph: true-labelled mean, teacher agreement, landmark NME, and its round."""
    text = CARD.read_text()
    found = {"aflw": re.search(r"mean\s+error is \*\*([\d.]+)°\*\*", text),
             "ytf": re.search(r"agrees with the\s+teacher to \*\*([\d.]+)°\*\*", text),
             "nme": re.search(r"NME of \*\*([\d.]+)%\*\*", text),
             "round": re.search(r"^# mnn_starter\.pt — the shipped starter checkpoint \(round (\d+)", text, re.M)}
    missing = [k for k, m in found.items() if m is None]
    assert not missing, f"the card's headline lost its {missing}: update this test with the card"
    return {k: float(m.group(1)) for k, m in found.items()}


def test_readme_table_repeats_the_cards_headline():
    h = headline()
    rows = {line.split("|")[1].strip(): line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("| real ")}
    aflw = next(v for k, v in rows.items() if "AFLW2000-3D" in k)
    ytf = next(v for k, v in rows.items() if "YTF" in k)
    assert f"**{h['aflw']:.2f}°**" in aflw
    assert f"**{h['ytf']:.2f}°**" in ytf and f"**{h['nme']:.1f}%**" in ytf


def test_training_guide_names_the_same_starter():
    h = headline()
    text = (ROOT / "docs/TRAINING.md").read_text()
    section = text[text.index("## The starter checkpoint"):]
    assert f"**round {h['round']:.0f}**" in section
    for key in ("aflw", "ytf"):
        assert f"**{h[key]:.2f}°**" in section
    assert f"**{h['nme']:.2f}%**" in section


def test_the_screenshot_is_said_to_show_the_shipped_round():
    h = headline()
    readme = (ROOT / "README.md").read_text()
    rounds = {int(r) for r in re.findall(r"starter checkpoint\*{0,2} \(round (\d+)\)", readme)}
    rounds |= {int(r) for r in re.findall(r"mnn_starter\.pt` round (\d+)", (ROOT / "docs/RUN.md").read_text())}
    assert rounds == {int(h["round"])}, f"README/RUN.md name round(s) {rounds}, the card round {h['round']:.0f}"
