"""Programs the tests need from Debian, installed with apt-get when missing.

CI runs on a clean machine as root, so a test set-up installs what it needs
itself; the dpkg lock is waited for, since several set-ups may install at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def apt_install(package: str, binary: str | None = None) -> None:
    """Install Debian's ``package`` unless ``binary`` (when given) is already on PATH."""
    if binary is not None and shutil.which(binary) is not None:
        return
    if os.geteuid() != 0:
        pytest.skip(f"{package} is missing and installing it needs root (apt-get install)")
    if shutil.which("apt-get") is None:
        pytest.skip(f"{package} is missing and there is no apt-get to install it")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]
    for command in (
        ["apt-get", *wait_for_lock, "update", "-qq"],
        ["apt-get", *wait_for_lock, "install", "-y", "-qq", "--no-install-recommends", package],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
