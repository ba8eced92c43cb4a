"""Screenshot the `stream_job` asset's observations in the Dagster UI into docs/ (headless Chromium and
chromedriver, scripts/dagster_browser.py). It runs the real thing in a home of its own: the
local services, the deployed stream job, events at a steady pace, and every 10 s the observation
the supervisor sensor records (orchestration/sensors.py), for MINUTES minutes; then it opens the
asset's overview with its metadata as plots, and stops everything it started.

    python scripts/screenshot_stream_observations.py [docs/stream-job-observations.png]
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from dagster_browser import REPO, dagster_browser, open_page
from selenium.webdriver.common.by import By

sys.path.insert(0, str(REPO))

from common.kafka import ensure_topics, producer  # noqa: E402
from common.services import local_services  # noqa: E402
from common.settings import load_settings  # noqa: E402
from features.adapters import to_json  # noqa: E402
from features.generator import GeneratorConfig, generate  # noqa: E402
from orchestration.instance import dagster_instance  # noqa: E402
from orchestration.sensors import observation  # noqa: E402
from streaming.deployment import StreamDeployment  # noqa: E402

PORT = int(os.environ.get("PORT", "3918"))
MINUTES = float(os.environ.get("MINUTES", "4"))
RATE = 500  # events per second


def feed(settings, stop: threading.Event) -> None:
    """Events with the wall clock as event time, RATE per second, until stop."""
    p = producer(settings)
    events = generate(GeneratorConfig(seed=1), 10**9, live=True)
    while not stop.is_set():
        started = time.monotonic()
        for _ in range(RATE // 10):
            e = next(events)
            p.produce(settings.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
        p.poll(0)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
    p.flush(30)


def screenshot(home: Path, out: Path) -> None:
    """The asset's overview, its metadata shown as plots over the observations."""
    env = os.environ | {"LAMBDA_FEATURES_HOME": str(home)}
    with dagster_browser(PORT, ("--window-size=1600,2400",), env) as driver:
        open_page(driver, f"http://127.0.0.1:{PORT}/assets/stream_job")
        [plots] = driver.find_elements(By.XPATH, "//button[normalize-space()='Plots']")
        driver.execute_script("arguments[0].scrollIntoView()", plots)
        plots.click()
        time.sleep(6)
        driver.save_screenshot(str(out))


def main(out: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="lf-plots-"))
    os.environ["LAMBDA_FEATURES_HOME"] = str(home)
    settings = load_settings()
    services = local_services(settings)
    deployment = StreamDeployment(settings)
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(settings, stop), daemon=True)
    try:
        for svc in services:
            svc.start()
        ensure_topics(settings, [settings.kafka.events_topic], settings.kafka.partitions)
        feeder.start()
        print("stream job:", deployment.deploy().action)
        instance = dagster_instance(settings)
        deadline = time.monotonic() + MINUTES * 60
        while time.monotonic() < deadline:
            instance.report_runless_asset_event(observation(deployment.status()))
            time.sleep(10)
        screenshot(home, out)
    finally:
        stop.set()
        feeder.join(60)
        deployment.stop(savepoint=False)
        for svc in services:
            svc.stop()
    print(f"wrote {out} (home {home})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "stream-job-observations.png")
