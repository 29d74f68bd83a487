"""Job values of the mock Director (bareosdir.testing): level names, the
run time a job takes between JobRun and JobEnd."""

import time

import pytest

import bareosdir
from bareosdir.testing import Director


def test_level_names_and_a_wrong_one():
    with Director() as d:
        job = d.job("j")
        for name, code in (("Full", "F"), ("incremental", "I"),
                           ("DIFFERENTIAL", "D"), ("VirtualFull", "f"),
                           ("Base", "B"), ("Since", "S"), ("F", "F")):
            job.set(level=name)
            assert job.get(bareosdir.bDirVarLevel) == ord(code), name
        # Once "level must be one character", though "Full" is accepted.
        with pytest.raises(ValueError) as e:
            job.set(level="Fulll")
        assert str(e.value) == (
            "level must be one character (F, I, D, f, B, S, ...) or one of "
            "Full, Incremental, Differential, VirtualFull, Base, Since (any "
            "case), not 'Fulll'")


def test_run_time_is_waited_between_jobrun_and_jobend():
    with Director() as d:
        started = time.monotonic()
        d.job("j").run([], run_time=0.2)
        assert time.monotonic() - started >= 0.2
        with pytest.raises(ValueError):
            d.job("k").run([], run_time=-1)
