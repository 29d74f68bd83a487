"""Runs bareosdir-sim under valgrind memcheck for tools/test-valgrind.sh.

JOBS jobs (BAREOSDIR_VALGRIND_JOBS, default 200; 4 at once, two plugin
instances each) in each interpreter mode, through the real shim installed
with `cmake --install` from BAREOSDIR_BUILD.  Fails on

- an invalid read, write or free with one of our frames on its stack, or a
  use of an uninitialised value where one of our frames uses it;
- a definite leak that our code allocated.

Who allocated a leaked block is judged from its allocation stack, read from
the allocator upwards: the first frame that is ours (shim, extension,
simulator) makes it ours, even when CPython functions that only build an
object (PyUnicode_FromFormat, PyDict_New, ...) lie between; the first frame
where CPython runs code on its own account (the eval loop, import, marshal,
interpreter start-up, interning) makes it CPython's.  Interned strings,
which Python 3.12+ makes immortal and no longer frees at Py_FinalizeEx, are
suppressed by tools/valgrind-cpython.supp.  The output says what was counted
as ours and what was left to CPython (suppressed, or allocated under its own
code, by deciding frame).

--expect-leaks, the self-test: run against the test build
(-DBAREOSDIR_TEST_LEAK=ON, which leaks one str and one malloc'ed block per
loaded plugin instance) and succeed only if the check fails because it found
both leaks, at least once per instance, in every mode.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BAREOSDIR_BUILD", ROOT / "build"))
JOBS = int(os.environ.get("BAREOSDIR_VALGRIND_JOBS", "200"))
SUPP = ROOT / "tools" / "valgrind-cpython.supp"
OURS = re.compile(r"\((?:python-dir|module|engine|interp|errors|testing|options|"
                  r"director_model|bareosdir-sim|config)\.c:\d+\)")
FRAME = re.compile(r"(?:at|by) 0x[0-9A-Fa-f]+: (\S+)")
ALLOCATOR = {"malloc", "calloc", "realloc", "memalign", "posix_memalign",
             "aligned_alloc", "reallocarray"}
# CPython running code on its own account: what it allocates there is its.
CPYTHON_OWN = re.compile(
    r"^(?:_PyEval_EvalFrameDefault|_PyEval_Vector|PyEval_EvalCode\w*|"
    r"_?PyImport_\w+|PyMarshal_\w+|Py_Initialize\w*|_Py_InitializeMain|"
    r"Py_NewInterpreter\w*|_Py_NewInterpreter\w*|Py_RunMain|_?PyRun_\w+|"
    r"_?PyUnicode_Intern\w*|_PyStaticType_InitBuiltin|_PyTypes_InitTypes)$")
LOST = re.compile(r"([\d,]+)(?: \([\d,]+ direct, [\d,]+ indirect\))? bytes in "
                  r"([\d,]+) blocks are definitely lost")
USED_SUPP = re.compile(r"used_suppression:\s+(\d+) (\S+) \S+ suppressed: "
                       r"([\d,]+) bytes in ([\d,]+) blocks")

PLUGIN = """
import bareosdir
def load_bareos_plugin(d):
    bareosdir.RegisterEvents([1, 2, 3, 4])
    return 0
def parse_plugin_definition(d): return 0
def handle_plugin_event(e):
    if e == 2:
        bareosdir.JobMessage(bareosdir.M_INFO, "job %d done" % bareosdir.GetValue(bareosdir.bDirVarJobId))
    return 0
"""


def num(text):
    return int(text.replace(",", ""))


def who_allocated(record):
    """("ours" | "cpython", deciding frame) for a definite-leak record."""
    frames = FRAME.findall(record)
    lines = [l for l in record.splitlines() if FRAME.search(l)]
    for name, line in zip(frames, lines):
        if OURS.search(line):
            return "ours", line.split(": ", 1)[1].strip()
        if name in ALLOCATOR:
            continue
        if CPYTHON_OWN.match(name):
            return "cpython", name
    # Only CPython's object-building frames and the thread start: ours if
    # any frame of ours is there at all (we cannot tell better), else not.
    if any(OURS.search(l) for l in lines):
        return "ours", "(no deciding frame)"
    return "cpython", "(no frame of ours)"


def check(log, mode):
    """Parses one valgrind log; returns (our leak records, our error records,
    report lines)."""
    text = log.read_text()
    records = re.split(r"\n==\d+== *\n", text)
    ours_leaks, cpython = [], collections.Counter()
    cpython_blocks = cpython_bytes = 0
    ours_blocks = 0
    for b in records:
        m = LOST.search(b)
        if not m:
            continue
        who, frame = who_allocated(b)
        if who == "ours":
            ours_leaks.append(b)
            ours_blocks += num(m[2])
        else:
            cpython[frame] += 1
            cpython_bytes += num(m[1])
            cpython_blocks += num(m[2])
    # Invalid accesses count when our code is anywhere on the stack; uses of
    # uninitialised values only when our code is where the value is used
    # (CPython has known ones of its own, e.g. in _PyLong_FromByteArray over
    # getrandom() data).
    ours_errors = []
    for b in records:
        if re.search(r"Invalid (read|write|free)|Mismatched free", b) and OURS.search(b):
            ours_errors.append(b)
        elif "uninitialised" in b:
            at = [l for l in b.splitlines() if " at 0x" in l][:1]
            if at and OURS.search(at[0]):
                ours_errors.append(b)
    # The other error records (valgrind's ERROR SUMMARY counts them too) are
    # CPython's: named by the function where the value was used.
    others = collections.Counter()
    for b in records:
        if b in ours_errors or LOST.search(b):
            continue
        if re.search(r"Invalid (read|write|free)|Mismatched free|uninitialised", b):
            at = FRAME.search(b)
            others[at[1] if at else "?"] += 1
    supp = collections.Counter()
    supp_bytes = supp_blocks = 0
    for m in USED_SUPP.finditer(text):
        supp[m[2]] += int(m[1])
        supp_bytes += num(m[3])
        supp_blocks += num(m[4])
    report = [
        f"   counted as ours: {len(ours_leaks)} definite-leak records "
        f"({ours_blocks} blocks), {len(ours_errors)} invalid-access or "
        f"uninitialised-value records",
        f"   left to CPython: {sum(supp.values())} leak records suppressed "
        f"({supp_bytes} bytes in {supp_blocks} blocks; "
        + (", ".join(f"{k} x{v}" for k, v in supp.most_common()) or "none")
        + f"), {sum(cpython.values())} more allocated under CPython's own code "
        f"({cpython_bytes} bytes in {cpython_blocks} blocks; "
        + (", ".join(f"{k} x{v}" for k, v in cpython.most_common()) or "none")
        + ")",
        f"   other error records, CPython's own (first frame): "
        + (", ".join(f"{k} x{v}" for k, v in others.most_common()) or "none")]
    return ours_leaks, ours_errors, report


def run(mode, tmp, plugdir):
    conf = tmp / f"{mode}.conf"
    opts = f"python:module_path={tmp}:module_name=vgplugin:interpreter={mode}"
    conf.write_text(
        "Director {\n Name = bareos-dir\n Password = x\n"
        f" Plugin Directory = {plugdir}\n Plugin Names = \"python\"\n}}\n"
        "Job {\n Name = J\n Type = Backup\n"
        f' Dir Plugin Options = "{opts}:instance=0"\n'
        f' Dir Plugin Options = "{opts}:instance=1"\n}}\n')
    log = Path(os.environ.get("BAREOSDIR_VALGRIND_LOG", tmp)) / f"vg-{mode}.log"
    env = dict(os.environ, PYTHONMALLOC="malloc")
    r = subprocess.run(
        ["valgrind", "-v", "--tool=memcheck", "--leak-check=full",
         "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
         "--num-callers=40", f"--suppressions={SUPP}",
         f"--log-file={log}", str(BUILD / "bareosdir-sim"), "-c", str(conf),
         "-j", "J", "--jobs", str(JOBS), "--concurrent", "4"],
        capture_output=True, text=True, env=env, timeout=3000)
    return r, log


def main(argv):
    expect_leaks = "--expect-leaks" in argv
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(tmp / "p")],
                       check=True, capture_output=True)
        plugdir = tmp / "p" / "lib" / "bareos" / "plugins"
        (tmp / "vgplugin.py").write_text(PLUGIN)
        failed = False
        found_all = True
        for mode in ("isolated", "main"):
            r, log = run(mode, tmp, plugdir)
            done = r.stdout.count(" done")
            ours_leaks, ours_errors, report = check(log, mode)
            summary = list(dict.fromkeys(
                l.split("== ")[-1].strip() for l in log.read_text().splitlines()
                if "definitely lost:" in l or "ERROR SUMMARY" in l
                or re.search(r"==\s+suppressed:", l)))
            print(f"== {mode}: sim exit {r.returncode}, {done}/{2 * JOBS} job messages; "
                  f"valgrind's own totals (CPython's included): " + "; ".join(summary))
            print("\n".join(report))
            if not expect_leaks:
                for b in ours_leaks + ours_errors:
                    print(b)
            if r.returncode != 0 or done != 2 * JOBS or ours_leaks or ours_errors:
                failed = True
                if r.returncode != 0:
                    print(r.stdout[-2000:], r.stderr[-2000:])
            if expect_leaks:
                # One str and one block per loaded instance: 2 per job.
                strs = sum(num(LOST.search(b)[2]) for b in ours_leaks
                           if "PyUnicode_FromFormat" in b)
                blocks = sum(num(LOST.search(b)[2]) for b in ours_leaks
                             if re.search(r"at 0x[0-9A-Fa-f]+: malloc .*\n.*load_plugin", b))
                ok = strs >= 2 * JOBS and blocks >= 2 * JOBS
                print(f"   leak self-test ({mode}): found {strs} leaked str and {blocks} "
                      f"leaked malloc blocks of the engine, {2 * JOBS} of each expected: "
                      + ("caught" if ok else "MISSED"))
                found_all = found_all and ok
        if expect_leaks:
            caught = failed and found_all
            print("valgrind self-test: " + (
                "the check fails on the leaking test build, as it must" if caught
                else "FAILED: the check did not catch the engine's test leaks"))
            return 0 if caught else 1
        print("valgrind: " + ("FAILED" if failed else
                              "no invalid accesses and no definite leaks allocated by our code"))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
