"""Screenshot the Dagster asset graph into docs/ with headless Chromium and chromedriver
(scripts/dagster_browser.py). Run after `make demo`; it starts and stops `lambda-features ui` itself.

    python scripts/screenshot_ui.py [docs/asset-graph.png]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dagster_browser import REPO, dagster_browser, open_page
from selenium.webdriver.common.by import By

PORT = int(os.environ.get("PORT", "3917"))


def main(out: Path) -> None:
    # a small scale on a large window fits the whole unfolded graph
    with dagster_browser(PORT, ("--window-size=3600,2000", "--force-device-scale-factor=0.5")) as driver:
        open_page(driver, f"http://127.0.0.1:{PORT}/asset-groups")
        for _ in range(8):  # the graph opens with its groups folded: unfold each
            folded = driver.find_elements(By.XPATH, "//*[@aria-label='unfold_more']")
            if not folded:
                break
            driver.execute_script("arguments[0].click()", folded[0])  # also when scrolled out of view
            time.sleep(2)
        driver.refresh()  # the UI remembers the unfolded groups and fits the graph on load
        time.sleep(10)
        driver.save_screenshot(str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "asset-graph.png")
