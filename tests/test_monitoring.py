"""Know when it breaks: /metrics, /healthz, alert rules and notifications, seen by an operator."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from hnlab import __version__, analysis
from hnlab.config import Settings
from hnlab.errors import ConfigError
from hnlab.run.notify import DIGEST_JOB_ID
from hnlab.run.service import RunnerService
from hnlab.sim.server import SimulatedHN
from tests.helpers import dict_rows as rows
from tests.helpers import eventually

from .conftest import START
from .helpers import REPO, hnlab_cli, hnlab_process, settings_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Receiver:
    """An HTTP endpoint on loopback that keeps the JSON bodies apprise posts to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool (apt-get install prometheus)")
    for args in (
        ["check", "rules", "docs/prometheus/alerts.yml"],
        ["test", "rules", "tests/prometheus/alerts_test.yml"],
    ):
        result = subprocess.run([promtool, *args], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_settings_check_the_address_and_the_urls_and_never_show_tokens() -> None:
    with pytest.raises(ConfigError, match=r"^HNLAB_METRICS_ADDR must be HOST:PORT such as"):
        Settings.from_env(environ={"HNLAB_METRICS_ADDR": "9464"})
    with pytest.raises(ConfigError, match=r"^HNLAB_NOTIFY_URLS has a URL apprise cannot use"):
        Settings.from_env(environ={"HNLAB_NOTIFY_URLS": "nope://secret-token"})
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    s = Settings.from_env(environ={"HNLAB_NOTIFY_URLS": f"tgram://{token}/12345, json://u:pw@h/x"})
    assert len(s.notify_urls) == 2
    shown = repr(s) + json.dumps(s.as_dict())
    assert token not in shown and "AAHdqTcv" not in shown and ":pw@" not in shown
    assert "tgram://" in shown and "json://u:****@h/x" in shown


def test_hnlab_run_serves_metrics_that_match_the_run_record(
    settings: Settings, engine: sa.Engine, sim: SimulatedHN
) -> None:
    port = free_port()
    addr = f"127.0.0.1:{port}"
    proc = hnlab_process(
        settings, "run", "--direct", "--cron", "* * * * *", HNLAB_METRICS_ADDR=addr
    )
    try:
        deadline, page = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            try:
                page = httpx.get(f"http://{addr}/metrics").text
            except httpx.TransportError:
                page = ""
            if samples(page).get(("hnlab_runs_total", (("outcome", "succeeded"),)), 0) >= 1:
                break
            time.sleep(0.2)
        health = httpx.get(f"http://{addr}/healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"metrics: http://{addr}/metrics, health: http://{addr}/healthz" in out
    assert health.status_code == 200 and health.text.startswith("ok: the last collection")
    [run] = rows(engine, "SELECT * FROM collection_runs WHERE status = 'succeeded'")
    got = samples(page)
    assert got[("hnlab_collection_last_success_timestamp_seconds", ())] == pytest.approx(
        run["finished_at"].timestamp()
    )
    assert got[("hnlab_collection_last_run_timestamp_seconds", ())] == pytest.approx(
        run["finished_at"].timestamp()
    )
    for kind, column in (
        ("fetched", "posts_fetched"),
        ("saved", "posts_saved"),
        ("cached", "posts_cached"),
        ("duplicates", "duplicates_skipped"),
    ):
        assert got[("hnlab_collection_posts", (("kind", kind),))] == run[column]
    assert got[("hnlab_collection_duration_seconds", (("phase", "total"),))] == run["duration_s"]
    assert (
        got[("hnlab_collection_duration_seconds", (("phase", "fetch"),))]
        == (run["details"]["fetch_s"])
    )
    assert got[("hnlab_api_requests_total", ())] == run["details"]["api_requests"] > 0
    assert got[("hnlab_api_requests_total", ())] == run["details"]["items_requested"] + 1
    assert got[("hnlab_api_errors_total", (("reason", "http_5xx"),))] == 0
    assert got[("hnlab_runs_total", (("outcome", "failed"),))] == 0
    info = next(k for k in got if k[0] == "hnlab_runner_info")
    assert dict(info[1])["version"] == __version__ and dict(info[1])["mode"] == "direct"

    # A restarted runner starts from the record: the success is old news, not fresh.
    port2 = free_port()
    again = hnlab_process(
        settings, "run", "--direct", "--cron", "0 0 1 1 *", HNLAB_METRICS_ADDR=f"127.0.0.1:{port2}"
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and again.poll() is None
            try:
                restarted = samples(httpx.get(f"http://127.0.0.1:{port2}/metrics").text)
                break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    assert restarted[("hnlab_collection_last_success_timestamp_seconds", ())] == pytest.approx(
        run["finished_at"].timestamp()
    )
    assert restarted[("hnlab_runs_total", (("outcome", "succeeded"),))] == 0  # counters restart


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def clear_of_the_hour() -> None:
    """The runner's real cron must not fire mid-test: keep clear of a real :00."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second > 20:
        time.sleep(62 - now.second)


def test_health_and_notifications_follow_failures_and_recovery(
    make_settings: Callable[..., Settings],
    sim: SimulatedHN,
    engine: sa.Engine,
    receiver: Receiver,
) -> None:
    clear_of_the_hour()
    addr = f"127.0.0.1:{free_port()}"
    settings = make_settings(
        hn_api_url=sim.base_url,
        metrics_addr=addr,
        notify_urls=receiver.url,
        retry_attempts=1,
    )
    clock = FakeClock(START + timedelta(minutes=3))
    service = RunnerService(settings, mode="direct", clock=clock)
    said: list[str] = []

    async def go() -> tuple[list[tuple[int, str]], list[dict[str, Any]]]:
        stop = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, say=said.append))
        health: list[tuple[int, str]] = []
        async with httpx.AsyncClient(base_url=f"http://{addr}") as http:

            async def healthz() -> None:
                response = await http.get("/healthz")
                health.append((response.status_code, response.text.strip()))

            await asyncio.to_thread(eventually, lambda: any(s.startswith("catch-up") for s in said))
            scheduler = service.scheduler
            assert scheduler is not None
            succeeded = "SELECT id FROM collection_runs WHERE status = 'succeeded'"
            await asyncio.to_thread(eventually, lambda: len(rows(engine, succeeded)) == 1)
            # the runner counts a run after its record is closed: wait until it has
            counted = ("hnlab_runs_total", (("outcome", "succeeded"),))
            for _ in range(600):
                if samples((await http.get("/metrics")).text).get(counted) == 1:
                    break
                await asyncio.sleep(0.05)
            await healthz()  # 0: the catch-up at START succeeded
            sim.faults.error_rate = 1.0  # the API is down
            for hours in (1, 2, 3):
                clock.now = START + timedelta(hours=hours, minutes=1)
                outcome = await scheduler.catch_up(START + timedelta(hours=hours))
                assert outcome.status == "failed"
                await healthz()  # 1, 2, 3
            sim.faults.error_rate = 0.0
            clock.now = START + timedelta(hours=4, minutes=1)
            assert (await scheduler.catch_up(START + timedelta(hours=4))).status == "succeeded"
            await healthz()  # 4
            await asyncio.to_thread(receiver.wait_for, 2)
            scheduler.get_job(DIGEST_JOB_ID).modify(next_run_time=datetime.now(UTC))
            await asyncio.to_thread(receiver.wait_for, 3)
            metrics = samples((await http.get("/metrics")).text)
        stop.set()
        await serving
        return health, [metrics]

    health, [metrics] = asyncio.run(go())
    assert [code for code, _ in health] == [200, 200, 200, 503, 200]
    assert health[0][1].startswith("ok: the last collection succeeded")
    assert health[3][1] == (
        "no successful collection for 2 h 58 min, more than two periods (2 h 0 min) of "
        "'0 * * * *'"  # the first run finished at 12:03, it is now 15:01
    )
    failure, recovery, digest = receiver.messages[:3]
    assert len(receiver.messages) == 3  # three failed runs: one message; one recovery
    assert (failure["type"], failure["title"]) == ("failure", "hnlab: collection failing")
    runs = rows(engine, "SELECT id, status, error FROM collection_runs ORDER BY id")
    assert [r["status"] for r in runs] == ["succeeded", "failed", "failed", "failed", "succeeded"]
    first_failed = runs[1]
    assert failure["message"].splitlines() == [
        f"Run #{first_failed['id']} (scheduled) for 2026-03-01 13:00 UTC failed:",
        first_failed["error"],
        "Hours affected so far: 1. You hear again when a collection succeeds.",
    ]
    assert "cannot fetch the top list: topstories.json: HTTP 503" in first_failed["error"]
    assert (recovery["type"], recovery["title"]) == ("success", "hnlab: collection recovered")
    assert recovery["message"] == (
        f"Run #{runs[4]['id']} for 2026-03-01 16:00 UTC succeeded after 3 failed run(s) since "
        f"2026-03-01 13:00 UTC (3 hours affected). Last error: {runs[3]['error']}."
    )
    assert digest["title"] == "hnlab digest: the 24 hours to 2026-03-01 16:01 UTC"
    assert digest["message"].startswith("Runs: 2 succeeded, 3 failed, 0 skipped of 24 scheduled.")
    assert "\nTop stories:\n1. " in digest["message"]
    assert "https://news.ycombinator.com/item?id=" in digest["message"]
    assert metrics[("hnlab_runs_total", (("outcome", "failed"),))] == 3
    assert metrics[("hnlab_runs_total", (("outcome", "succeeded"),))] == 2
    assert metrics[("hnlab_notifications_total", (("kind", "failure"),))] == 1
    assert metrics[("hnlab_notifications_total", (("kind", "recovery"),))] == 1
    assert metrics[("hnlab_notifications_total", (("kind", "digest"),))] == 1
    assert metrics[("hnlab_api_errors_total", (("reason", "http_5xx"),))] == 3


def test_an_undeliverable_notification_is_counted_and_never_fails_a_run(
    make_settings: Callable[..., Settings], sim: SimulatedHN, engine: sa.Engine
) -> None:
    settings = make_settings(
        hn_api_url=sim.base_url, notify_urls=f"json://127.0.0.1:{free_port()}/nobody-listens"
    )
    sim.faults.error_rate = 1.0
    service = RunnerService(settings, mode="direct", clock=lambda: START + timedelta(minutes=1))
    outcome = asyncio.run(service.run_once())
    assert outcome.status == "failed"
    got = samples(service.metrics.exposition().decode())
    assert got[("hnlab_notifications_failed_total", ())] == 1
    assert [r["status"] for r in rows(engine, "SELECT status FROM collection_runs")] == ["failed"]


def test_notify_test_and_digest_on_demand(
    settings: Settings, engine: sa.Engine, receiver: Receiver, tmp_path: Path
) -> None:
    env = {**settings_env(settings), "HNLAB_NOTIFY_URLS": receiver.url}
    sent = hnlab_cli("notify", "test", env=env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent   json://127.0.0.1:")
    assert receiver.wait_for(1)[0]["title"] == "hnlab test notification"
    digest = hnlab_cli("notify", "digest", env=env)
    assert digest.returncode == 0, digest.stderr
    assert digest.stdout.startswith("hnlab digest: the 24 hours to ")
    assert receiver.wait_for(2)[1]["title"] == digest.stdout.splitlines()[0]
    dead = {**env, "HNLAB_NOTIFY_URLS": f"json://127.0.0.1:{free_port()}/x"}
    failed = hnlab_cli("notify", "test", env=dead)
    assert failed.returncode == 1
    assert failed.stdout.startswith("FAILED json://127.0.0.1:")
    assert "Connection error" in failed.stdout
    assert failed.stderr == "Error: 1 of 1 notification URL(s) failed\n"
    unset = hnlab_cli("notify", "test", env=settings_env(settings))
    assert unset.returncode == 1 and unset.stderr.startswith("Error: HNLAB_NOTIFY_URLS is not set")


def test_the_digest_says_what_is_rising_with_its_stories(
    settings: Settings, engine: sa.Engine
) -> None:
    """Three days of ordinary titles, then "Zig" in 8 of 20 titles for three hours: the
    digest's "Rising now" names it with two of its stories; the steady words are not."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    filler = ["postgres index tuning", "kernel scheduler notes", "browser engine history"]
    stories = []
    for h in range(72, 0, -1):
        for i in range(20):
            hn_id = 1_000_000 + (72 - h) * 100 + i  # ids grow with time, as HN's do
            title = f"Rust {filler[(h + i) % 3]}" if i % 2 else filler[(h + i) % 3]
            if 3 <= h <= 5 and i < 8:
                title = f"Zig {title}"
            at = now - timedelta(hours=h) + timedelta(minutes=i)
            stories.append({"id": hn_id, "title": title, "at": at})
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO items (id, type, title, time, story_id, first_fetched, version_at) "
                "VALUES (:id, 'story', :title, :at, :id, :at, :at)"
            ),
            stories,
        )
        # the newest Zig story is a text post: its summary is its lead
        conn.execute(
            sa.text("UPDATE items SET text = :text WHERE id = :id"),
            {"id": 1_000_000 + 6900 + 7, "text": "Zig 1.0 is out today.<p>It took ten years."},
        )
    analysis.summarize(1_000_000 + 6900 + 7, engine=engine, settings=settings)
    digest = hnlab_cli("notify", "digest", "--no-send", env=settings_env(settings))
    assert digest.returncode == 0, digest.stderr
    rising = digest.stdout.split("Rising now:\n")[1].split("\n\n")[0].splitlines()
    assert rising[0].startswith(
        f"- zig: 24 stories since {now - timedelta(hours=5):%Y-%m-%d %H}:00"
    )
    assert all(line.startswith("   Zig ") for line in rising[1:3])
    assert rising[2].endswith(f"item?id={1_000_000 + 6900 + 7}")  # the newest story last
    assert rising[3] == "     article summary (extractive): Zig 1.0 is out today."
    assert len(rising) == 4
