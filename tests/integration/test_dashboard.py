"""The web dashboard in headless Chromium (the Debian package, driven by Playwright) over a running pipeline."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import SecretStr

from ops.cancel import CancelAnswer
from ops.dashboard.requests import TOKEN_HEADER
from ops.dashboard.server import http_server, serve
from ops.dashboard.view import View
from ops.produce import produce_orders
from ops.slips import resume
from processors.runtime.records import utc_now
from processors.tracking.timeline import new_timeline
from schemas.models import CancelOrder, OrderTimeline, RetrySaga, TimelineStep
from schemas.serde import RecordCodec
from tests.integration.harness import Processes, Watcher
from tests.integration.test_cancellation import SKU, activities_held_back, cancel, stopping, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from tests.integration.test_routing_slips import order
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_COMMANDS, ROUTING_SLIPS_EVENTS, SAGAS_EVENTS, TRACKING_ORDERS

LIVE_S = 60_000  # ms the page gets to show what the pipeline does


@pytest.fixture
def dashboard(settings: Settings, pipeline: Processes) -> Iterator[str]:
    server = serve(settings, 0)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium is not None, "`make setup` installs the Debian package chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_order(page: Page, order_id: str) -> None:
    page.fill("#order-id", order_id)
    page.click("#search button")
    expect(page.locator("#order-title")).to_have_text(f"Order {order_id}")


def test_the_dashboard_shows_the_fleet_and_timelines_live_and_retries_a_failed_saga(
    settings: Settings, registry: SchemaRegistryClient, dashboard: str, browser: Browser
) -> None:
    watcher = Watcher(settings, registry, [INVENTORY_STOCK.name, ROUTING_SLIPS_EVENTS.name, SAGAS_EVENTS.name])
    try:
        set_stock_and_wait(settings, watcher, {SKU: 5, "SKU-CRATE-01": 2, "SKU-ANVIL-01": 2})
    finally:
        watcher.close()
    placed_now = {"occurred_at": utc_now()}
    delivered = tee_order("dashboard-ok").model_copy(update=placed_now)
    crate = order("dashboard-crate", {"SKU-CRATE-01": 1, "SKU-ANVIL-01": 1}).model_copy(update=placed_now)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(dashboard)
    expect(page.locator("[data-list=stuck] h2")).to_contain_text("Stuck")

    produce_orders(settings, [delivered, crate], progress=False)
    open_order(page, delivered.order_id)
    expect(page.locator("#order-outcome")).to_have_text("delivered", timeout=LIVE_S)
    for step in ("intake", "payment", "inventory", "pick", "pack", "ship", "confirm-delivery"):
        expect(page.locator(f"tr[data-step='{step}'] td").nth(2)).to_have_text("completed")

    # The crate's slip cannot be undone: cancelling it fails the saga, which the page offers to retry.
    open_order(page, crate.order_id)
    expect(page.locator("#order-summary")).to_contain_text("compensation-failed", timeout=LIVE_S)
    cancel(settings, crate.order_id)
    expect(page.locator("#order-saga")).to_have_text("Failed", timeout=LIVE_S)
    expect(page.locator("#order-status")).to_have_text("faulted")
    page.goto(f"{dashboard}/#/")
    expect(page.locator("[data-list=faulted]")).to_contain_text(crate.order_id, timeout=LIVE_S)
    page.screenshot(path=str(settings.run_dir / "dashboard-fleet.png"), full_page=True)

    open_order(page, crate.order_id)
    resume(settings, crate.order_id, skip_failed_step=True)  # an operator opened the crate by hand
    expect(page.locator("tr[data-step='pick'] td").nth(2)).to_have_text("compensated", timeout=LIVE_S)
    page.click("#retry")
    expect(page.locator("#message")).to_have_text("Retry sent.")
    expect(page.locator("#order-saga")).to_have_text("Cancelled", timeout=LIVE_S)
    expect(page.locator("#order-outcome")).to_have_text("cancelled")
    page.screenshot(path=str(settings.run_dir / "dashboard-order.png"), full_page=True)


def test_the_order_page_cancels_an_order_and_shows_the_sagas_answer(
    settings: Settings,
    registry: SchemaRegistryClient,
    pipeline: Processes,
    admin: AdminClient,
    dashboard: str,
    browser: Browser,
) -> None:
    watcher = Watcher(settings, registry, [INVENTORY_STOCK.name, SAGAS_EVENTS.name])
    try:
        set_stock_and_wait(settings, watcher, {SKU: 5})
        placed_now = {"occurred_at": utc_now()}
        delivered = tee_order("dashboard-cancel-late").model_copy(update=placed_now)
        held = tee_order("dashboard-cancel").model_copy(update=placed_now)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(dashboard)

        produce_orders(settings, [delivered], progress=False)
        open_order(page, delivered.order_id)
        expect(page.locator("#order-outcome")).to_have_text("delivered", timeout=LIVE_S)
        cancel_url = f"{dashboard}/api/orders/{delivered.order_id}/cancel"
        assert post(cancel_url, b'{"reason": " "}') == (400, {"error": "say why the order is cancelled (reason)"})
        assert post(cancel_url, b"reason=x") == (400, {"error": "the request is not JSON"})
        page.click("#cancel-button")
        expect(page.locator("#cancel-answer")).to_have_text("Say why the order is cancelled.")
        page.fill("#cancel-reason", "too late?")
        page.click("#cancel-button")
        expect(page.locator("#cancel-outcome")).to_have_attribute("data-outcome", "rejected", timeout=LIVE_S)
        expect(page.locator("#cancel-outcome")).to_contain_text("Cancellation rejected: ")

        # Fulfillment held back, so that the cancellation surely comes before the slip ends.
        with activities_held_back(pipeline, admin):
            produce_orders(settings, [held], progress=False)
            open_order(page, held.order_id)
            expect(page.locator("#cancel")).to_be_visible(timeout=LIVE_S)
            page.fill("#cancel-reason", "changed my mind")
            page.click("#cancel-button")
            expect(page.locator("#cancel-answer")).to_contain_text("waiting for the saga's answer")
            stopping(watcher, [held.order_id])
        total = held.tenders[0].amount.amount_minor / 100
        expect(page.locator("#cancel-outcome")).to_have_text(f"Cancelled; refunded {total:.2f} EUR.", timeout=LIVE_S)
        expect(page.locator("#cancel-refunds li")).to_have_text([f"{total:.2f} EUR to CARD"])
        expect(page.locator("#order-outcome")).to_have_text("cancelled", timeout=LIVE_S)
        expect(page.locator("#cancel")).to_be_hidden()
    finally:
        watcher.close()


def page_token(dashboard: str) -> str:
    """The action token the dashboard embeds in its page, as its own page reads it."""
    with urllib.request.urlopen(dashboard, timeout=10) as answer:
        found = re.search(r'<meta name="oms-token" content="([^"]+)">', answer.read().decode())
    assert found is not None, "the page carries its token"
    return found.group(1)


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def post(url: str, body: bytes, headers: dict[str, str | None] | None = None) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a POST to the dashboard, sent as its own page sends it unless `headers`
    (added to the page's token and origin, or replacing them) say otherwise."""
    own: dict[str, str | None] = {"Origin": origin_of(url), TOKEN_HEADER: page_token(origin_of(url))}
    sent = {name: value for name, value in (own | (headers or {})).items() if value is not None}
    return answer_of(urllib.request.Request(url, data=body, headers=sent, method="POST"))


def answer_of(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_cancel_request_that_cannot_be_carried_out_is_answered_in_json(dashboard: str) -> None:
    unknown = f"never-placed-{uuid.uuid4().hex[:8]}"
    assert post(f"{dashboard}/api/orders/{unknown}/cancel", b'{"reason": "x"}') == (
        404,
        {"error": "no such order in the tracker's view"},
    )
    assert post(f"{dashboard}/api/orders/%20/cancel", b'{"reason": "x"}') == (400, {"error": "the order id is blank"})
    assert post(f"{dashboard}/api/orders/{'x' * 201}/cancel", b"{}")[0] == 400
    assert post(f"{dashboard}/api/orders/%07bell/cancel", b"{}") == (
        400,
        {"error": "the order id holds characters that cannot be printed"},
    )


# Markup that runs a script wherever data is parsed as HTML, in element content or in an attribute.
PAYLOAD = '"><img src=x onerror=window.pwned=1>'
QUOTED_PAYLOAD = "'><img src=x onerror=window.pwned=2>"


@pytest.fixture
def view_dashboard(settings: Settings, topic: str) -> Iterator[str]:
    """A dashboard following a fresh topic of its own instead of the tracker's: what a test puts there is its view."""
    server = serve(settings, 0, topic=topic)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def publish(
    settings: Settings, registry: SchemaRegistryClient, topic: str, values: list[OrderTimeline | bytes]
) -> None:
    """Timelines (encoded as the tracker encodes them) or raw bytes, in order, on `topic`."""
    codec = RecordCodec(registry, TRACKING_ORDERS.name)
    producer = Producer(settings.producer_config())
    for value in values:
        if isinstance(value, OrderTimeline):
            producer.produce(topic, key=value.order_id.encode(), value=codec.encode(value))
        else:
            producer.produce(topic, key=b"garbage", value=value)
    assert producer.flush(30) == 0


def timeline(order_id: str, **fields: Any) -> OrderTimeline:
    return new_timeline(order_id, utc_now()).model_copy(update=fields)


def test_data_in_the_view_renders_as_text_and_runs_no_script(
    settings: Settings, registry: SchemaRegistryClient, topic: str, view_dashboard: str, browser: Browser
) -> None:
    hostile_id = f"xss-{uuid.uuid4().hex[:8]}{PAYLOAD}"
    step = TimelineStep(pattern=PAYLOAD, name=PAYLOAD, status=PAYLOAD, error=QUOTED_PAYLOAD)
    everywhere = {"slip": PAYLOAD, "saga": QUOTED_PAYLOAD, "saga_reason": PAYLOAD, "outcome": PAYLOAD}
    publish(
        settings,
        registry,
        topic,
        [
            timeline(hostile_id, status="faulted", **everywhere, steps=[step]),
            timeline(f"xss-{uuid.uuid4().hex[:8]}", status=PAYLOAD, steps=[step]),
        ],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else None)
    answer = page.goto(view_dashboard)
    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert re.search(r"script-src 'nonce-[\w-]+';", policy), policy
    assert answer.headers["x-content-type-options"] == "nosniff"

    faulted = page.locator("[data-list=faulted] tbody tr").first
    expect(faulted.locator("td").nth(0)).to_have_text(hostile_id, timeout=LIVE_S)
    expect(faulted.locator("td").nth(2)).to_have_text(PAYLOAD)
    expect(faulted.locator("td").nth(3)).to_have_text(QUOTED_PAYLOAD)
    expect(page.locator("[data-count=orders] b")).to_have_text("2")
    assert page.locator("img").count() == 0

    open_order(page, hostile_id)
    row = page.locator("#timeline tbody tr").first
    expect(row).to_have_attribute("data-step", PAYLOAD, timeout=LIVE_S)
    expect(row.locator("td")).to_have_text([PAYLOAD, PAYLOAD, PAYLOAD, "-", "-", QUOTED_PAYLOAD])
    expect(page.locator("#order-summary")).to_contain_text(f"outcome {PAYLOAD}; routing slip {PAYLOAD}")
    expect(page.locator("#order-saga")).to_have_text(QUOTED_PAYLOAD)
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert violations == [], "nothing even tried to run"


def test_an_action_from_another_origin_or_without_the_token_is_refused_and_not_done(
    settings: Settings, registry: SchemaRegistryClient, topic: str, view_dashboard: str, browser: Browser
) -> None:
    failed = timeline(f"csrf-{uuid.uuid4().hex[:8]}", status="faulted", saga="Failed")
    publish(settings, registry, topic, [failed])
    retry_url = f"{view_dashboard}/api/orders/{failed.order_id}/retry"
    cancel_url = f"{view_dashboard}/api/orders/{failed.order_id}/cancel"
    watcher = Watcher(settings, registry, [ORDERS_COMMANDS.name])
    try:
        with another_site(retry_url, cancel_url) as elsewhere:
            page = browser.new_page()
            page.goto(elsewhere)
            # A script on another site posts to the dashboard; the answer comes back (the browser withholds it
            # from the script: same-origin resources only) before the promise settles.
            assert page.evaluate("attack()") == "withheld"
            # And a form posts JSON as text/plain, a navigation that shows the answer.
            with page.expect_response(cancel_url) as by_form:
                page.click("#go")
            assert by_form.value.status == 403
            assert "another origin" in by_form.value.json()["error"]

        page.goto(view_dashboard)
        tokenless = "fetch(%r, {method: 'POST'}).then(async answer => [answer.status, await answer.json()])"
        status, answer = page.evaluate(tokenless % f"/api/orders/{failed.order_id}/retry")
        assert (status, answer["error"]) == (
            403,
            f"the request has no {TOKEN_HEADER} header: actions come from the dashboard's page",
        )
        assert post(retry_url, b"", {"Origin": "http://evil.example"})[0] == 403
        assert post(retry_url, b"", {"Origin": None})[0] == 403
        assert post(retry_url, b"", {TOKEN_HEADER: "guessed"})[0] == 403

        open_order(page, failed.order_id)
        with page.expect_response(retry_url) as by_page:
            page.click("#retry")
        assert by_page.value.status == 202
        expect(page.locator("#message")).to_have_text("Retry sent.")
        sent = by_page.value.json()["retry"]
        watcher.wait_until(
            lambda seen: any(str(getattr(s.record, "event_id", "")) == sent for s in seen), what="the page's retry"
        )
        # Refused requests would have been produced before it, on the order's partition: only the page's is there.
        commands = [
            (type(s.record), str(getattr(s.record, "event_id", ""))) for s in watcher.for_order(failed.order_id)
        ]
        assert commands == [(RetrySaga, sent)]
    finally:
        watcher.close()


class RetriesInMemory:
    """The dashboard's actions, of which only a retry is asked here: remembered, not produced."""

    def __init__(self) -> None:
        self.retries: list[tuple[str, str]] = []

    def retry(self, order_id: str, requested_by: str) -> RetrySaga:
        self.retries.append((order_id, requested_by))
        return RetrySaga(event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), requested_by=requested_by)

    def redrive(self, order_id: str, topics: tuple[str, ...]) -> list[str]:
        raise AssertionError("not asked here")

    def cancel(self, order_id: str, reason: str, requested_by: str) -> tuple[CancelOrder, CancelAnswer | None, float]:
        raise AssertionError("not asked here")


def test_a_browser_logs_in_with_the_token_acts_under_its_name_and_logs_out(tmp_path: Path, browser: Browser) -> None:
    """The login form, its session cookie and the page's calls in a real browser (no broker: a view in memory)."""
    token = secrets.token_urlsafe(32)
    settings = Settings(run_dir=tmp_path, dashboard_token=SecretStr(token), dashboard_login_on_loopback=True)
    view = View(lambda value: OrderTimeline.model_validate_json(value))
    view.put(timeline("login-failed", status="faulted", saga="Failed"), b"")
    actions = RetriesInMemory()
    server = http_server(settings, view, 0, actions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = browser.new_page()
        page.goto(url)
        expect(page).to_have_url(f"{url}/login")
        page.fill("#name", "alice")
        page.fill("#token", "not-" + token)
        page.click("#login button")
        expect(page.locator("#problem")).to_have_text("That is not the dashboard's token.")

        page.fill("#name", "alice")
        page.fill("#token", token)
        page.click("#login button")
        expect(page).to_have_url(f"{url}/")
        expect(page.locator("#user")).to_have_text("alice (token)")
        [cookie] = page.context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        open_order(page, "login-failed")
        page.click("#retry")
        expect(page.locator("#message")).to_have_text("Retry sent.")
        assert actions.retries == [("login-failed", "operator:alice (token)")]

        page.click("#logout button")
        expect(page).to_have_url(f"{url}/login")
        page.goto(url)
        expect(page).to_have_url(f"{url}/login")
    finally:
        server.shutdown()


def test_a_request_naming_another_host_is_refused(view_dashboard: str) -> None:
    rebound = urllib.request.Request(f"{view_dashboard}/api/fleet", headers={"Host": "attacker.example"})
    status, answer = answer_of(rebound)
    assert status == 403 and "Host header" in answer["error"]


def test_the_follower_skips_an_undecodable_record_and_shows_the_next(
    settings: Settings, registry: SchemaRegistryClient, topic: str, view_dashboard: str, browser: Browser
) -> None:
    after = timeline(f"after-garbage-{uuid.uuid4().hex[:8]}", status="faulted")
    publish(settings, registry, topic, [b"\x00\x00\x00\x00\x01not avro", b"not even framed", after])
    page = browser.new_page()
    page.goto(view_dashboard)
    open_order(page, after.order_id)
    expect(page.locator("#order-status")).to_have_text("faulted", timeout=LIVE_S)
    status, fleet = answer_of(urllib.request.Request(f"{view_dashboard}/api/fleet"))
    assert status == 200
    assert (fleet["view"]["skipped"], fleet["view"]["stale_since"]) == (2, None)
    expect(page.locator("#stale")).to_be_hidden()


def test_the_page_says_when_its_view_is_stale(
    settings: Settings, registry: SchemaRegistryClient, topic: str, browser: Browser
) -> None:
    waiting = timeline(f"waiting-{uuid.uuid4().hex[:8]}", status="in-flight")
    publish(settings, registry, topic, [waiting])
    registry_down = settings.model_copy(update={"schema_registry_url": "http://127.0.0.1:9"})
    server = serve(registry_down, 0, topic=topic)
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}")
        expect(page.locator("#stale")).to_be_visible(timeout=LIVE_S)
        expect(page.locator("#stale")).to_contain_text("The view is stale since ")
        expect(page.locator("#stale")).to_contain_text("outage")
        health = server.view.health_json()
        assert health["stale_since"] is not None and health["skipped"] == 0, "an outage skips nothing"
        assert server.follower is not None and server.follower.is_alive()
    finally:
        server.shutdown()


class another_site:
    """A page on another origin (another port) that tries to make the dashboard act."""

    def __init__(self, retry_url: str, cancel_url: str) -> None:
        html = f"""<!doctype html><html><body>
<form id="csrf" method="post" enctype="text/plain" action="{cancel_url}">
<input type="hidden" name='{{"reason": "csrf", "x": "' value='"}}'><button id="go">win a prize</button></form>
<script>
function attack() {{
  return fetch("{retry_url}", {{method: "POST", mode: "no-cors"}}).then(answer => answer.type, () => "withheld");
}}
</script></body></html>""".encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Page)

    def __enter__(self) -> str:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
