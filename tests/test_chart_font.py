"""Chart glyphs: every character shadow-report's charts draw is in the font it is drawn with, also where matplotlib
is not installed (``pip install shadow-constructs[report]`` brings DuckDB and Pillow only).

A character the font lacks is drawn as the font's ``.notdef`` glyph (a box), the same glyph as a codepoint no font
here has (U+E000, U+10FFFD): that is how a missing glyph is told from a present one, with Pillow alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from capture_fixtures import write_reference_capture
from installed import installed_package

# Run as a script by the Python under test: draws the three charts with shadow-report on the capture folder argv[1],
# records every text drawn and the font it is drawn with, and prints which characters the font lacks.
PROBE = r'''
import importlib.util
import json
import sys

if "--hide-matplotlib" in sys.argv:
    sys.modules["matplotlib"] = None  # neither importable nor found by importlib.util.find_spec
absent = importlib.util.find_spec("matplotlib") is None

from PIL import ImageDraw

drawn = []  # (text, font); appended from the threads the charts are drawn on
original = ImageDraw.ImageDraw.text


def text(self, xy, text, *args, **kwargs):
    font = kwargs.get("font") or (args[1] if len(args) > 1 else None) or self.getfont()
    drawn.append((text, font))
    return original(self, xy, text, *args, **kwargs)


ImageDraw.ImageDraw.text = text

from shadow_report import cli

status = cli.main([sys.argv[1], "--out", sys.argv[2], "--no-progress"])


def glyph(font, character):
    mask = font.getmask(character)
    return mask.size, bytes(mask), font.getbbox(character)


fonts, missing, characters = set(), set(), set()
for text, font in drawn:
    notdef = glyph(font, "\U0010fffd")
    assert glyph(font, "\ue000") == notdef and any(notdef[1]), "the probe codepoints must draw the font's .notdef box"
    fonts.add(" ".join(font.getname()) if hasattr(font, "getname") else type(font).__name__)
    for character in text:
        characters.add(character)
        if glyph(font, character) == notdef:
            missing.add(character)
print(json.dumps({"status": status, "matplotlib_absent": absent, "texts": sorted({t for t, _ in drawn}),
                  "fonts": sorted(fonts), "characters": "".join(sorted(characters)), "missing": sorted(missing)}))
'''


def draw_charts(python: Path | str, base: Path, *extra: str, run=None) -> dict:
    """Draw the reference capture's charts with ``python``; the probe's findings."""
    capture = write_reference_capture(base / "capture")
    (base / "probe.py").write_text(PROBE)
    args = [str(python), str(base / "probe.py"), str(capture), str(base / "out"), *extra]
    done = run(args, base) if run else subprocess.run(args, cwd=base, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def check_every_character_has_its_glyph(found: dict) -> None:
    assert found["status"] == 0 and found["matplotlib_absent"]
    # the three charts' titles, the minus of the differences axis label and of negative ticks
    assert len([t for t in found["texts"] if t.startswith("churn: ")]) == 3, found["texts"]
    assert "\u2212" in found["characters"] and any(t.startswith("\u2212") for t in found["texts"]), found["texts"]
    assert found["missing"] == [], (
        f"drawn as boxes with {found['fonts']}: {', '.join(f'U+{ord(c):04X} {c!r}' for c in found['missing'])}")


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    return installed_package(tmp_path_factory)


@pytest.mark.outer  # the wheel in a fresh venv
def test_the_installed_report_extra_draws_every_character_of_its_charts(installed, tmp_path):
    # GIVEN shadow-constructs[report] installed from the wheel, without matplotlib
    # WHEN shadow-report draws its three charts
    found = draw_charts(installed.python, tmp_path, run=installed.run)
    # THEN the font in use has every character drawn: no minus sign, title or tick label drawn as a box
    check_every_character_has_its_glyph(found)


def test_the_charts_need_no_matplotlib_for_their_glyphs(tmp_path):
    # The same in this checkout with matplotlib hidden: quick, and it runs where the installed venv is not built.
    found = draw_charts(sys.executable, tmp_path, "--hide-matplotlib")
    check_every_character_has_its_glyph(found)
    assert found["fonts"] == ["DejaVu Sans Book"]


@pytest.mark.outer  # the wheel
def test_the_wheel_ships_the_font_with_its_licence(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {"shadow_report/fonts/DejaVuSans-subset.ttf", "shadow_report/fonts/LICENSE"} <= names
