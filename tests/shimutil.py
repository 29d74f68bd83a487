"""Helpers for end-to-end tests: the real shim, installed with
`cmake --install` into a private prefix, loaded by bareosdir-sim."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BAREOSDIR_BUILD", ROOT / "build"))

LINE = re.compile(r"^(?P<dir>\S+) JobId (?P<jobid>\d+): (?P<text>.*)$")


def install(prefix: Path) -> Path:
    """Installs the build into prefix; returns its Plugin Directory."""
    if not (BUILD / "bareosdir-sim").exists():
        raise RuntimeError(f"no build in {BUILD}: run tools/setup.sh")
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)],
                   check=True, capture_output=True, timeout=300)
    return prefix / "lib" / "bareos" / "plugins"


@dataclass
class SimResult:
    returncode: int
    stdout: str
    stderr: str

    def job_lines(self, jobid: int | None = None) -> list[tuple[int, str]]:
        out = []
        for line in self.stdout.splitlines():
            m = LINE.match(line)
            if m and (jobid is None or int(m["jobid"]) == jobid):
                out.append((int(m["jobid"]), m["text"]))
        return out

    @property
    def all_output(self) -> str:
        return self.stdout + self.stderr


class Site:
    """A Director configuration around an installed plugin directory."""

    def __init__(self, root: Path, plugin_dir: Path) -> None:
        self.root = root
        self.plugin_dir = plugin_dir
        self.module_path = root / "modules"
        self.module_path.mkdir(exist_ok=True)

    def write_plugin(self, name: str, source: str) -> str:
        (self.module_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    def config(self, options: list[str], plugin_names: str | None = '"python"',
               name: str = "conf") -> Path:
        d = self.root / name
        d.mkdir(exist_ok=True)
        names = f"  Plugin Names = {plugin_names}\n" if plugin_names else ""
        opts = "".join(f'  Dir Plugin Options = "{o}"\n' for o in options)
        (d / "bareos-dir.conf").write_text(
            "Director {\n  Name = bareos-dir\n  Password = x\n"
            f"  Plugin Directory = {self.plugin_dir}\n{names}}}\n"
            "Job {\n  Name = BackupClient1\n  Type = Backup\n  Level = Full\n"
            f"  Client = client1-fd\n  Pool = Full\n  Storage = File\n{opts}}}\n")
        return d

    def run(self, config: Path, *args: str, env: dict | None = None,
            timeout: float = 300, cwd: Path | None = None) -> SimResult:
        e = dict(os.environ)
        e.pop("PYTHONPATH", None)
        e.update(env or {})
        r = subprocess.run([str(BUILD / "bareosdir-sim"), "-c", str(config),
                            "-j", "BackupClient1", *args],
                           capture_output=True, text=True, timeout=timeout,
                           env=e, cwd=cwd)
        return SimResult(r.returncode, r.stdout, r.stderr)


def copy_prefix(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst / "lib" / "bareos" / "plugins"
