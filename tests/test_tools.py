"""tools/test_summary.py: the closing summary of tools/test.sh."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = ROOT / "tools" / "test_summary.py"


def summarize(tmp_path, stages):
    """stages: [(name, exit status, output)] -> (exit status, printed text)"""
    for n, (name, rc, out) in enumerate(stages, 1):
        (tmp_path / f"{n}.log").write_text(out)
        (tmp_path / f"{n}.status").write_text(f"{name}\t{rc}\t{n}\n")
    r = subprocess.run([sys.executable, str(SUMMARY), str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


CTEST_OK = "100% tests passed, 0 tests failed out of 3\n"
PYTEST_SKIP = ("SKIPPED [1] tests/test_x.py:12: no frobnicator here\n"
               "10 passed, 1 skipped in 1.23s\n")


def test_counts_and_skip_reasons(tmp_path):
    rc, out = summarize(tmp_path, [("C tests", 0, CTEST_OK),
                                   ("pytest", 0, PYTEST_SKIP),
                                   ("tools/test-x.sh", 0, "all fine\n")])
    assert rc == 0
    lines = out.splitlines()
    assert any("C tests" in l and "3 passed,   0 failed,   0 skipped" in l for l in lines)
    assert any("pytest" in l and "10 passed,   0 failed,   1 skipped" in l for l in lines)
    # A stage that reports no counts is one check, judged by its exit status.
    assert any("tools/test-x.sh" in l and "1 passed" in l for l in lines)
    assert "  pytest: tests/test_x.py:12: no frobnicator here" in lines
    assert lines[-1] == "stages: 3 passed, 0 failed"


def test_a_failed_stage_fails_the_run_and_the_others_are_still_reported(tmp_path):
    rc, out = summarize(tmp_path, [
        ("C tests", 8, "67% tests passed, 1 tests failed out of 3\n"),
        ("pytest", 1, "=== 2 failed, 8 passed, 1 error in 3.00s ===\n"),
        ("tools/test-y.sh", 0, "counts: 5 passed, 0 failed, 2 skipped\n"),
        ("tools/test-z.sh", 1, "boom\n")])
    assert rc == 1
    lines = out.splitlines()
    assert any("C tests" in l and "FAILED" in l and "2 passed,   1 failed" in l for l in lines)
    assert any("pytest" in l and "FAILED" in l and "8 passed,   3 failed" in l for l in lines)
    assert any("tools/test-y.sh" in l and " ok " in l and "5 passed,   0 failed,   2 skipped" in l
               for l in lines)
    assert any("tools/test-z.sh" in l and "FAILED" in l and "exit status 1" in l for l in lines)
    assert lines[-1] == "stages: 1 passed, 3 failed"


def test_failed_tests_fail_a_stage_even_with_exit_status_0(tmp_path):
    rc, out = summarize(tmp_path, [("pytest", 0, "1 failed, 2 passed in 0.1s\n")])
    assert rc == 1
    assert out.splitlines()[-1] == "stages: 0 passed, 1 failed"


def test_ctest_skips_are_not_counted_as_passed(tmp_path):
    rc, out = summarize(tmp_path, [(
        "C tests", 0,
        "100% tests passed, 0 tests failed out of 3\n"
        "The following tests did not run:\n"
        "\t  2 - test_frob (Skipped)\n")])
    assert rc == 0
    assert "2 passed,   0 failed,   1 skipped" in out
    assert "  C tests: ctest test_frob (Skipped)" in out


def test_setup_pins_no_release_specific_package_or_python():
    """Debian 13 has no libclang-rt-14-dev, and CMake once asked for
    Python 3.11 EXACT: names and versions come from the machine."""
    import re
    setup = (ROOT / "tools" / "setup.sh").read_text()
    pkgs = " ".join(re.findall(r"pkgs\+?=\(([^)]*)\)", setup, re.S))
    assert pkgs.split(), "no package list found in tools/setup.sh"
    assert not re.search(r"\S+-\d+(\.\d+)*(-dev)?\b|python3\.\d+", pkgs), pkgs
    assert 'libclang-rt-$clang_major-dev' in setup
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"find_package\(Python3 3\.11 REQUIRED", cmake)
    assert "EXACT" not in cmake
