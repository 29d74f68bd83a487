"""The README's example test is real: it is extracted and run here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_example_test_passes(tmp_path):
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```python\n(# test_myplugin\.py.*?)```", text, re.S)
    assert m, "the README lost its example test"
    (tmp_path / "test_myplugin.py").write_text(m.group(1))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(tmp_path / "test_myplugin.py")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed" in r.stdout
    # Run above from another directory with the venv's Python by its path,
    # which is what the README tells for running it from anywhere.
    assert Path(sys.executable).parent.name == "bin"
    assert "From anywhere else, name the checkout's venv and the file by their" \
        in " ".join(text.split())


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1:lines.index("```sh") + 3]
    assert block[0].startswith("bash tools/demo.sh")
    assert block[1].startswith("bash tools/test.sh")
    assert "tools/test.sh" in (ROOT / ".ci" / "run").read_text()
