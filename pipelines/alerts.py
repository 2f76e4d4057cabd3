"""Alerts: what a refresh nobody watches must tell someone.

The monthly cycle runs unattended: a refresh that failed, a publication a gate blocked, or a
partner's delivery its suite held back is only seen today by whoever reads the terminal or
`tranquillity status`. So each of these writes an alert, the same JSON object to every sink:
a line appended to `$TRANQUILLITY_HOME/alerts.jsonl` (the history, readable by any monitoring),
a log record (WARNING, ERROR for a failure), and, when `TRANQUILLITY_ALERT_URL` is set, an HTTP
POST of the JSON to it (a chat webhook, a ticketing system). An alert is a side effect of the
refresh, never its outcome: a receiver that is down is logged and noted in the line, and the
refresh goes on to report and exit as it would have.

A held delivery (ledger statut `bloquee`) stays waiting, and is examined again, at every
refresh until a newer delivery replaces it; it is alerted once, at the first refresh that sees
it held, which the file of alerts remembers (a failed refresh that had held one before failing
leaves it to the next refresh, which then alerts it).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipelines.settings import ALERT_URL, Home

if TYPE_CHECKING:
    from pipelines.refresh import RefreshOutcome

# Seconds an alert receiver gets to answer: a refresh is not held up by a slow receiver.
POST_TIMEOUT = 5.0
# Blocking checks named in a `publication_blocked` alert (all of them are in audit.controles).
CHECKS_LISTED = 10

_log = logging.getLogger(__name__)


class Kind(StrEnum):
    """What went wrong (docs/operations.md, "Alerts")."""

    REFRESH_FAILED = "refresh_failed"
    PUBLICATION_BLOCKED = "publication_blocked"
    DELIVERY_HELD = "delivery_held"


@dataclass(frozen=True)
class Alert:
    """One alert: the JSON line written to alerts.jsonl and POSTed, as it is sent."""

    kind: Kind
    message: str
    run_id: str
    log: str
    # What the alert is about: the file and reason, the failed step and error, the checks.
    details: dict[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def as_json(self) -> str:
        """One line of JSON, `time` first (the body of the POST)."""
        record = {"time": self.time} | asdict(self)
        return json.dumps(record, ensure_ascii=False, default=str)

    @property
    def level(self) -> int:
        return logging.ERROR if self.kind is Kind.REFRESH_FAILED else logging.WARNING


def alerts_of(outcome: RefreshOutcome, already_held: Iterable[str] = ()) -> list[Alert]:
    """The alerts a classified refresh raises; a held delivery whose file is in
    `already_held` (alerted by an earlier refresh) is not alerted again."""
    from pipelines.refresh import Verdict

    run = outcome.run
    base = {"run_id": run.run_id, "log": str(run.log)}
    alerts: list[Alert] = []
    if outcome.verdict is Verdict.FAILED:
        step = outcome.failed_step or "refresh"
        error = outcome.error or outcome.summary_error or "unknown error"
        alerts.append(
            Alert(
                Kind.REFRESH_FAILED,
                _one_line(
                    f"refresh {run.run_id[:8]} failed at step {step}: {error}; nothing was "
                    f"published (full log: {run.log})"
                ),
                details={"step": step, "error": error, "other_failures": outcome.other_failures},
                **base,
            )
        )
    elif outcome.verdict is Verdict.BLOCKED:
        blocking = outcome.blocking
        named = ", ".join(f"{c.controle} on {c.cible or '-'}" for c in blocking[:3])
        more = f" and {len(blocking) - 3} more" if len(blocking) > 3 else ""
        alerts.append(
            Alert(
                Kind.PUBLICATION_BLOCKED,
                _one_line(
                    f"refresh {run.run_id[:8]} blocked: {len(blocking)} blocking check(s) "
                    f"failed ({named}{more}); nothing was published, the previous "
                    "publication stays current"
                ),
                details={
                    "blocking_checks": len(blocking),
                    "checks": [
                        {
                            "controle": c.controle,
                            "cible": c.cible,
                            "statut": c.statut,
                            "nb_echecs": c.nb_echecs,
                        }
                        for c in blocking[:CHECKS_LISTED]
                    ],
                    "data_docs": str(outcome.data_docs) if outcome.data_docs else None,
                },
                **base,
            )
        )
    known = set(already_held)
    for fichier, motif in outcome.news.blocked if outcome.news else []:
        if fichier in known:
            continue
        known.add(fichier)
        alerts.append(
            Alert(
                Kind.DELIVERY_HELD,
                _one_line(
                    f"delivery {fichier} held by its quality suite, not loaded until a "
                    f"corrected file replaces it: {motif}"
                ),
                details={"fichier": fichier, "motif": motif},
                **base,
            )
        )
    return alerts


def held_alerted(home: Home) -> set[str]:
    """Files whose holding was already alerted (the `delivery_held` lines of alerts.jsonl)."""
    try:
        text = home.alerts.read_text(encoding="utf-8", errors="replace")
    except OSError:  # none yet (or unreadable: then a held delivery is said again)
        return set()
    files = set()
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short (a full disk): the others still count
            continue
        if isinstance(record, dict) and record.get("kind") == Kind.DELIVERY_HELD:
            fichier = (record.get("details") or {}).get("fichier")
            if fichier:
                files.add(str(fichier))
    return files


def emit(home: Home, alerts: Iterable[Alert], url: str | None = None) -> list[dict[str, Any]]:
    """Send each alert to every sink: logged, POSTed to `url` (default: the setting
    `TRANQUILLITY_ALERT_URL`), appended to alerts.jsonl with what became of the POST.

    Never raises for a sink: a receiver that fails is logged, noted in the line (`post`),
    and not tried again for the alerts that follow in this call (each would wait for the
    timeout). Returns the lines written."""
    url = url if url is not None else ALERT_URL.value()
    written: list[dict[str, Any]] = []
    receiver_down: str | None = None
    for alert in alerts:
        _log.log(alert.level, "alert %s: %s", alert.kind.value, alert.message)
        body = alert.as_json()
        record = json.loads(body)
        if url:
            if receiver_down is None:
                receiver_down = _post(url, body)
                record["post"] = "ok" if receiver_down is None else f"failed: {receiver_down}"
            else:
                record["post"] = f"not sent: an earlier post failed ({receiver_down})"
        line = json.dumps(record, ensure_ascii=False, default=str)
        try:
            home.alerts.parent.mkdir(parents=True, exist_ok=True)
            with home.alerts.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            _log.error("alert %s not written to %s: %s", alert.kind.value, home.alerts, exc)
        written.append(record)
    return written


def _post(url: str, body: str) -> str | None:
    """POST the JSON; None when the receiver took it, else why not (one line, no URL: a
    webhook's address often holds its secret)."""
    if not url.lower().startswith(("http://", "https://")):
        reason = "the alert URL is not http(s)"
    else:
        request = urllib.request.Request(
            url,
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            reason = str(exc.reason)
        except (OSError, ValueError) as exc:  # a timeout while reading, a malformed URL
            reason = f"{type(exc).__name__}: {exc}"
    _log.error("alert not delivered to %s: %s", ALERT_URL.variable, reason)
    return _one_line(reason)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
