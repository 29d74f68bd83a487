"""Builds the C extension bareosdir._bareosdir from csrc/.

Warnings are errors when BAREOSDIR_WERROR=1 (CI); BAREOSDIR_SANITIZE=1 adds
ASan+UBSan (run with PYTHONMALLOC=malloc and the runtime preloaded);
BAREOSDIR_TEST_LEAK=1 makes the leaking test build of tools/test-valgrind.sh.
"""
import os
import re
import shlex
import subprocess
import sysconfig
import tempfile

from setuptools import Extension, setup


def compiles(flags: list[str], source: str = "int main(void) { return 0; }\n") -> bool:
    """Whether the compiler setuptools will use accepts flags (warnings as
    errors, so an unknown warning option counts as refused)."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        try:
            r = subprocess.run(cc + flags + ["-Werror", "-c", src, "-o",
                                             os.path.join(d, "probe.o")],
                               capture_output=True, check=False)
        except OSError:
            return False
        return r.returncode == 0


def fortify_flags() -> list[str]:
    """The strongest _FORTIFY_SOURCE the toolchain supports (3 needs gcc 12
    or clang 9, and glibc 2.34), undefined first: Debian's Python build
    flags already set 2.  Same rule as CMakeLists.txt."""
    for level in (3, 2):
        flags = ["-O2", "-U_FORTIFY_SOURCE", f"-D_FORTIFY_SOURCE={level}"]
        probe = ("#include <stdio.h>\n"
                 "#if !defined(__USE_FORTIFY_LEVEL) || "
                 f"__USE_FORTIFY_LEVEL < {level}\n#error no\n#endif\n"
                 "int main(void) { return 0; }\n")
        if compiles(flags, probe):
            return flags[1:]
    return []


cflags = ["-std=c11", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-fvisibility=hidden"]
ldflags = []
if os.environ.get("BAREOSDIR_WERROR") == "1":
    cflags.append("-Werror")
if compiles(["-Wformat-truncation=2"]):
    cflags.append("-Wformat-truncation=2")
if os.environ.get("BAREOSDIR_SANITIZE") == "1":
    cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    ldflags += ["-fsanitize=address,undefined"]
elif "-O0" not in (sysconfig.get_config_var("CFLAGS") or "").split():
    # Python's own flags optimise (-O2): harden as the CMake build does.
    cflags += fortify_flags()
if os.environ.get("BAREOSDIR_TEST_LEAK") == "1":
    # A test build that leaks on purpose (tools/test-valgrind.sh).
    cflags.append("-DBAREOSDIR_TEST_LEAK")

# Version and license here rather than in pyproject.toml (see its comment).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bareosdir", "_version.py")) as f:
    version = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    version=version,
    license="AGPL-3.0-only",
    packages=["bareosdir", "bareosdir.plugins"],
    package_data={
        "bareosdir": ["py.typed", "*.pyi"],
        "bareosdir.plugins": ["*.py", "*.template", "*.pyi"],
    },
    ext_modules=[
        Extension(
            "bareosdir._bareosdir",
            sources=[
                "csrc/module.c",
                "csrc/engine.c",
                "csrc/interp.c",
                "csrc/errors.c",
                "csrc/testing.c",
                "csrc/options.c",
                "csrc/director_model.c",
            ],
            depends=[
                "csrc/bareosdir.h",
                "csrc/binding.h",
                "csrc/director_abi.h",
                "csrc/options.h",
                "csrc/director_model.h",
                "csrc/pyexc.h",
                "csrc/textfmt.h",
            ],
            include_dirs=["csrc"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
)
