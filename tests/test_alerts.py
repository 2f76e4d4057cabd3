"""Alerts reach every sink, never stop a refresh, and say each held delivery once.

The receiver is a real HTTP server on 127.0.0.1 (a thread, a free port); the refresh outcomes
are built by hand for each case, so no Dagster run is needed.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipelines.alerts import Alert, Kind, alerts_of, emit, held_alerted
from pipelines.audit import CheckOutcome
from pipelines.refresh import DeliveryNews, RefreshOutcome, RefreshRun, Verdict
from pipelines.settings import ALERT_URL, Home

RUN_ID = "8b4807da-0000-4000-8000-000000000000"


class Receiver:
    """An alert receiver: records each POST (path, headers, body), answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[str, str, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.posts.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def _closed_port() -> str:
    """A URL on the loopback where nothing listens (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _run(tmp_path: Path) -> RefreshRun:
    started = datetime(2026, 11, 26, 10, 38, tzinfo=UTC)
    return RefreshRun(
        run_id=RUN_ID, log=tmp_path / "logs" / "refresh.log", started=started, finished=started
    )


def _news(blocked: list[tuple[str, str]]) -> DeliveryNews:
    return DeliveryNews(
        rejected=[], blocked=blocked, remarks=[], quarantined=[], quarantined_pairs=0, ignored=[]
    )


HELD = (
    "landlord/HMP_patrimoine_2025.csv",
    "bloquée par livraisons_landlord.patrimoine_stable_sur_un_an\n(ratio_periode_precedente = 0.4)",
)


def _alert(kind: Kind = Kind.DELIVERY_HELD, fichier: str = HELD[0]) -> Alert:
    return Alert(
        kind,
        f"delivery {fichier} held",
        RUN_ID,
        "/h/logs/refresh.log",
        details={"fichier": fichier, "motif": "m"},
    )


# -- deriving the alerts of a refresh ------------------------------------------------------


def test_failed_refresh_raises_one_alert_with_step_and_error(tmp_path: Path) -> None:
    outcome = RefreshOutcome(
        _run(tmp_path),
        Verdict.FAILED,
        failed_step="landlord_raw",
        error="IOException: Could not set lock on file",
        other_failures=2,
    )
    [alert] = alerts_of(outcome)
    assert alert.kind is Kind.REFRESH_FAILED and alert.run_id == RUN_ID
    assert alert.log == str(tmp_path / "logs" / "refresh.log")
    assert alert.details == {
        "step": "landlord_raw",
        "error": "IOException: Could not set lock on file",
        "other_failures": 2,
    }
    assert "failed at step landlord_raw: IOException" in alert.message
    # Nothing published and no failed step: still a failure, with the reason found.
    silent = RefreshOutcome(_run(tmp_path), Verdict.FAILED, error="nothing published")
    [alert] = alerts_of(silent)
    assert alert.details["step"] == "refresh" and alert.details["error"] == "nothing published"


def test_blocked_refresh_names_its_blocking_checks_and_newly_held_deliveries(
    tmp_path: Path,
) -> None:
    checks = [
        CheckOutcome("livraisons_landlord.aucune_livraison_bloquee", "gx", "raw", True, "fail", 1),
        CheckOutcome("not_null_x", "dbt_test", "marts.t", True, "fail", 3),
        CheckOutcome("w", "gx", "marts.t", False, "warn", 5),  # a warning blocks nothing
        CheckOutcome("p", "gx", "marts.t", True, "pass", 0),
    ]
    older = ("police/SSMSI_2025.csv", "bloquée par livraisons_police.x")
    outcome = RefreshOutcome(
        _run(tmp_path),
        Verdict.BLOCKED,
        checks=checks,
        news=_news([older, HELD]),
        data_docs=tmp_path / "data_docs" / RUN_ID / "index.html",
    )
    found = alerts_of(outcome, already_held={older[0]})
    assert [a.kind for a in found] == [Kind.PUBLICATION_BLOCKED, Kind.DELIVERY_HELD]
    blocked, held = found
    assert blocked.details["blocking_checks"] == 2
    assert [c["controle"] for c in blocked.details["checks"]] == [
        "livraisons_landlord.aucune_livraison_bloquee",
        "not_null_x",
    ]
    assert blocked.details["data_docs"].endswith("index.html")
    assert "2 blocking check(s)" in blocked.message
    # The held delivery not alerted before: its file and reason; the message on one line.
    assert held.details == {"fichier": HELD[0], "motif": HELD[1]}
    assert HELD[0] in held.message and "\n" not in held.message
    assert "ratio_periode_precedente = 0.4" in held.message


def test_published_refresh_alerts_only_held_deliveries_not_yet_alerted(tmp_path: Path) -> None:
    published = RefreshOutcome(_run(tmp_path), Verdict.PUBLISHED, news=_news([HELD]))
    [alert] = alerts_of(published)
    assert alert.kind is Kind.DELIVERY_HELD
    assert alerts_of(published, already_held={HELD[0]}) == []
    clean = RefreshOutcome(_run(tmp_path), Verdict.PUBLISHED, news=_news([]))
    assert alerts_of(clean) == []


def test_a_held_delivery_is_alerted_at_one_refresh_only(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    outcome = RefreshOutcome(_run(tmp_path), Verdict.PUBLISHED, news=_news([HELD]))
    assert held_alerted(home) == set()
    emit(home, alerts_of(outcome, held_alerted(home)), url="")
    assert held_alerted(home) == {HELD[0]}
    # The next refresh finds it still held: nothing new to say.
    emit(home, alerts_of(outcome, held_alerted(home)), url="")
    assert len(home.alerts.read_text().splitlines()) == 1


# -- the sinks -----------------------------------------------------------------------------


def test_every_alert_is_a_line_of_the_file_a_log_record_and_the_post_body(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    home = Home(tmp_path / "h")
    sent = [
        _alert(Kind.REFRESH_FAILED),
        _alert(Kind.DELIVERY_HELD, "landlord/a.csv"),
        _alert(Kind.DELIVERY_HELD, "landlord/b.csv"),
    ]
    with caplog.at_level(logging.WARNING, logger="pipelines.alerts"):
        emit(home, sent, url=receiver.url)
    lines = [json.loads(line) for line in home.alerts.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3 == len(receiver.posts)
    for alert, line, (path, content_type, body) in zip(sent, lines, receiver.posts, strict=True):
        assert path == "/hook" and content_type.startswith("application/json")
        # The POST body is the alert's JSON line; the file adds what became of the POST.
        assert body.decode("utf-8") == alert.as_json()
        assert line == json.loads(body) | {"post": "ok"}
        assert {"time", "kind", "message", "run_id", "log", "details"} <= line.keys()
        assert datetime.fromisoformat(line["time"]).utcoffset() is not None
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert levels[0][0] == logging.ERROR and "refresh_failed" in levels[0][1]
    assert [lvl for lvl, _ in levels[1:]] == [logging.WARNING, logging.WARNING]
    assert "landlord/a.csv" in levels[1][1]


def test_no_url_no_post(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALERT_URL.variable, raising=False)
    home = Home(tmp_path / "h")
    [line] = emit(home, [_alert()])
    assert "post" not in line
    assert json.loads(home.alerts.read_text()) == line


def test_the_setting_names_the_receiver(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALERT_URL.variable, receiver.url)
    emit(Home(tmp_path / "h"), [_alert()])
    assert len(receiver.posts) == 1


def test_an_unreachable_receiver_is_logged_and_recorded_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = Home(tmp_path / "h")
    url = _closed_port()
    with caplog.at_level(logging.WARNING, logger="pipelines.alerts"):
        written = emit(
            home, [_alert(fichier="landlord/a.csv"), _alert(fichier="landlord/b.csv")], url
        )
    lines = [json.loads(line) for line in home.alerts.read_text().splitlines()]
    assert lines == written and len(lines) == 2
    assert lines[0]["post"].startswith("failed: ")
    # Once the receiver failed, the next alerts do not each wait for it.
    assert lines[1]["post"].startswith("not sent: an earlier post failed")
    failures = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    # The URL (a webhook's secret, often) is written nowhere.
    assert url not in home.alerts.read_text() and url not in caplog.text


def test_a_receiver_answering_an_error_is_a_failed_post(tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 500
    [line] = emit(Home(tmp_path / "h"), [_alert()], url=receiver.url)
    assert line["post"] == "failed: HTTP 500 Internal Server Error"
    assert len(receiver.posts) == 1
