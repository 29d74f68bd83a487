"""Copies the bareosdir package into a plugin directory and builds its
extension there (used by CMake; the interpreter running this script is the
one the extension is built for)."""
import os
import shutil
import subprocess
import sys

src_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
stage, build_temp = sys.argv[1], sys.argv[2]
dest = os.path.join(stage, "bareosdir")
shutil.rmtree(dest, ignore_errors=True)
shutil.copytree(os.path.join(src_root, "bareosdir"), dest,
                ignore=shutil.ignore_patterns("*.so", "__pycache__"))
subprocess.run([sys.executable, "setup.py", "-q", "build_ext",
                "--build-temp", build_temp, "--build-lib", stage],
               cwd=src_root, check=True)
