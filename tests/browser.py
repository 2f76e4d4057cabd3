"""Headless Chromium driven over its DevTools pipe, for the tests of what a person looks at.

No driver library: Chromium's `--remote-debugging-pipe` speaks the DevTools protocol as
NUL-separated JSON on file descriptors 3 (commands) and 4 (events and replies). The browser
runs with the network disabled (a proxy that answers nothing, no DNS), so a page that tried
to fetch a font, a script or an image from outside shows it as a request in the log.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

CHROMIUM = next(
    (
        p
        for p in (
            "/usr/lib/chromium/chromium",
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
        )
        if p and Path(p).exists()
    ),
    None,
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
    # Network disabled: every connection goes to a closed port, no name resolves.
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1200,1600",
    "--remote-debugging-pipe",
]
# A chart's data marks are drawn in the palette's colours; axes, grid and text are grey.
SATURATED = 80


def saturated_pixels(image: Image.Image) -> int:
    saturation = image.convert("RGB").convert("HSV").getchannel("S")
    return sum(saturation.point(lambda v: 255 if v >= SATURATED else 0).histogram()[255:])


def blank_fraction(image: Image.Image) -> float:
    grey = image.convert("L")
    return sum(grey.histogram()[250:]) / (grey.width * grey.height)


@dataclass
class PageVisit:
    """What the browser did with a page: every request, a full screenshot, each chart."""

    requests: list[str]
    screenshot: bytes
    # chart id -> coloured pixels painted inside the box of its data marks
    charts: dict[str, int] = field(default_factory=dict)

    def outside_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:"))]


# The union of the boxes of a chart's data marks (not its legend, axes or title).
_MARKS_BOX = """
(() => {
  const out = {};
  for (const figure of document.querySelectorAll('figure.graphique')) {
    let box = null;
    for (const g of figure.querySelectorAll('svg g.role-mark')) {
      if (g.closest('.role-legend, .role-axis, .role-title')) continue;
      const r = g.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      box = box ? [Math.min(box[0], r.left), Math.min(box[1], r.top),
                   Math.max(box[2], r.right), Math.max(box[3], r.bottom)]
                : [r.left, r.top, r.right, r.bottom];
    }
    out[figure.id] = box && [box[0] + window.scrollX, box[1] + window.scrollY,
                             box[2] - box[0], box[3] - box[1]];
  }
  return JSON.stringify(out);
})()
"""


class _Pipe:
    def __init__(self, commands: int, replies: int) -> None:
        self.commands, self.replies = commands, replies
        self.buffer = b""
        self.counter = 0
        self.events: list[dict[str, Any]] = []

    def receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        reply: dict[str, Any] = json.loads(message)
        return reply

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.counter += 1
        message: dict[str, Any] = {"id": self.counter, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            reply = self.receive(deadline)
            if reply.get("id") == self.counter:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self.receive(deadline))


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


def visit(page: Path) -> PageVisit:
    """Open `page` in headless Chromium, network disabled; screenshot it whole and each
    chart's data marks."""
    assert CHROMIUM is not None
    # Above 10, so that putting them on 3 and 4 in the child cannot overwrite one another.
    to_browser_r, to_browser_w = (_high(fd) for fd in os.pipe())
    from_browser_r, from_browser_w = (_high(fd) for fd in os.pipe())
    with tempfile.TemporaryDirectory() as profile:
        # Chromium reads commands on fd 3 and writes on fd 4.
        process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=lambda: (os.dup2(to_browser_r, 3), os.dup2(from_browser_w, 4)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Network", "Runtime"):
                pipe.call(f"{domain}.enable", session)
            pipe.call("Page.navigate", session, url=page.as_uri())
            pipe.wait_for("Page.loadEventFired")
            metrics = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]
            shot = pipe.call(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={
                    "x": 0,
                    "y": 0,
                    "width": metrics["width"],
                    "height": metrics["height"],
                    "scale": 1,
                },
            )
            boxes = json.loads(
                pipe.call("Runtime.evaluate", session, expression=_MARKS_BOX)["result"]["value"]
            )
            charts = {}
            for chart, box in boxes.items():
                if box is None:
                    charts[chart] = 0
                    continue
                x, y, width, height = box
                png = pipe.call(
                    "Page.captureScreenshot",
                    session,
                    format="png",
                    captureBeyondViewport=True,
                    clip={
                        "x": x,
                        "y": y,
                        "width": max(width, 1),
                        "height": max(height, 1),
                        "scale": 1,
                    },
                )
                charts[chart] = saturated_pixels(
                    Image.open(io.BytesIO(base64.b64decode(png["data"])))
                )
            requests = [
                e["params"]["request"]["url"]
                for e in pipe.events
                if e.get("method") == "Network.requestWillBeSent"
            ]
            return PageVisit(requests, base64.b64decode(shot["data"]), charts)
        finally:
            try:
                pipe.call("Browser.close")
            except (RuntimeError, EOFError, TimeoutError, OSError):
                process.kill()
            process.wait(timeout=30)
            os.close(to_browser_w)
            os.close(from_browser_r)
