"""Logs and metrics: one JSON line per event with the request's id, no secret, /metrics."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, Web, activated_account, link_in, log_in, make_account, outbox
from starlette.testclient import TestClient

from kb.config import Settings, SettingsError
from kb.helpdesk import notifications
from kb.logs import JsonFormatter, redact
from kb.testing import start_kb, stop, wait_until_up
from kb.web import request_log

Lines = Callable[[], list[dict[str, object]]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """What kb serve would print on stdout, parsed: every line must be one JSON object."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict[str, object]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def requests_logged(lines: Lines) -> list[dict[str, object]]:
    return [line for line in lines() if line["logger"] == "kb.request"]


def local(web: Web, address: str = "127.0.0.1") -> TestClient:
    """A client that comes from `address`, as uvicorn would report it."""
    client = TestClient(web.app, client=(address, 50000), follow_redirects=False)
    return client


def test_each_request_is_one_json_line(make_web: Callable[..., Web], json_lines: Lines) -> None:
    web = make_web(shipped=True)
    response = web.client.get("/articles/mot-de-passe-oublie")
    assert response.status_code == 200
    (line,) = requests_logged(json_lines)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))
    assert line["level"] == "info"
    assert line["message"] == "GET /articles/mot-de-passe-oublie 200"
    assert line["route"] == "/articles/{slug}"
    assert line["status"] == 200 and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_a_request_line_is_a_whole_log_record_for_any_handler(make_web: Callable[..., Web]) -> None:
    """The request line's record is copied from a first one (half the time): any handler an
    operator formats with still finds every attribute, right for this line, this thread and
    this process, and a forked child's lines name the child."""
    web = make_web(shipped=True)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(levelname)s|%(name)s|%(module)s|%(filename)s|%(process)d|%(message)s")
    )
    logger = logging.getLogger("kb.request")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    records: list[logging.LogRecord] = []
    handler.addFilter(lambda record: records.append(record) or True)
    try:
        before = time.time()
        web.client.get("/")
        web.client.get("/nulle-part")
        after = time.time()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert stream.getvalue().splitlines() == [
        f"INFO|kb.request|request_log|request_log.py|{os.getpid()}|GET / 200",
        f"INFO|kb.request|request_log|request_log.py|{os.getpid()}|GET /nulle-part 404",
    ]
    first, second = records
    assert before <= first.created <= second.created <= after
    assert second.relativeCreated - first.relativeCreated == pytest.approx(
        (second.created - first.created) * 1000, abs=0.01
    )
    assert (first.args, second.status) == (("GET", "/", 200), 404)
    assert first.thread and first.threadName and first.processName
    assert first.msecs == int((first.created - int(first.created)) * 1000)
    assert request_log._record(logging.INFO, ("GET", "/", 200), {}).process == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            made = request_log._record(logging.INFO, ("GET", "/", 200), {})
            os.write(write, str(made.process).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 100).decode() == str(child)
    os.close(read)


def test_a_proxy_request_id_is_kept_and_a_bad_one_replaced(
    make_web: Callable[..., Web], json_lines: Lines
) -> None:
    web = make_web(shipped=True)
    kept = web.client.get("/", headers={"x-request-id": "f3a9c2e1-proxy:42"})
    assert kept.headers["x-request-id"] == "f3a9c2e1-proxy:42"
    for forged in ('a" "level": "error', "<script>", "x" * 200, ""):
        answer = web.client.get("/", headers={"x-request-id": forged})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    ids = [line["request_id"] for line in requests_logged(json_lines)]
    assert ids[0] == "f3a9c2e1-proxy:42" and len(set(ids)) == 5


def test_lines_logged_during_a_request_carry_its_id_and_account(
    make_web: Callable[..., Web], database_url: str, json_lines: Lines
) -> None:
    web = make_web({}, database_url=database_url)
    account = activated_account(web)
    log_in(web)
    response = web.client.get("/tickets", headers={"x-request-id": "req-1234"})
    assert response.status_code == 200
    line = next(x for x in requests_logged(json_lines) if x["request_id"] == "req-1234")
    assert line["account_id"] == account.id and line["route"] == "/tickets"
    # kb's own info lines are kept, and name the request they belong to.
    web.client.post("/deconnexion", data={"csrf": web.client.cookies["kb_csrf"]})
    with web.services.engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, make_account(web, "0010001W"))
    web.services.mail_sender.deliver()
    assert any(x["logger"] == "kb.helpdesk.mail" and x["level"] == "info" for x in json_lines())


def test_single_use_links_never_reach_the_logs(
    make_web: Callable[..., Web], json_lines: Lines
) -> None:
    web = make_web({})
    account = make_account(web)
    with web.services.engine.begin() as connection:
        notifications.queue_activation(connection, web.settings, account)
    path = link_in(outbox(web)[-1])
    token = path.rsplit("/", 1)[1]
    assert len(token) > 20
    assert web.client.get(path).status_code == 200
    web.client.get(f"/confirmation-email/{token}?token={token}")
    text = json.dumps(json_lines())
    assert token not in text
    paths = [line["path"] for line in requests_logged(json_lines)]
    assert paths == ["/activation/***", "/confirmation-email/***"]


def test_a_traceback_is_one_field_of_one_line(json_lines: Lines) -> None:
    log = logging.getLogger("kb.test")
    try:
        raise RuntimeError("échec sur /activation/SECRETTOKEN123 avec password=hunter2")
    except RuntimeError:
        log.exception("unexpected error on %s", "/activation/SECRETTOKEN123")
    (line,) = [x for x in json_lines() if x["logger"] == "kb.test"]
    assert line["level"] == "error"
    assert line["message"] == "unexpected error on /activation/***"
    assert str(line["traceback"]).startswith("Traceback (most recent call last):")
    assert "RuntimeError: échec sur /activation/*** avec password=***" in str(line["traceback"])


@pytest.mark.parametrize(
    ("created", "shown"),
    [
        (1764781445.0, "2025-12-03T17:04:05.000Z"),
        (1764781445.3, "2025-12-03T17:04:05.300Z"),  # .2999999523… in binary: still .300
        (1764781445.1239, "2025-12-03T17:04:05.123Z"),
        (1764781445.9999996, "2025-12-03T17:04:06.000Z"),  # rounds into the next second
        (1764781446.0005, "2025-12-03T17:04:06.000Z"),
        (1764799199.5, "2025-12-03T21:59:59.500Z"),  # UTC, whatever the machine's zone
    ],
)
def test_a_line_is_timed_to_the_millisecond_in_utc(created: float, shown: str) -> None:
    formatter = JsonFormatter()
    for moment in (created, created - 1.5, created):  # another second in between
        record = logging.LogRecord("kb.test", logging.INFO, __file__, 0, "x", (), None)
        record.created = moment
        line = json.loads(formatter.format(record))
    assert line["time"] == shown


def test_a_line_keeps_accents_and_any_value_it_is_given() -> None:
    """Written by orjson, with the standard library where orjson cannot: whatever a field
    holds (an integer beyond 64 bits, an object), the line is still one JSON object."""
    formatter = JsonFormatter()
    record = logging.LogRecord("kb.test", logging.INFO, __file__, 0, "Reçu : %s", ("été",), None)
    record.bytes_in = 2**70
    record.client = Path("/un/chemin")
    line = formatter.format(record)
    assert "Reçu : été" in line  # UTF-8 as it is, not \\u00e7
    parsed = json.loads(line)
    assert parsed["message"] == "Reçu : été"
    assert parsed["bytes_in"] == 2**70
    assert parsed["client"] == "/un/chemin"
    assert "\n" not in line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "smtp://assistance:s3cr3t@mail.example.fr:587",
            "smtp://assistance:***@mail.example.fr:587",
        ),
        ("postgresql+psycopg://kb:pw@db/kb", "postgresql+psycopg://kb:***@db/kb"),
        ("GET /reinit?token=abc123&x=1", "GET /reinit?token=***&x=1"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("cookie kb_session=abcdef; kb_csrf=zzz", "cookie kb_session=***; kb_csrf=***"),
        ("/articles/mot-de-passe-oublie", "/articles/mot-de-passe-oublie"),
    ],
)
def test_secrets_are_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown


# --- metrics --------------------------------------------------------------------------------


def scrape(client: TestClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def test_metrics_count_requests_per_route_template(make_web: Callable[..., Web]) -> None:
    web = make_web(shipped=True)
    client = local(web)
    for slug in ("mot-de-passe-oublie", "obtenir-une-facture", "nexiste-pas"):
        client.get(f"/articles/{slug}")
    client.get("/recherche?q=mot+de+passe")
    client.get("/api/suggest?q=mot")
    client.get("/une/adresse/inconnue")
    text = scrape(client)
    assert (
        value(text, 'kb_http_requests_total{method="GET",route="/articles/{slug}",status="200"}')
        == 2
    )
    assert (
        value(text, 'kb_http_requests_total{method="GET",route="/articles/{slug}",status="404"}')
        == 1
    )
    assert value(text, 'kb_http_requests_total{method="GET",route="(aucune)",status="404"}') == 1
    assert (
        value(text, 'kb_http_request_duration_seconds_count{method="GET",route="/recherche"}') == 1
    )
    assert value(text, 'kb_search_duration_seconds_count{kind="search"}') == 1
    assert value(text, 'kb_search_duration_seconds_count{kind="suggest"}') == 1
    assert "mot-de-passe-oublie" not in text and "inconnue" not in text


def test_metrics_count_tickets_and_uploaded_bytes(
    make_web: Callable[..., Web], database_url: str
) -> None:
    web = make_web({}, database_url=database_url)
    activated_account(web)
    log_in(web)
    content = b"%PDF-1.4 facture" * 1000
    data = {
        "csrf": web.client.cookies["kb_csrf"],
        "jeton": hashlib.sha1(b"one").hexdigest(),
        "categorie": "abonnement",
        "sujet": "Renouvellement bloqué",
        "message": "Le bouton ne répond pas.",
    }
    files = [("fichiers", ("facture.pdf", content, "application/pdf"))]
    assert web.client.post("/tickets", data=data, files=files).status_code == 303
    assert web.client.post("/tickets", data=data, files=files).status_code == 303  # replayed
    text = scrape(local(web))
    assert value(text, "kb_tickets_created_total") == 1
    assert value(text, "kb_upload_bytes_total") > 2 * len(content)
    assert value(text, "kb_uploads_active") == 0


def test_metrics_answer_only_the_allowed_addresses(make_web: Callable[..., Web]) -> None:
    web = make_web({})
    refused = local(web, "203.0.113.9").get("/metrics", headers={"accept": "application/json"})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        "Les métriques ne se lisent que depuis les adresses autorisées (KB_METRICS_ALLOW)."
    )
    assert "kb_http" not in refused.text
    assert local(web, "::1").get("/metrics").status_code == 200
    assert web.client.get("/metrics").status_code == 403  # not an address at all

    web = make_web({}, metrics_allow="10.0.0.0/8, 192.0.2.7")
    assert local(web, "10.1.2.3").get("/metrics").status_code == 200
    assert local(web, "192.0.2.7").get("/metrics").status_code == 200
    assert local(web, "127.0.0.1").get("/metrics").status_code == 403


def test_the_allowed_addresses_are_checked_at_start() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"KB_METRICS_ALLOW": "127.0.0.1, intranet"})
    assert caught.value.problems == [
        "KB_METRICS_ALLOW='127.0.0.1, intranet' : adresses IP ou réseaux (10.0.0.0/8) "
        "séparés par des virgules attendus ; « intranet » n'en est pas un"
    ]


# --- kb serve with two workers ----------------------------------------------------------------


def fetch(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def test_two_workers_log_json_and_sum_their_metrics(tmp_path: Path) -> None:
    process, base = start_kb(
        "serve", "--content", str(ROOT / "content"), "--workers", "2", cwd=tmp_path
    )
    try:
        wait_until_up(process, base)
        for _ in range(30):
            status, _, headers = fetch(base + "/api/search?q=abonnement")
            assert status == 200 and headers["x-request-id"]
        assert fetch(base + "/activation/jeton-secret-de-test-123")[0] == 410
        request = urllib.request.Request(base + "/", headers={"X-Request-ID": "from-proxy-1"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["x-request-id"] == "from-proxy-1"
        # Each scrape may be answered by either worker: every one sees the sum of both.
        seen = set()
        for _ in range(8):
            status, text, _ = fetch(base + "/metrics")
            assert status == 200
            seen.add(
                value(text, 'kb_http_requests_total{method="GET",route="/api/search",status="200"}')
            )
        assert seen == {30.0}
        assert 'kb_search_duration_seconds_count{kind="search"} 30.0' in text
    finally:
        out = stop(process)
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.startswith("{")]
    parsed = [json.loads(line) for line in lines]
    loggers = {line["logger"] for line in parsed}
    assert {"kb.request", "uvicorn.error"} <= loggers, loggers
    searches = [
        x for x in parsed if x.get("route") == "/api/search" and x["logger"] == "kb.request"
    ]
    assert len(searches) == 30 and all(x["request_id"] for x in searches)
    assert any(x.get("request_id") == "from-proxy-1" for x in parsed)
    assert "jeton-secret-de-test-123" not in out
    assert any(x.get("path") == "/activation/***" and x["status"] == 410 for x in parsed)
    # uvicorn's own access lines (with raw paths and query strings) are not printed.
    assert not any("HTTP/1.1" in line for line in out.splitlines())
    # Nothing but JSON on stdout once the server runs (the build's progress is on stderr).
    assert all(line.startswith("{") for line in out.splitlines() if line.strip()), out
