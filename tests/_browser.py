"""Debian's headless Chromium for the web UI's tests: where it is, and one driver per module."""

from __future__ import annotations

import os
import shutil
from typing import Any, Iterator

import pytest

__all__ = ["CHROMIUM", "DRIVER", "MISSING", "chromium"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
# the skip every browser test module takes where the browser is not installed
MISSING = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them with apt-get)")


def chromium(size: str = "1400,900") -> Iterator[Any]:
    """A headless Chromium driver at ``size``, quit when the caller's fixture ends."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={size}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()
