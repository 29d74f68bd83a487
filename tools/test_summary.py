"""The closing summary of tools/test.sh from the stages' logs.

For each stage (DIR/N.log, DIR/N.status = "name<TAB>exit status<TAB>seconds")
it counts the tests its output reports: ctest's "N% tests passed, F tests
failed out of T" (plus its "(Skipped)"/"(Not Run)" lines), pytest's closing
"N passed, F failed, S skipped ..." lines, and a stage's own closing line
"counts: N passed, F failed, S skipped". A stage with none of these counts
as one check. A stage failed when it exited non-zero. Prints every skip's
reason, and ends with "stages: N passed, N failed"; exits 1 if any failed.
"""

import re
import sys
from pathlib import Path

CTEST = re.compile(r"^\d+% tests passed, (\d+) tests? failed out of (\d+)")
CTEST_SKIP = re.compile(r"^\s*\d+ - (.*) \((Skipped|Not Run|Disabled)\)")
PYTEST = re.compile(r"^=*\s*((?:\d+ (?:passed|failed|skipped|errors?|xfailed|"
                    r"xpassed|deselected|warnings?)(?:, )?)+) in [\d.]+s")
PYTEST_SKIP = re.compile(r"^SKIPPED \[\d+\] (.*)")
OWN = re.compile(r"^counts: (\d+) passed, (\d+) failed, (\d+) skipped")


def count(log):
    passed = failed = skipped = 0
    reasons = []
    found = False
    for line in log.splitlines():
        if m := CTEST.match(line):
            f, t = int(m[1]), int(m[2])
            passed += t - f
            failed += f
            found = True
        elif m := CTEST_SKIP.match(line):
            skipped += 1
            passed -= 1   # ctest counts a skipped test as passed
            reasons.append("ctest %s (%s)" % (m[1], m[2]))
        elif m := PYTEST.match(line):
            for num, kind in re.findall(r"(\d+) (\w+)", m[1]):
                if kind == "passed":
                    passed += int(num)
                elif kind in ("failed", "error", "errors", "xpassed"):
                    failed += int(num)
                elif kind == "skipped":
                    skipped += int(num)
            found = True
        elif m := PYTEST_SKIP.match(line):
            reasons.append(m[1])
        elif m := OWN.match(line):
            passed += int(m[1])
            failed += int(m[2])
            skipped += int(m[3])
            found = True
    return found, passed, failed, skipped, reasons


def main(d):
    d = Path(d)
    ok = bad = 0
    rows, skips = [], []
    for status in sorted(d.glob("*.status"), key=lambda p: int(p.stem)):
        name, rc, secs = status.read_text().rstrip("\n").split("\t")
        found, p, f, s, reasons = count(
            (d / (status.stem + ".log")).read_text(errors="replace"))
        rc = int(rc)
        if not found:
            p, f = (1, 0) if rc == 0 else (0, 1)
        stage_failed = rc != 0 or f > 0
        ok, bad = ok + (not stage_failed), bad + stage_failed
        rows.append("  %-24s %-6s %5d passed, %3d failed, %3d skipped  %5ss%s"
                    % (name, "FAILED" if stage_failed else "ok", p, f, s, secs,
                       "" if found else "  (exit status %d)" % rc))
        skips += ["  %s: %s" % (name, r) for r in reasons]
    print("\n== summary")
    print("\n".join(rows))
    if skips:
        print("skipped tests and why:")
        print("\n".join(skips))
    print("stages: %d passed, %d failed" % (ok, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
