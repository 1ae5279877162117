"""`make demo-stop` (local_stack down) says what it stopped, with the PIDs."""

from __future__ import annotations

import pathlib

import pytest

from standins import local_stack as st
from standins.pidfiles import running_pid, start


@pytest.mark.slow  # starts a real process of the stack (the web server) and stops it by PID
def test_down_names_every_process_it_stopped_with_its_pid(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEDIMG_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setenv("FEDIMG_DEMO_PORT", "5480")  # a block of its own; nothing is contacted
    stack = st.Stack.from_env()
    www = next(s for s in st.services(stack) if s.name == "www")
    pid = start(stack, www)
    assert running_pid(stack, "www") == pid

    assert st.main(["down"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"stopped www (pid {pid})"
    assert out[-1].startswith("stack down: stopped 1 processes")
    assert str(stack.root) in out[-1]
    assert running_pid(stack, "www") is None and not pathlib.Path(f"/proc/{pid}").exists() or \
        pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"

    assert st.main(["down"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"stack down: nothing of the stack in {stack.root} was running")
