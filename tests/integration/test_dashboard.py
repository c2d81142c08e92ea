"""The web dashboard in headless Chromium (the Debian package, driven by Playwright) over a running pipeline."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ops.dashboard.server import serve
from ops.produce import produce_orders
from ops.slips import resume
from processors.runtime.records import utc_now
from tests.integration.harness import Processes, Watcher
from tests.integration.test_cancellation import SKU, activities_held_back, cancel, stopping, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from tests.integration.test_routing_slips import order
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ROUTING_SLIPS_EVENTS, SAGAS_EVENTS

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


def post(url: str, body: bytes) -> tuple[int, dict[str, str]]:
    """The status and JSON body of a POST to the dashboard."""
    request = urllib.request.Request(url, data=body, method="POST")
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
