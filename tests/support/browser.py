"""A headless browser for tests: Debian's Chromium driven by Playwright (no browser download).

`ensure_chromium()` makes sure /usr/bin/chromium exists: it runs `apt-get install -y chromium` when
it is missing and the tests run as root, and fails with the command to run otherwise. Playwright's
own browser download (`playwright install`) is not used: Playwright launches that executable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by the fixture, so collection still works and says what is missing
    expect = sync_playwright = None

CHROMIUM = Path(os.environ.get("MODELGATE_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
               "--disable-dev-shm-usage", "--no-first-run"]


def ensure_chromium() -> Path:
    """The Chromium executable, installed with apt-get if missing (root only); pytest.fail otherwise."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium first (sudo apt-get install -y chromium)",
                    pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:  # the package lists may be missing on a fresh machine
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
        result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], env=env,
                                capture_output=True, text=True)
    if result.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(f"apt-get install -y chromium failed ({result.returncode}):\n{result.stderr[-2000:]}",
                    pytrace=False)
    return CHROMIUM


@contextmanager
def launch_chromium(executable: Path | None = None) -> Iterator[Any]:
    """A headless Chromium browser (Playwright's Browser) for the block."""
    executable = executable or ensure_chromium()
    if sync_playwright is None:
        pytest.fail("playwright is not installed in the venv (requirements lock: playwright==1.65.2)", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """/usr/bin/chromium, checked (and installed with apt-get when missing and root) once per session."""
    return ensure_chromium()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """A headless Chromium for one test module (closed after it, so later modules don't carry it)."""
    with launch_chromium(chromium) as b:
        yield b
