"""What plugins and tests written for Bareos's own bareosdir module rely on:
the order of argument and context errors, constant dicts with bytes or str
keys, bound-method entry points (old and new form), and what
bareosdir.testing's job.events() answers."""

from __future__ import annotations

import pytest

import bareosdir
from bareosdir.testing import Director


# Bareos parses each function's argument format first (i|z, i, iO, O), then
# checks for a context, then looks at the contents.  Outside a job:
@pytest.mark.parametrize("call, error", [
    (lambda: bareosdir.GetValue(1), RuntimeError),
    (lambda: bareosdir.SetValue(2, 2), RuntimeError),
    (lambda: bareosdir.DebugMessage("text only"), TypeError),
    (lambda: bareosdir.DebugMessage(100, "text"), RuntimeError),
    (lambda: bareosdir.JobMessage("text only"), TypeError),
    (lambda: bareosdir.JobMessage(100, "text"), RuntimeError),
    (lambda: bareosdir.RegisterEvents(1), RuntimeError),
    (lambda: bareosdir.UnRegisterEvents(1), RuntimeError),
    (lambda: bareosdir.GetInstanceCount(), RuntimeError),
    # formats: counts and ints
    (lambda: bareosdir.GetValue(), TypeError),
    (lambda: bareosdir.GetValue("1"), TypeError),
    (lambda: bareosdir.SetValue(2), TypeError),
    (lambda: bareosdir.SetValue("2", 2), TypeError),
    (lambda: bareosdir.RegisterEvents(), TypeError),
    (lambda: bareosdir.DebugMessage(100, b"bytes"), TypeError),
    (lambda: bareosdir.GetInstanceCount(1), TypeError),
    # contents come after the context
    (lambda: bareosdir.SetValue(2, object()), RuntimeError),
    (lambda: bareosdir.UnRegisterEvents("not a sequence of ints"), RuntimeError),
])
def test_argument_errors_before_context_errors(call, error):
    with pytest.raises(error) as e:
        call()
    if error is RuntimeError:
        assert "no Bareos Director context" in str(e.value)


def test_contents_checked_inside_a_job(bareos_director):
    with bareos_director.job("BackupClient1").bind():
        with pytest.raises(TypeError):
            bareosdir.RegisterEvents(1)
        with pytest.raises(TypeError):
            bareosdir.SetValue(bareosdir.bwDirVarVolumeName, 2)
