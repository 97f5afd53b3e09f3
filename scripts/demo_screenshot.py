"""Start `python -m unetskip demo`, open it in headless Chromium, upload a photo, wait for the result and save
a screenshot of the page. Prints the time from upload to overlay (as the browser sees it) and the server's
memory (resident now and at its peak).

    python scripts/demo_screenshot.py --ckpt_path A.ckpt [--compare_ckpt_path B.ckpt] --image photo.jpg \\
        [--output docs/demo.png] [--mode resize] [--examples DIR] [--width 1600]

Needs Debian's Chromium and its driver (`apt-get install -y chromium chromium-driver`) and Selenium
(`pip install selenium`); neither is a dependency of the project.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless Chromium that asks no other site for anything (updates, sync, QUIC probes).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
STARTUP_SECONDS = 300
RESULT_SECONDS = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo(arguments: argparse.Namespace, port: int, log: Path) -> subprocess.Popen:
    """The demo on 127.0.0.1:`port`, its output in `log`; returns once the page answers."""
    command = [
        sys.executable,
        "-m",
        "unetskip",
        "demo",
        "--ckpt_path",
        arguments.ckpt_path,
        "--port",
        str(port),
    ]
    if arguments.compare_ckpt_path:
        command += ["--compare_ckpt_path", arguments.compare_ckpt_path]
    command += ["--mode", arguments.mode]
    if arguments.examples:
        command += ["--examples", arguments.examples]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    }
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"error: the demo did not start:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return process
        except OSError:
            time.sleep(1)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of process `pid`, in KiB (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def screenshot(url: str, image: Path, output: Path, width: int) -> float:
    """Uploads `image` on the page at `url`, waits for every output image, saves the page to `output`.

    Returns the seconds from handing the file to the page to the first overlay shown."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="demo-chromium-") as profile:
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},1000"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            driver.get(url)
            wait = WebDriverWait(driver, RESULT_SECONDS, poll_frequency=0.05)
            upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#photo input[type=file]"))
            started = time.perf_counter()
            upload.send_keys(str(image.resolve()))
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay-0 img"))
            seconds = time.perf_counter() - started
            outputs = driver.find_elements(By.CSS_SELECTOR, "[id^=overlay-], [id^=mask-], #disagreement")
            wait.until(
                lambda d: (
                    len(
                        d.find_elements(
                            By.CSS_SELECTOR, "[id^=overlay-] img, [id^=mask-] img, #disagreement img"
                        )
                    )
                    == len(outputs)
                )
            )
            wait.until(lambda d: d.execute_script("return [...document.images].every(i => i.complete)"))
            for _ in range(3):  # the page reflows at a new window size: until it fits
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(width, height + 120)
                time.sleep(1)
            output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(output))
            print(f"page message: {driver.find_element(By.ID, 'message').text}")
        finally:
            driver.quit()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--compare_ckpt_path")
    parser.add_argument("--image", required=True, type=Path, help="The photo to upload.")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "demo.png")
    parser.add_argument("--mode", default="resize", choices=("resize", "native", "tiled"))
    parser.add_argument(
        "--examples", help="A folder of example images for the page (--examples of the demo)."
    )
    parser.add_argument("--width", type=int, default=1600, help="Browser window width in pixels.")
    arguments = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="demo-screenshot-") as folder:
        log = Path(folder) / "demo.log"
        process = start_demo(arguments, port, log)
        try:
            print(f"demo started; server memory before the upload: {memory_kib(process.pid)} KiB")
            seconds = screenshot(
                f"http://127.0.0.1:{port}/", arguments.image, arguments.output, arguments.width
            )
            print(f"upload to overlay: {seconds:.2f} s ({arguments.image}, {arguments.mode} mode)")
            print(f"server memory after: {memory_kib(process.pid)} KiB (VmRSS now, VmHWM peak)")
            print(f"screenshot: {arguments.output}")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
