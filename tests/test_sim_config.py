"""The simulator's configuration reader (sim/config.c), driven through the
bareosdir-config-dump program, which prints what the reader understood as
one JSON array per line.

The build directory comes from BAREOSDIR_BUILD (default /work/main/build);
build it first (cmake --build BUILD --target bareosdir-config-dump)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BAREOSDIR_BUILD", "/work/main/build"))
DUMP = BUILD / "bareosdir-config-dump"


def _default_config() -> Path | None:
    candidates = [
        os.environ.get("BAREOSDIR_TESTDATA", ""),
        str(ROOT / "tests" / "testdata"),
        "/work/shared/testdata",
    ]
    for c in candidates:
        if c and (Path(c) / "default-bareos-dir.d").is_dir():
            return Path(c) / "default-bareos-dir.d"
    return None


DEFAULT_CONFIG = _default_config()
needs_default = pytest.mark.skipif(
    DEFAULT_CONFIG is None,
    reason="default-bareos-dir.d not found (set BAREOSDIR_TESTDATA)")


@dataclass
class Dump:
    rc: int
    lines: list = field(default_factory=list)
    stderr: str = ""

    @property
    def error(self) -> str | None:
        for ln in self.lines:
            if ln[0] == "error":
                return ln[1]
        return None

    @property
    def warnings(self) -> list[str]:
        return [ln[1] for ln in self.lines if ln[0] == "warning"]

    def resource(self, kind: str, name: str) -> dict:
        values = {ln[2]: ln[3] for ln in self.lines
                  if ln[0] == kind and ln[1] == name}
        assert values, f"no {kind} {name!r} in {self.lines}"
        return values

    def names(self, kind: str) -> list[str]:
        seen = []
        for ln in self.lines:
            if ln[0] == kind and ln[1] not in seen:
                seen.append(ln[1])
        return seen

    def job(self, name: str) -> dict:
        return self.resource("job", name)

    def jobdefs(self, name: str) -> dict:
        return self.resource("jobdefs", name)

    def director(self) -> tuple[str, dict]:
        (name,) = self.names("director")
        return name, self.resource("director", name)

    def found(self, query: str):
        for ln in self.lines:
            if ln[0] == "find" and ln[1] == query:
                return ln[2]
        raise KeyError(query)


@pytest.fixture(scope="session")
def dump_exe() -> Path:
    if not os.access(DUMP, os.X_OK):
        pytest.fail(f"{DUMP} is not built (cmake --build {BUILD} "
                    f"--target bareosdir-config-dump, or set BAREOSDIR_BUILD)")
    return DUMP


def run_dump(exe: Path, *args: str, stdin: bytes | None = None,
             env: dict | None = None, cwd: Path | None = None) -> Dump:
    proc = subprocess.run([str(exe), *args], input=stdin, capture_output=True,
                          timeout=60, env=env, cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8", errors="surrogateescape")
    return Dump(proc.returncode, [json.loads(ln) for ln in out.splitlines()],
                proc.stderr.decode(errors="replace"))


@pytest.fixture
def load(dump_exe):
    """load(path, *finds) -> Dump of a configuration path."""
    def _load(path: Path, *finds: str, env: dict | None = None) -> Dump:
        args = []
        for f in finds:
            args += ["--find", f]
        return run_dump(dump_exe, *args, str(path), env=env)
    return _load


@pytest.fixture
def parse(dump_exe, tmp_path):
    """parse(text) -> Dump of text written to bareos-dir.conf in tmp_path,
    read as bareos-dir -c tmp_path would (messages name files relative to
    tmp_path)."""
    def _parse(text: str | bytes, *finds: str,
               env: dict | None = None) -> Dump:
        p = tmp_path / "bareos-dir.conf"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        args = []
        for f in finds:
            args += ["--find", f]
        return run_dump(dump_exe, *args, str(tmp_path), env=env)
    return _parse


def ok(d: Dump) -> Dump:
    assert d.rc == 0 and d.error is None, d.lines
    return d


# ---- the default configuration Bareos ships ----

@needs_default
def test_default_configuration_reads_without_complaint(load):
    d = ok(load(DEFAULT_CONFIG))
    assert d.warnings == []
    name, director = d.director()
    assert name == "bareos-dir"
    # Plugin Directory and Plugin Names are commented out there.
    assert "plugin_directory" not in director
    assert "plugin_names" not in director
    assert sorted(d.names("job")) == ["BackupCatalog", "RestoreFiles",
                                      "backup-bareos-fd"]
    assert d.names("jobdefs") == ["DefaultJob"]


@needs_default
def test_default_configuration_values_and_jobdefs(load):
    d = ok(load(DEFAULT_CONFIG))
    assert d.jobdefs("DefaultJob") == {
        "defined_at": "jobdefs/DefaultJob.conf:1",
        "type": "B", "type_name": "Backup",
        "level": "I", "level_name": "Incremental",
        "client": "bareos-fd", "pool": "Incremental", "storage": "File",
        "priority": 10}
    # Everything inherited from DefaultJob.
    j = d.job("backup-bareos-fd")
    assert (j["type"], j["level"], j["client"], j["pool"], j["storage"],
            j["priority"]) == ("B", "I", "bareos-fd", "Incremental", "File", 10)
    # Own Level and Priority win over the JobDefs'.
    j = d.job("BackupCatalog")
    assert (j["level"], j["priority"], j["client"]) == ("F", 11, "bareos-fd")
    j = d.job("RestoreFiles")
    assert (j["type"], j["storage"]) == ("R", "File")
    assert "level" not in j and "jobdefs" not in j


@needs_default
def test_default_configuration_in_the_forms_bareos_dir_takes(load, tmp_path):
    etc = tmp_path / "etc"
    shutil.copytree(DEFAULT_CONFIG, etc / "bareos-dir.d")
    # A directory holding bareos-dir.d/: files are named relative to it.
    d = ok(load(etc))
    assert d.job("BackupCatalog")["defined_at"] == \
        "bareos-dir.d/job/BackupCatalog.conf:1"
    # bareos-dir.conf wins over bareos-dir.d/ when both are there.
    (etc / "bareos-dir.conf").write_text(
        'Director { Name = "other-dir" }\n'
        f'@{etc}/bareos-dir.d/job/*.conf\n'
        f'@{etc}/bareos-dir.d/jobdefs/*.conf\n')
    d = ok(load(etc))
    assert d.director()[0] == "other-dir"
    assert sorted(d.names("job")) == ["BackupCatalog", "RestoreFiles",
                                      "backup-bareos-fd"]
    # A file given directly.
    d = ok(load(etc / "bareos-dir.conf"))
    assert d.director()[0] == "other-dir"


@needs_default
def test_default_configuration_with_plugin_lines_added(load, tmp_path):
    etc = tmp_path / "etc"
    shutil.copytree(DEFAULT_CONFIG, etc / "bareos-dir.d")
    director = etc / "bareos-dir.d" / "director" / "bareos-dir.conf"
    director.write_text(director.read_text().replace(
        '  # Plugin Directory = "/usr/lib/bareos/plugins"\n'
        '  # Plugin Names = ""\n',
        '  Plugin Directory = "/usr/lib/bareos/plugins"\n'
        '  Plugin Names = "python"\n'))
    job = etc / "bareos-dir.d" / "job" / "backup-bareos-fd.conf"
    job.write_text(job.read_text().replace(
        '  Client = "bareos-fd"\n',
        '  Client = "bareos-fd"\n'
        '  Dir Plugin Options = "python:module_path=/usr/lib/bareos/plugins:'
        'module_name=bareos-dir-class-plugins"\n'))
    d = ok(load(etc))
    assert d.director()[1]["plugin_directory"] == "/usr/lib/bareos/plugins"
    assert d.director()[1]["plugin_names"] == ["python"]
    assert d.job("backup-bareos-fd")["plugin_options"] == [
        "python:module_path=/usr/lib/bareos/plugins:"
        "module_name=bareos-dir-class-plugins"]
    assert "plugin_options" not in d.job("BackupCatalog")


def test_directory_without_configuration_is_an_error(load, tmp_path):
    d = load(tmp_path)
    assert d.rc == 1
    assert "no bareos-dir.conf" in d.error


def test_missing_path_is_an_error(load, tmp_path):
    d = load(tmp_path / "nope")
    assert d.rc == 1 and "No such file" in d.error


# ---- keys ----

@pytest.mark.parametrize("key", ["Plugin Directory", "PluginDirectory",
                                 "plugin directory", "PLUGIN  DIRECTORY",
                                 "plugin\tDirectory"])
def test_keys_ignore_case_and_blanks(parse, key):
    d = ok(parse(f'Director {{\n  Name = d\n  {key} = "/p"\n}}\n'))
    assert d.director()[1]["plugin_directory"] == "/p"


def test_job_keys_ignore_case_and_blanks(parse):
    d = ok(parse('job {\n name = j\n DIR PLUGIN OPTIONS = "python:a=1"\n'
                 ' dirpluginoptions = "python:b=2"\n JOB DEFS = d\n}\n'
                 'Job Defs { Name = d; TYPE = backup; level = FULL }\n'))
    j = d.job("j")
    assert j["plugin_options"] == ["python:a=1", "python:b=2"]
    assert (j["type"], j["level"]) == ("B", "F")


# ---- Plugin Names ----

def test_plugin_names_repeated_lines(parse):
    d = ok(parse('Director { Name = d\n Plugin Names = "python"\n'
                 ' Plugin Names = python3 }\n'))
    assert d.director()[1]["plugin_names"] == ["python", "python3"]
    assert d.warnings == []


def test_plugin_names_colon_list(parse):
    d = ok(parse('Director { Name = d; Plugin Names = "python:python3" }'))
    assert d.director()[1]["plugin_names"] == ["python", "python3"]


def test_plugin_names_comma_list_is_read_with_a_warning(parse):
    d = ok(parse('Director {\n Name = d\n Plugin Names = "python", "python3"\n}'))
    assert d.director()[1]["plugin_names"] == ["python", "python3"]
    (w,) = d.warnings
    assert w.startswith("bareos-dir.conf:3: ")
    assert "only the first name" in w


def test_plugin_names_empty_string_is_a_list(parse):
    d = ok(parse('Director { Name = d; Plugin Names = "" }'))
    assert d.director()[1]["plugin_names"] == [""]


def test_plugin_directory_expands_home_and_variables(parse):
    env = dict(os.environ, HOME="/home/x", BD_TEST_DIR="plug")
    d = ok(parse('Director { Name = d\n'
                 ' Plugin Directory = "~/lib/${BD_TEST_DIR}/$BD_TEST_DIR" }',
                 env=env))
    assert d.director()[1]["plugin_directory"] == "/home/x/lib/plug/plug"


# ---- Dir Plugin Options and JobDefs ----

def test_dir_plugin_options_keep_order(parse):
    d = ok(parse('Job {\n Name = j\n'
                 ' Dir Plugin Options = "python:module_name=a"\n'
                 ' Dir Plugin Options = "python:module_name=b:instance=1",\n'
                 '    "python3:module_name=c"\n'
                 ' Dir Plugin Options = "python:module_name=d"\n}\n'))
    assert d.job("j")["plugin_options"] == [
        "python:module_name=a", "python:module_name=b:instance=1",
        "python3:module_name=c", "python:module_name=d"]


def test_job_options_replace_jobdefs_options(parse):
    d = ok(parse('JobDefs {\n Name = defs\n'
                 ' Dir Plugin Options = "python:module_name=from_defs"\n'
                 ' Dir Plugin Options = "python:module_name=also_defs"\n}\n'
                 'Job { Name = own; JobDefs = defs\n'
                 ' Dir Plugin Options = "python:module_name=own" }\n'
                 'Job { Name = inherits; JobDefs = defs }\n'))
    assert d.job("own")["plugin_options"] == ["python:module_name=own"]
    assert d.job("inherits")["plugin_options"] == [
        "python:module_name=from_defs", "python:module_name=also_defs"]
    assert d.jobdefs("defs")["plugin_options"] == [
        "python:module_name=from_defs", "python:module_name=also_defs"]


def test_jobdefs_values_inherited_only_when_unset(parse):
    d = ok(parse('JobDefs { Name = defs; Type = Backup; Level = Incremental\n'
                 ' Client = c1; Pool = p1; Storage = s1; Priority = 5 }\n'
                 'Job { Name = j; JobDefs = defs; Level = Full; Pool = p2\n'
                 ' Storage = s2, s3 }\n'))
    j = d.job("j")
    assert (j["type"], j["level"], j["client"], j["pool"], j["storage"],
            j["priority"]) == ("B", "F", "c1", "p2", "s2", 5)


def test_jobdefs_of_jobdefs(parse):
    d = ok(parse('Job { Name = j; JobDefs = b }\n'
                 'JobDefs { Name = b; JobDefs = a; Level = Differential }\n'
                 'JobDefs { Name = a; Type = Restore; Level = Full\n'
                 ' Dir Plugin Options = "python:x=1" }\n'))
    j = d.job("j")
    assert (j["type"], j["level"], j["plugin_options"]) == \
        ("R", "D", ["python:x=1"])


def test_first_storage_of_the_list_and_of_repeated_lines(parse):
    d = ok(parse('Job { Name = j\n Storage = a, b\n Storage = c\n}'))
    assert d.job("j")["storage"] == "a"


# ---- strings ----

def test_escapes_in_quoted_strings(parse):
    d = ok(parse(r'Job { Name = j; Client = "a\"b\\c\(d\) e" }'))
    assert d.job("j")["client"] == 'a"b\\c(d) e'


def test_adjacent_strings_on_one_line_are_joined(parse):
    d = ok(parse('Job { Name = "ad" "ja"   "cent"\n'
                 ' Dir Plugin Options = "python:module_name=x:" "a=1"\n}'))
    assert d.names("job") == ["adjacent"]
    assert d.job("adjacent")["plugin_options"] == ["python:module_name=x:a=1"]


def test_string_continued_on_the_next_line(parse):
    d = ok(parse('Job {\n Name = j\n'
                 ' Dir Plugin Options = "python:module_name=x:"\n'
                 '      "a=1:"\n'
                 '"b=2"\n'
                 ' Client = c\n}\n'))
    j = d.job("j")
    assert j["plugin_options"] == ["python:module_name=x:a=1:b=2"]
    assert j["client"] == "c"


def test_string_continued_after_a_comment(parse):
    d = ok(parse('Job {\n Name = j\n Client = "a"  # first part\n   "b"\n}\n'))
    assert d.job("j")["client"] == "ab"


def test_line_break_inside_quotes_is_dropped(parse):
    # As in bareos-dir: a quoted string may span lines, without the breaks.
    d = ok(parse('Job {\n Name = j\n Client = "multi\nline"\n Pool = p\n}\n'))
    assert (d.job("j")["client"], d.job("j")["pool"]) == ("multiline", "p")


def test_backslash_at_the_end_of_a_line_inside_quotes(parse):
    d = ok(parse('Job {\n Name = j\n Client = "a\\\n  b"\n}\n'))
    assert d.job("j")["client"] == "a  b"


def test_line_numbers_count_lines_inside_strings(parse):
    d = parse('Job {\n Name = j\n Client = "multi\nline"\n Level Full\n}\n')
    assert d.error == "bareos-dir.conf:5: expected '=' after key \"Level\""


def test_unquoted_values_run_to_the_end_of_the_line(parse):
    d = ok(parse('Job {\n Name = j\n'
                 ' Dir Plugin Options = python:module_name=x:a=b=c  # note\n'
                 ' Pool = Full Pool With Spaces 2\n}\n'))
    j = d.job("j")
    assert j["plugin_options"] == ["python:module_name=x:a=b=c"]
    assert j["pool"] == "Full Pool With Spaces 2"


def test_unquoted_letters_and_blanks_read_as_bareos_does(parse):
    # bareos-dir's lexer drops blanks inside an identifier-like value.
    d = ok(parse('Job { Name = my job\n Client = x-y z }'))
    assert d.names("job") == ["myjob"]
    assert d.job("myjob")["client"] == "x-y z"


def test_names_with_spaces_quoted(parse):
    d = ok(parse('Job { Name = "Windows All Drives" }', "Windows All Drives"))
    assert d.found("Windows All Drives") == "Windows All Drives"


# ---- statements, comments, nesting ----

def test_semicolons_and_comments(parse):
    d = ok(parse('# leading comment\n'
                 'Director { Name = d ; Plugin Directory = /p # dir\n'
                 '} # trailing\n'
                 'Job { Name = j; Type = Backup; Level = Full; Priority = 3 }'))
    assert d.director()[1]["plugin_directory"] == "/p"
    j = d.job("j")
    assert (j["type"], j["level"], j["priority"]) == ("B", "F", 3)


def test_resource_brace_on_the_next_line(parse):
    d = ok(parse('Job\n{\n  Name\n  = j\n}\n'))
    assert d.names("job") == ["j"]


def test_nested_resources_and_braces_in_strings_are_skipped(parse):
    d = ok(parse('FileSet {\n Name = "fs"\n Include {\n'
                 '  Options { Signature = MD5; Wild = "*.{c,h}" }\n'
                 '  File = "/etc"\n  Plugin = "python:module_name=x"\n }\n'
                 ' Exclude { File = /tmp }\n}\n'
                 'Job {\n Name = j\n RunScript {\n  RunsWhen = Before\n'
                 '  Command = "echo }"\n }\n Client = after\n}\n'
                 'Schedule { Name = s; Run = Full 1st sat at 21:00 }\n'
                 'Messages { Name = m\n'
                 ' mail = root@localhost = all, !skipped, !audit\n'
                 ' append = "/var/log/x.log" = all, !skipped\n}\n'))
    assert d.job("j")["client"] == "after"


def test_crlf_and_byte_order_mark(parse):
    d = ok(parse(b'\xef\xbb\xbfDirector {\r\n  Name = d\r\n'
                 b'  Plugin Directory = /p\r\n}\r\nJob { Name = j\r\n}\r\n'))
    assert d.director()[1]["plugin_directory"] == "/p"
    assert d.names("job") == ["j"]


def test_unknown_resource_type_is_skipped_with_a_warning(parse):
    d = ok(parse('Frobnicator {\n Name = f\n Anything = goes\n}\n'
                 'Job { Name = j }'))
    (w,) = d.warnings
    assert w.startswith("bareos-dir.conf:1: unknown resource type")


# ---- includes ----

def test_includes_relative_quoted_and_glob(parse, tmp_path):
    inc = tmp_path / "inc dir"
    inc.mkdir()
    (inc / "b.conf").write_text("Job { Name = b }\n")
    (inc / "a.conf").write_text("Job { Name = a }\n")
    (inc / "c.other").write_text("Job { Name = c }\n")
    (tmp_path / "with space.conf").write_text("Job { Name = spaced }\n")
    d = ok(parse('@"with space.conf"\n'
                 '@"inc dir/*.conf"\n'
                 '@/nonexistent/dir/*.conf\n'
                 'Director { Name = d }\n'))
    assert d.names("job") == ["spaced", "a", "b"]
    assert d.job("a")["defined_at"] == "inc dir/a.conf:1"


def test_include_inside_a_resource(parse, tmp_path):
    (tmp_path / "opts.inc").write_text(
        'Dir Plugin Options = "python:module_name=included"\n')
    d = ok(parse('Job {\n Name = j\n @opts.inc\n'
                 ' Dir Plugin Options = "python:module_name=after"\n}\n'))
    assert d.job("j")["plugin_options"] == ["python:module_name=included",
                                            "python:module_name=after"]


def test_include_of_a_missing_file_names_file_and_line(parse):
    d = parse('Director { Name = d }\n\n@missing.conf\n')
    assert d.rc == 1
    assert d.error.startswith("bareos-dir.conf:3: cannot open ")
    assert "missing.conf" in d.error


def test_include_loop_is_an_error(parse, tmp_path):
    (tmp_path / "loop.conf").write_text("@bareos-dir.conf\n")
    d = parse('@loop.conf\n')
    assert d.rc == 1 and "includes itself" in d.error


def test_include_from_a_command(parse):
    d = ok(parse('@|"echo \'Job { Name = from_command }\'"\n'))
    assert d.names("job") == ["from_command"]


def test_include_refused_for_buffers_when_asked(dump_exe):
    d = run_dump(dump_exe, "--stdin", "--no-include", "--name", "x.conf",
                 stdin=b"Job { Name = j }\n@other.conf\n")
    assert d.rc == 1
    assert d.error == "x.conf:2: @include is not allowed here"
    d = run_dump(dump_exe, "--stdin", "--name", "x.conf",
                 stdin=b"Job { Name = j }\n")
    assert d.rc == 0 and d.names("job") == ["j"]


def test_error_in_an_included_file_names_that_file(load, tmp_path):
    etc = tmp_path / "etc"
    (etc / "bareos-dir.d" / "job").mkdir(parents=True)
    (etc / "bareos-dir.d" / "director").mkdir()
    (etc / "bareos-dir.d" / "director" / "d.conf").write_text(
        "Director { Name = d }\n")
    lines = ["Job {", '  Name = "x"'] + ["  # filler"] * 9 + \
        ["  Level Full", "}"]
    (etc / "bareos-dir.d" / "job" / "x.conf").write_text("\n".join(lines))
    d = load(etc)
    assert d.error == ("bareos-dir.d/job/x.conf:12: "
                       "expected '=' after key \"Level\"")


# ---- errors ----

@pytest.mark.parametrize("text,expected", [
    ('Job {\n Name = a\n Level Full\n}\n',
     "bareos-dir.conf:3: expected '=' after key \"Level\""),
    ('Job {\n Name = a\n Level = Fulll\n}\n',
     "bareos-dir.conf:3: expected a Job Level keyword"),
    ('Job {\n Name = a\n Type = Backups\n}\n',
     "bareos-dir.conf:3: expected a Job Type keyword"),
    ('Job {\n Name = a\n Priority = high\n}\n',
     "bareos-dir.conf:3: expected a positive integer"),
    ('Job {\n Name = a\n',
     "bareos-dir.conf:3: unexpected end of file: expected '}' to close "
     "\"Job\" opened at bareos-dir.conf:1"),
    ('Job {\n Name = "a\n}\n',
     "bareos-dir.conf:2: unterminated quoted string"),
    ('Job {\n Name =\n}\n', 'bareos-dir.conf:2: expected a value after "Name ="'),
    ('}\n', "bareos-dir.conf:1: unexpected '}' outside of a resource"),
    ('Job = { Name = a }\n',
     "bareos-dir.conf:1: expected '{' after resource type \"Job\""),
    ('"Job" { Name = a }\n', "bareos-dir.conf:1: expected a resource type"),
    ('Job {\n 12 = 3\n}\n', "bareos-dir.conf:2: expected a keyword or '}'"),
    ('Job {\n Type = Backup\n}\n', "bareos-dir.conf:1: Job resource has no Name"),
    ('Job { Name = a }\n\nJob { Name = a }\n',
     "bareos-dir.conf:3: a second Job resource named \"a\" is not permitted "
     "(the first is at bareos-dir.conf:1)"),
    ('Director { Name = a }\nDirector { Name = b }\n',
     "bareos-dir.conf:2: only one Director resource is permitted"),
    ('Job {\n Name = a\n JobDefs = nope\n}\n',
     'bareos-dir.conf:3: Job "a": JobDefs "nope" not found'),
    ('JobDefs { Name = a; JobDefs = b }\nJobDefs { Name = b; JobDefs = a }\n',
     "JobDefs loop"),
    ('JobDefs { Name = a; JobDefs = a }\n', 'JobDefs "a" names itself'),
    ('Job { Name = a; Name = b }\n', "cannot rename it"),
    ('Job { Name = a; Dir Plugin Options { x = y } }\n',
     "expected '=' after key \"Dir Plugin Options\""),
    ('Job { Name = a\x00 }\n', "NUL byte"),
    ('@\n', "bareos-dir.conf:1: expected a file name after '@'"),
])
def test_syntax_errors_name_file_line_and_what_was_expected(parse, text,
                                                            expected):
    d = parse(text)
    assert d.rc == 1, d.lines
    assert expected in d.error
    assert "\n" not in d.error


def test_blocks_nested_too_deep(parse):
    d = parse("Job { Name = a\n" + "x {" * 100 + "}" * 100 + "}\n")
    assert d.rc == 1 and "nested more than" in d.error


# ---- lookup and levels ----

def test_job_lookup_exact_then_any_case(parse):
    d = ok(parse('Job { Name = Backup }\nJob { Name = backup }\n'
                 'Job { Name = Other }\n',
                 "Backup", "backup", "BACKUP", "other", "OTHER", "missing"))
    assert d.found("Backup") == "Backup"
    assert d.found("backup") == "backup"
    assert d.found("BACKUP") is None  # two case-insensitive matches
    assert d.found("other") == "Other"
    assert d.found("OTHER") == "Other"
    assert d.found("missing") is None


def test_jobdefs_are_not_found_as_jobs(parse):
    d = ok(parse('JobDefs { Name = defs }\n', "defs"))
    assert d.found("defs") is None


@pytest.mark.parametrize("text,code", [
    ("F", "F"), ("I", "I"), ("D", "D"), ("f", "f"), ("Full", "F"),
    ("full", "F"), ("Incremental", "I"), ("differential", "D"),
    ("VirtualFull", "f"), ("Base", "B"), ("Since", "S"),
    ("VolumeToCatalog", "O"), ("DiskToCatalog", "d"), ("X", ""),
    ("Fullest", ""), ("", ""),
])
def test_level_codes(dump_exe, text, code):
    d = run_dump(dump_exe, "--level", text, "--stdin", stdin=b"")
    (line,) = [ln for ln in d.lines if ln[0] == "level_code"]
    assert line == ["level_code", text, code]


# ---- robustness ----

def test_fuzz_seed_corpus_reads_or_fails_cleanly(dump_exe):
    corpus = ROOT / "fuzz" / "corpus" / "config"
    files = sorted(corpus.iterdir())
    assert files
    for f in files:
        d = run_dump(dump_exe, "--stdin", "--no-include", "--name",
                     "fuzz.conf", stdin=f.read_bytes())
        if d.rc == 1:
            assert d.error.startswith("fuzz.conf:"), (f, d.error)
