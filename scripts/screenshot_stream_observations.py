"""Screenshot the `stream_job` asset's observations in the Dagster UI into docs/ (headless Chromium and
chromedriver, as scripts/screenshot_ui.py). It runs the real thing in a home of its own: the
local services, the deployed stream job, events at a steady pace, and every 10 s the observation
the supervisor sensor records (orchestration/sensors.py), for MINUTES minutes; then it opens the
asset's events and stops everything it started.

    python scripts/screenshot_stream_observations.py [docs/stream-job-observations.png]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parent.parent
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
    env = os.environ | {"LAMBDA_FEATURES_HOME": str(home)}
    ui = subprocess.Popen(
        [str(REPO / ".venv/bin/lambda-features"), "ui", "--port", str(PORT)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                if requests.get(f"http://127.0.0.1:{PORT}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(1)
        opts = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1800"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(options=opts)
        try:
            driver.get(f"http://127.0.0.1:{PORT}/assets/stream_job?view=events")
            time.sleep(8)
            for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                button.click()  # the first-visit community dialog
            time.sleep(6)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(60)


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
