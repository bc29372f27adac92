"""`python -m model train` on a terminal: a live progress bar (the plain lines that a
pipe gets are checked in test_cli.py)."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ARGS = ("train", "--max-epochs", "400", "--tolerance", "0", "--seed", "1")


def _run_in_a_terminal(out: Path) -> tuple[int, str]:
    """Run the command with stdout and stderr on a pseudo-terminal of 100 columns."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "model", *ARGS, "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_progress_bar(tmp_path: Path) -> None:
    code, screen = _run_in_a_terminal(tmp_path / "model")
    assert code == 0, screen
    assert "400/400" in screen and "epoch/s" in screen and "%|" in screen, screen
    assert "\r" in screen  # redrawn in place
    assert "loss=" in screen and "train_accuracy=" in screen
    assert "epoch 400/400  loss" not in screen  # not the plain lines
    assert '"test_accuracy"' in screen  # the final metrics still follow
    assert (tmp_path / "model" / "manifest.json").exists()
