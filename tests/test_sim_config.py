"""The simulator's configuration reader (sim/config.c), driven through the
bareosdir-config-dump program, which prints what the reader understood as
one JSON array per line.

The build directory comes from BAREOSDIR_BUILD, else the checkout's build/
(beside tests/); build it first (cmake --build BUILD --target
bareosdir-config-dump).  The configuration trees read here are our own
tests/data/bareos-dir.d and, when present, the shared test data beside the
checkout (../shared/testdata/default-bareos-dir.d, where CI has it) or in
BAREOSDIR_TESTDATA: extra inputs, never the only one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BAREOSDIR_BUILD") or ROOT / "build")
DUMP = BUILD / "bareosdir-config-dump"

# Our own tree: every construct Bareos's default configuration uses.
OUR_CONFIG = ROOT / "tests" / "data" / "bareos-dir.d"


def _extra_configs() -> list[Path]:
    found = []
    for base in (os.environ.get("BAREOSDIR_TESTDATA", ""),
                 str(ROOT.parent / "shared" / "testdata")):
        path = Path(base) / "default-bareos-dir.d" if base else None
        if path and path.is_dir() and path.resolve() not in found:
            found.append(path.resolve())
    return found


CONFIGS = [OUR_CONFIG] + _extra_configs()
each_config = pytest.mark.parametrize(
    "config", CONFIGS, ids=["ours"] + ["extra%d" % i
                                       for i in range(1, len(CONFIGS))])


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


# ---- whole configuration trees in Bareos's default layout ----

@each_config
def test_default_configuration_reads_without_complaint(load, config):
    d = ok(load(config))
    assert d.warnings == []
    name, director = d.director()
    assert name == "bareos-dir"
    # Plugin Directory and Plugin Names are commented out there.
    assert "plugin_directory" not in director
    assert "plugin_names" not in director
    assert {"BackupCatalog", "RestoreFiles",
            "backup-bareos-fd"} <= set(d.names("job"))
    assert "DefaultJob" in d.names("jobdefs")


def test_our_tree_holds_what_the_tests_rely_on(load):
    d = ok(load(OUR_CONFIG))
    assert sorted(d.names("job")) == ["BackupCatalog", "PluginTest",
                                      "RestoreFiles", "backup-bareos-fd"]
    assert sorted(d.names("jobdefs")) == ["DefaultJob", "PluginJob"]
    # Dir Plugin Options given several times, one split over three quoted
    # strings on three lines, one with escaped quotes; all inherited.
    assert d.job("PluginTest")["plugin_options"] == [
        "python:instance=0:module_name=bareos-dir-class-plugins:"
        "testoption=first",
        "python:instance=1:module_name=bareos-dir-class-plugins:"
        "testoption=second",
        'python3:module_name=bareos-dir-class-plugin:note=a "quoted" word']
    # The constructs are really there (a tree that lost them would still
    # read): includes with and without a glob inside nested blocks, a file
    # name with blanks, every resource type, keys in odd spellings.
    texts = {p.relative_to(OUR_CONFIG).as_posix(): p.read_text()
             for p in OUR_CONFIG.rglob("*") if p.is_file()}
    types = {name.split("/")[0] for name in texts if name.endswith(".conf")}
    assert types == {"catalog", "client", "console", "counter", "director",
                     "fileset", "job", "jobdefs", "messages", "pool",
                     "profile", "schedule", "storage", "user"}
    every = "".join(texts.values())
    for construct in ("@parts/linux-options-*.inc", '@"parts/linux-excludes.inc"',
                      "Options {", "Exclude {", "RunScript {", "; ",
                      "WORKING DIRECTORY", "dirpluginoptions", "\\\"",
                      "Maximum Concurrent Jobs", "# "):
        assert construct in every, construct
    assert "fileset/Windows All Drives.conf" in texts


@each_config
def test_default_configuration_values_and_jobdefs(load, config):
    d = ok(load(config))
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


@each_config
def test_default_configuration_in_the_forms_bareos_dir_takes(load, tmp_path,
                                                            config):
    etc = tmp_path / "etc"
    shutil.copytree(config, etc / "bareos-dir.d")
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
    assert {"BackupCatalog", "RestoreFiles",
            "backup-bareos-fd"} <= set(d.names("job"))
    # A file given directly.
    d = ok(load(etc / "bareos-dir.conf"))
    assert d.director()[0] == "other-dir"


@each_config
def test_default_configuration_with_plugin_lines_added(load, tmp_path, config):
    etc = tmp_path / "etc"
    shutil.copytree(config, etc / "bareos-dir.d")
    director = etc / "bareos-dir.d" / "director" / "bareos-dir.conf"
    text = director.read_text()
    commented = ('  # Plugin Directory = "/usr/lib/bareos/plugins"\n'
                 '  # Plugin Names = ""\n')
    assert commented in text
    director.write_text(text.replace(
        commented,
        '  Plugin Directory = "/usr/lib/bareos/plugins"\n'
        '  Plugin Names = "python"\n'))
    job = etc / "bareos-dir.d" / "job" / "backup-bareos-fd.conf"
    text = job.read_text()
    assert '  Client = "bareos-fd"\n' in text
    job.write_text(text.replace(
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


def test_unterminated_quote_names_the_line_where_it_opened(parse):
    # bareos-dir keeps line breaks inside quotes, so a quote left open
    # swallows the next lines: once gave 'no Job resource named
    # "BackupClient1" (Jobs: )' and no line.  The simulator refuses a raw
    # line break inside quotes and says where the quote opened.
    text = ('Director {\n Name = d\n}\n'
            'Job {\n  Name = "BackupClient1\n  JobDefs = "DefaultJob"\n'
            '  Dir Plugin Options = "python3"\n'
            '                       ":module_name=x"\n}\n')
    d = parse(text)
    assert d.rc == 1
    assert d.error.startswith(
        "bareos-dir.conf:5: the quoted string opened here is not closed on "
        "its line"), d.error
    # At the end of a file too.
    d = parse('Job {\n Name = j\n Client = "open\n')
    assert d.error.startswith("bareos-dir.conf:3: "), d.error


def test_backslash_at_the_end_of_a_line_inside_quotes(parse):
    d = ok(parse('Job {\n Name = j\n Client = "a\\\n  b"\n}\n'))
    assert d.job("j")["client"] == "a  b"


def test_line_numbers_count_lines_inside_strings(parse):
    d = parse('Job {\n Name = j\n Client = "multi\\\nline"\n Level Full\n}\n')
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


def test_unknown_resource_type_is_an_error(parse):
    d = parse('Job { Name = j }\nFrobnicator {\n Name = f\n}\n')
    assert d.rc == 1
    assert d.error.startswith(
        'bareos-dir.conf:2: unknown resource type "Frobnicator": bareos-dir '
        'has Director, Client, Job'), d.error


# ---- directives: only those bareos-dir knows, in every resource ----

DIRECTIVES = ROOT / "sim" / "directives.def"


def _directives() -> list[tuple[str, str]]:
    import re
    return re.findall(r"^BD_DIRECTIVE\((\w+), (\w+)\)$",
                      DIRECTIVES.read_text(), re.M)


def test_directive_data_is_sorted_for_the_binary_search():
    pairs = _directives()
    assert len(pairs) > 400
    keys = [(t.lower(), n.lower()) for t, n in pairs]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


# A resource of each type with everything it needs around the bad key.
RESOURCE_TYPES = {
    "Director": "Director {{\n Name = d\n {key} = x\n}}\n",
    "Client": "Client {{\n Name = c\n {key} = x\n}}\n",
    "Job": "Job {{\n Name = j\n {key} = x\n}}\n",
    "JobDefs": "JobDefs {{\n Name = j\n {key} = x\n}}\n",
    "Storage": "Storage {{\n Name = s\n {key} = x\n}}\n",
    "Catalog": "Catalog {{\n Name = c\n {key} = x\n}}\n",
    "Schedule": "Schedule {{\n Name = s\n {key} = x\n}}\n",
    "FileSet": "FileSet {{\n Name = f\n {key} = x\n}}\n",
    "Pool": "Pool {{\n Name = p\n {key} = x\n}}\n",
    "Messages": "Messages {{\n Name = m\n {key} = x\n}}\n",
    "Counter": "Counter {{\n Name = c\n {key} = x\n}}\n",
    "Console": "Console {{\n Name = c\n {key} = x\n}}\n",
    "Profile": "Profile {{\n Name = p\n {key} = x\n}}\n",
    "User": "User {{\n Name = u\n {key} = x\n}}\n",
    "RunScript": "Job {{\n Name = j\n RunScript {{\n {key} = x\n }}\n}}\n",
    "Include": "FileSet {{\n Name = f\n Include {{\n {key} = x\n }}\n}}\n",
    "Exclude": "FileSet {{\n Name = f\n Exclude {{\n {key} = x\n }}\n}}\n",
    "Options": ("FileSet {{\n Name = f\n Include {{\n Options {{\n"
                " {key} = x\n }}\n }}\n}}\n"),
}
TABLE_OF = {"JobDefs": "Job", "Exclude": "Include"}


@pytest.mark.parametrize("kind", sorted(RESOURCE_TYPES))
def test_unknown_directive_is_refused_in_every_resource(parse, kind):
    # bareos-dir -t: "Keyword ... not permitted in this resource".
    text = RESOURCE_TYPES[kind].format(key="Frobnicate Level")
    d = parse(text)
    assert d.rc == 1, d.lines
    line = text[:text.index("Frobnicate")].count("\n") + 1
    assert d.error == (
        'bareos-dir.conf:%d: Keyword "Frobnicate Level" not permitted in this '
        "resource (%s)" % (line, TABLE_OF.get(kind, kind))), d.error


@pytest.mark.parametrize("kind", sorted(RESOURCE_TYPES))
def test_every_known_directive_is_accepted(parse, kind):
    table = TABLE_OF.get(kind, kind)
    names = [n for t, n in _directives() if t == table]
    assert names
    for name in names:
        d = parse(RESOURCE_TYPES[kind].format(key=name))
        assert d.error is None or "not permitted" not in d.error, (name,
                                                                   d.error)


def test_misspelt_directive_gets_a_suggestion(parse):
    d = parse('Director {\n Name = d\n Plugin Directroy = /p\n}\n')
    assert d.error == ('bareos-dir.conf:2: Keyword "Plugin Directroy" not '
                       'permitted in this resource (Director); did you mean '
                       '"PluginDirectory"?'.replace(":2:", ":3:"))
    # Not every unknown word is near a known one.
    d = parse('Job {\n Name = j\n Zzzzzzzz = 1\n}\n')
    assert d.error.endswith("not permitted in this resource (Job)")


def test_older_and_aliased_directive_names_are_accepted(parse):
    d = ok(parse('Director {\n Name = d\n DirPort = 9101\n'
                 ' Plugin Directory = /p\n Plugin Names = "python"\n}\n'
                 'Client {\n Name = c\n FD Address = h\n FdPort = 9102\n}\n'
                 'Job {\n Name = j\n Dir Plugin Options = "python:a=1"\n'
                 ' Verify Job = x\n}\n'))
    assert d.job("j")["plugin_options"] == ["python:a=1"]


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
     "bareos-dir.conf:2: the quoted string opened here is not closed"),
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
    d = parse("Job { Name = a\n Description {" + "x {" * 100 + "}" * 101
              + "}\n")
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


# ---- generated configurations: bounded time, memory and stack ----

def test_long_jobdefs_chain_does_not_overflow_the_stack(parse):
    # 30,000 JobDefs, each naming the one before: the reader once resolved
    # them recursively and crashed.
    lines = ["JobDefs { Name = d0; Level = Full; Pool = p0 }"]
    lines += ["JobDefs { Name = d%d; JobDefs = d%d }" % (i, i - 1)
              for i in range(1, 30000)]
    lines.append("Job { Name = j; JobDefs = d29999 }")
    d = ok(parse("\n".join(lines) + "\n", "j"))
    assert d.found("j") == "j"
    assert (d.job("j")["level"], d.job("j")["pool"]) == ("F", "p0")
    # A loop at the end of a long chain is still found.
    lines[0] = "JobDefs { Name = d0; JobDefs = d29999 }"
    d = parse("\n".join(lines) + "\n")
    assert d.rc == 1 and "part of a JobDefs loop" in d.error, d.error


def test_includes_that_fan_out_are_bounded(load, tmp_path):
    # 11 files, each including the next four times: 4**10 reads, no loop.
    # Once 9.5 s and 344 MB at this depth, 2.3 GB two levels deeper.
    for i in range(10):
        (tmp_path / ("f%d.conf" % i)).write_text(
            "@f%d.conf\n" % (i + 1) * 4)
    (tmp_path / "f10.conf").write_text("# the leaf\n")
    (tmp_path / "bareos-dir.conf").write_text("Director { Name = d }\n@f0.conf\n")
    d = load(tmp_path)
    assert d.rc == 1
    assert "would make more than 50000 files read for this configuration" \
        in d.error, d.error


def test_include_command_output_is_bounded(parse):
    d = parse("Director { Name = d }\n@|yes\n")
    assert d.rc == 1
    assert "would make more than 64 MiB of configuration text" in d.error, \
        d.error


def test_many_resources_load_in_linear_time(dump_exe, tmp_path):
    # 100,000 resources once took 33 s (each name compared with all before
    # it); a generous bound, far above the fraction of a second it takes.
    import time
    conf = tmp_path / "bareos-dir.conf"
    with conf.open("w") as f:
        f.write("Director { Name = d }\n")
        for i in range(90000):
            f.write("Client { Name = c%d; Address = h; Password = p }\n" % i)
        for i in range(10000):
            f.write("Job { Name = j%d; Type = Backup; Client = c%d }\n"
                    % (i, i))
        f.write("Client { Name = c4711; Address = h; Password = p }\n")
    started = time.monotonic()
    proc = subprocess.run([str(dump_exe), "--find", "j9999", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    # The duplicate at the end is found through the index.
    assert proc.returncode == 1, proc.stdout[-500:]
    assert json.loads(proc.stdout) == [
        "error", 'bareos-dir.conf:100002: a second Client resource named '
        '"c4711" is not permitted (the first is at bareos-dir.conf:4713)']
    assert elapsed < 20, elapsed


def test_tests_carry_no_paths_of_one_machine():
    # tests/servers.py and these modules once defaulted the build directory
    # and the test data to the development machine's paths: on any other
    # checkout ten tests skipped.
    needle = "/" + "work/"  # not spelt out, so that this file passes too
    for path in sorted((ROOT / "tests").rglob("*")):
        if path.suffix in (".py", ".c", ".h", ".conf", ".inc"):
            assert needle not in path.read_text(errors="replace"), path
