"""Screenshot the Dagster asset graph into docs/ with headless Chromium and chromedriver
(Debian: chromium, chromium-driver; Python: selenium, a docs-only tool not in the project's
dependencies). Run after `make demo`; it starts and stops `lambda-features ui` itself.

    python scripts/screenshot_ui.py [docs/asset-graph.png]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("PORT", "3917"))


def main(out: Path) -> None:
    ui = subprocess.Popen(
        [str(REPO / ".venv/bin/lambda-features"), "ui", "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(120):
            try:
                if requests.get(f"http://127.0.0.1:{PORT}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(1)
        opts = webdriver.ChromeOptions()
        # a small scale on a large window fits the whole unfolded graph
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=3600,2000",
            "--force-device-scale-factor=0.5",
        ):
            opts.add_argument(arg)
        driver = webdriver.Chrome(options=opts)
        try:
            driver.get(f"http://127.0.0.1:{PORT}/asset-groups")
            time.sleep(8)
            for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                button.click()  # the first-visit community dialog
            for _ in range(8):  # the graph opens with its groups folded: unfold each
                folded = driver.find_elements(By.XPATH, "//*[@aria-label='unfold_more']")
                if not folded:
                    break
                driver.execute_script("arguments[0].click()", folded[0])  # also when scrolled out of view
                time.sleep(2)
            driver.refresh()  # the UI remembers the unfolded groups and fits the graph on load
            time.sleep(10)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(60)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "asset-graph.png")
