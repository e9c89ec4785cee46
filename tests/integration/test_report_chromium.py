"""The report in a real browser: headless Chromium (Debian's `chromium`) loads it and every image must decode.

A copy of index.html with a small checking script is put beside the original (so relative image paths resolve);
Chromium runs it and prints the DOM, where the script wrote how many images loaded. The report itself has no script.
Skipped when Chromium is not installed: `apt-get install -y chromium`.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_report_render import fake_run  # noqa: E402

from pipelines.evaluation.report import FIGURES, render  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install -y chromium)"
)

CHECK = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute("src"); });
  var out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify({total: images.length, broken: broken,
                                    loaded: images.filter(function (i) { return i.naturalWidth > 0; }).length});
  document.body.appendChild(out);
});
</script>"""


def images_in_browser(index: Path, tmp_path: Path) -> dict:
    """{"total", "loaded", "broken": [src, ...]} as headless Chromium saw the page at `index`."""
    harness = index.with_name("_browser_check.html")
    harness.write_text(index.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        harness.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    harness.unlink()
    match = re.search(r'<pre id="image-check">(.*?)</pre>', result.stdout, re.S)
    assert match, f"Chromium printed no check (exit {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_every_image_of_the_report_loads_in_chromium(tmp_path):
    index = render(fake_run(with_tf=True), tmp_path / "report")
    seen = images_in_browser(index, tmp_path)
    assert seen == {"total": len(FIGURES), "loaded": len(FIGURES), "broken": []}


def test_the_check_sees_a_missing_image(tmp_path):
    index = render(fake_run(), tmp_path / "report")
    (tmp_path / "report" / "figures" / "lead_time.png").unlink()
    (tmp_path / "report" / "figures" / "roc.png").write_bytes(b"not a png")
    seen = images_in_browser(index, tmp_path)
    assert seen["total"] == len(FIGURES) and seen["loaded"] == len(FIGURES) - 2
    assert sorted(seen["broken"]) == ["figures/lead_time.png", "figures/roc.png"]
