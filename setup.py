"""Builds the C extension bareosdir._bareosdir from csrc/.

Warnings are errors when BAREOSDIR_WERROR=1 (CI); BAREOSDIR_SANITIZE=1 adds
ASan+UBSan (run with PYTHONMALLOC=malloc and the runtime preloaded);
BAREOSDIR_TEST_LEAK=1 makes the leaking test build of tools/test-valgrind.sh.
"""
import os
import re

from setuptools import Extension, setup

cflags = ["-std=c11", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-fvisibility=hidden"]
ldflags = []
if os.environ.get("BAREOSDIR_WERROR") == "1":
    cflags.append("-Werror")
if os.environ.get("BAREOSDIR_SANITIZE") == "1":
    cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    ldflags += ["-fsanitize=address,undefined"]
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
                "csrc/director_abi.h",
                "csrc/options.h",
                "csrc/director_model.h",
            ],
            include_dirs=["csrc"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
)
