"""`lambda-features ui` opened in headless Chromium (Debian: chromium, chromium-driver; Python:
selenium, a docs-only tool not in the project's dependencies), for the screenshot scripts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def dagster_browser(port: int, chrome_args: tuple[str, ...], env: dict[str, str] | None = None) -> Iterator:
    """Start the UI on 127.0.0.1:port, wait for it, and yield a Chrome driver; stop both after."""
    ui = subprocess.Popen(
        [str(REPO / ".venv/bin/lambda-features"), "ui", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(1)
        opts = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", *chrome_args):
            opts.add_argument(arg)
        driver = webdriver.Chrome(options=opts)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(60)


def open_page(driver, url: str) -> None:
    """Open url and dismiss the first-visit community dialog."""
    driver.get(url)
    time.sleep(8)
    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        button.click()
