"""The shim's load/unload life: unload during a plugin call, plugin threads
that outlive their job, through the real shim."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from shimutil import BUILD, Site


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_unload_while_a_job_is_inside_the_plugin(plugin_dir, tmp_path, mode):
    flag = tmp_path / "inside"
    (tmp_path / "slow.py").write_text(f"""
import bareosdir, time
def load_bareos_plugin(d):
    bareosdir.RegisterEvents([4])
    return 0
def parse_plugin_definition(d): return 0
def handle_plugin_event(e):
    open({str(flag)!r}, "w").close()
    time.sleep(4)
    bareosdir.JobMessage(bareosdir.M_INFO, "slow event done")
    return 0
""")
    opts = f"python:module_path={tmp_path}:module_name=slow:interpreter={mode}"
    env = dict(os.environ, BAREOSDIR_UNLOAD_WAIT="0.3")
    t0 = time.monotonic()
    r = subprocess.run([str(BUILD / "shim_unload_race"), str(plugin_dir), opts,
                        str(flag)], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    took = float(r.stdout.split("unload returned after ")[1].split()[0])
    # Bounded by BAREOSDIR_UNLOAD_WAIT (0.3 s, plus finalizing), not by the
    # 4 s call; the margin is for loaded CI machines and sanitizer builds.
    assert took < 3
    assert "slow event done" in r.stdout
    assert "event returned 0" in r.stdout and "clean exit" in r.stdout
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_plugin_thread_calling_after_its_job(plugin_dir, tmp_path, mode):
    out = tmp_path / "late.txt"
    site = Site(tmp_path, plugin_dir)
    name = site.write_plugin("leaver", f"""
        import bareosdir, os, threading, time
        OUT = {str(out)!r}
        def late():
            time.sleep(0.3)
            try:
                bareosdir.GetValue(bareosdir.bDirVarJobId)
                text = "no error"
            except RuntimeError as e:
                text = str(e)
            with open(OUT + ".tmp", "w") as f:
                f.write(text)
            os.rename(OUT + ".tmp", OUT)
        def load_bareos_plugin(d):
            if bareosdir.GetValue(bareosdir.bDirVarJobId) == 1:
                threading.Thread(target=late, daemon=True).start()
            bareosdir.RegisterEvents([2])
            return 0
        def parse_plugin_definition(d): return 0
        def handle_plugin_event(e):
            # The last job keeps the process alive until the thread of the
            # first one has made its late call (bounded).
            if bareosdir.GetValue(bareosdir.bDirVarJobId) == 3:
                deadline = time.monotonic() + 20
                while not os.path.exists(OUT) and time.monotonic() < deadline:
                    time.sleep(0.02)
            return 0
    """)
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}",
                        ], name=f"c-{mode}")
    # The sim runs one more job after, so the thread is still alive while
    # the first job's interpreter is released.
    r = site.run(conf, "--jobs", "3", env={"BAREOSDIR_THREAD_WAIT": "0.1"})
    assert r.returncode == 0, r.all_output
    assert "no Bareos Director context" in out.read_text()


@pytest.mark.parametrize("mode,count", [("isolated", 300), ("main", 1000)])
def test_many_instances_held_at_once(plugin_dir, mode, count):
    """Director scale: every instance loaded and started before any ends
    (class-based plugin), then all end: no failure, no deadlock."""
    opts = f"python:module_name=bareos-dir-class-plugin:interpreter={mode}"
    r = subprocess.run([str(BUILD / "bareosdir-bench"), "hold", str(plugin_dir),
                        str(count), opts], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{count} instances held at once" in r.stdout and "no failure" in r.stdout
