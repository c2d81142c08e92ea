"""Who may make the dashboard act, and which parameters it accepts: decided before anything is done."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from ops.dashboard.requests import (
    TOKEN_HEADER,
    Cancel,
    Guard,
    Redrive,
    Refused,
    Retry,
    allowed_hosts,
    body_length,
    parse_action,
    served_names,
)
from topology.topics import ORDERS_COMMANDS, PAYMENTS_EVENTS, TRACKING_ORDERS, WORKFLOW_TOPICS

GUARD = Guard(port=8088)
TOKEN = "s3cret-token"
OWN = {"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1:8088", TOKEN_HEADER: "s3cret-token"}


def test_the_dashboards_own_page_may_act_from_either_local_name() -> None:
    assert GUARD.action_refusal(OWN, TOKEN) is None
    local = OWN | {"Host": "localhost:8088", "Origin": "http://localhost:8088"}
    assert GUARD.action_refusal(local, TOKEN) is None


@pytest.mark.parametrize(
    ("headers", "because"),
    [
        ({k: v for k, v in OWN.items() if k != TOKEN_HEADER}, "has no X-OMS-Token header"),
        (OWN | {TOKEN_HEADER: ""}, "has no X-OMS-Token header"),
        (OWN | {TOKEN_HEADER: "s3cret-tokem"}, "does not match"),
        (OWN | {"Origin": "http://evil.example"}, "comes from another origin (http://evil.example)"),
        (OWN | {"Origin": "null"}, "comes from another origin (null)"),
        (OWN | {"Origin": "http://127.0.0.1:8089"}, "comes from another origin"),
        (OWN | {"Origin": "http://localhost:8088"}, "comes from another origin"),
        ({k: v for k, v in OWN.items() if k != "Origin"}, "has no Origin header"),
        (OWN | {"Host": "evil.example:8088", "Origin": "http://evil.example:8088"}, "Host header is not"),
        (OWN | {"Host": "127.0.0.1:8089", "Origin": "http://127.0.0.1:8089"}, "Host header is not"),
    ],
)
def test_an_action_from_anywhere_but_the_dashboards_page_is_refused(headers: dict[str, str], because: str) -> None:
    refusal = GUARD.action_refusal(headers, TOKEN)
    assert refusal is not None and because in refusal


def test_every_request_must_name_the_dashboards_own_address() -> None:
    assert GUARD.host_refusal("127.0.0.1:8088") is None
    assert GUARD.host_refusal("localhost:8088") is None
    for rebound in ("attacker.example", "attacker.example:8088", "127.0.0.1", None):
        assert GUARD.host_refusal(rebound) is not None


def test_a_dashboard_bound_elsewhere_answers_to_that_address_and_to_loopback() -> None:
    bound = Guard(8088, served_names("10.0.0.5", ("oms-dashboard-0",)))
    everywhere = Guard(8088, served_names("0.0.0.0", ("oms-dashboard-0", "oms-dashboard-0.svc")))
    ipv6 = Guard(8088, served_names("::1", ()))

    assert bound.host_refusal("10.0.0.5:8088") is None
    assert bound.host_refusal("127.0.0.1:8088") is None
    assert bound.host_refusal("oms-dashboard-0:8088") is not None, "a name the server was not bound to"
    assert everywhere.host_refusal("oms-dashboard-0.svc:8088") is None
    assert everywhere.host_refusal("0.0.0.0:8088") is not None
    assert everywhere.host_refusal("attacker.example:8088") is not None
    assert ipv6.host_refusal("[::1]:8088") is None


def test_a_host_name_the_setting_allows_is_answered_at_any_port_or_the_one_it_names() -> None:
    behind_ingress = Guard(8088, allowed=allowed_hosts(" OMS.example.com, oms-dashboard.oms.svc:8088 ,"))

    assert behind_ingress.allowed == ("oms.example.com", "oms-dashboard.oms.svc:8088")
    assert behind_ingress.host_refusal("oms.example.com") is None
    assert behind_ingress.host_refusal("OMS.Example.com:443") is None
    assert behind_ingress.host_refusal("oms-dashboard.oms.svc:8088") is None
    assert behind_ingress.host_refusal("127.0.0.1:8088") is None, "loopback still"
    for refused in ("oms-dashboard.oms.svc", "oms-dashboard.oms.svc:80", "example.com", "evil.oms.example.com", None):
        refusal = behind_ingress.host_refusal(refused)
        assert refusal is not None and "OMS_DASHBOARD_ALLOWED_HOSTS" in refusal, refused
    assert GUARD.host_refusal("oms.example.com") is not None, "no name is allowed unless the setting says so"


def test_behind_an_ingress_that_ends_tls_the_page_acts_from_its_https_origin() -> None:
    guard = Guard(8088, allowed=("oms.example.com",))
    headers = {"Host": "oms.example.com", "Origin": "https://oms.example.com", TOKEN_HEADER: TOKEN}

    assert guard.action_refusal(headers, TOKEN) is None
    refusal = guard.action_refusal(headers | {"Origin": "https://evil.example"}, TOKEN)
    assert refusal is not None and "another origin" in refusal


def test_a_caller_that_needs_no_action_token_is_held_to_the_host_alone() -> None:
    assert GUARD.action_refusal({"Host": "127.0.0.1:8088"}, None) is None
    assert GUARD.action_refusal({"Host": "evil.example:8088"}, None) is not None


def test_retry_and_cancel_take_an_order_id_and_cancel_a_reason() -> None:
    assert parse_action("/api/orders/o-1/retry", "", b"") == Retry("o-1")
    assert parse_action("/api/orders/o%2F1/retry", "", b"") == Retry("o/1")
    assert parse_action("/api/orders/o-1/cancel", "", b'{"reason": " late "}') == Cancel("o-1", "late")


def test_redrive_names_declared_dead_letter_topics_or_every_one() -> None:
    everything = parse_action("/api/orders/o-1/redrive", "", b"")
    assert isinstance(everything, Redrive)
    assert set(everything.topics) == {topic.dead_letter_topic.name for topic in WORKFLOW_TOPICS}
    by_topic = f"topic={ORDERS_COMMANDS.name}&topic={PAYMENTS_EVENTS.dead_letter_topic.name}"
    assert parse_action("/api/orders/o-1/redrive", by_topic, b"") == Redrive(
        "o-1", (ORDERS_COMMANDS.dead_letter_topic.name, PAYMENTS_EVENTS.dead_letter_topic.name)
    )
    same_twice = f"topic={ORDERS_COMMANDS.name}&topic={ORDERS_COMMANDS.dead_letter_topic.name}"
    assert parse_action("/api/orders/o-1/redrive", same_twice, b"") == Redrive(
        "o-1", (ORDERS_COMMANDS.dead_letter_topic.name,)
    )


@pytest.mark.parametrize(
    ("path", "query", "body", "refused"),
    [
        ("/api/orders/o-1/redrive", "topic=oms.nowhere", b"", "topic 'oms.nowhere' is not a declared dead-letter"),
        ("/api/orders/o-1/redrive", f"topic={TRACKING_ORDERS.name}", b"", "is not a declared dead-letter topic"),
        ("/api/orders/o-1/redrive", "topic=", b"", "topic '' is not a declared dead-letter topic"),
        ("/api/orders/o-1/redrive", "topics=x", b"", "redrive takes no parameter 'topics'"),
        ("/api/orders/o-1/retry", "force=1", b"", "retry takes no parameter 'force'"),
        ("/api/orders/o-1/retry", "a&&=b", b"", "the query string cannot be parsed"),
        ("/api/orders/%20/retry", "", b"", "the order id is blank"),
        ("/api/orders/%20o-1/retry", "", b"", "the order id starts or ends with a space"),
        ("/api/orders/o%0A1/redrive", "", b"", "the order id holds characters that cannot be printed"),
        (f"/api/orders/{'x' * 201}/retry", "", b"", "the order id is longer than 200 characters"),
        ("/api/orders/o-1/cancel", "", b"", "say why the order is cancelled (reason)"),
        ("/api/orders/o-1/cancel", "", b'{"reason": 3}', "say why the order is cancelled (reason)"),
        ("/api/orders/o-1/cancel", "", b"reason=x", "the request is not JSON"),
        ("/api/orders/o-1/cancel", "", b'{"reason": "' + b"x" * 501 + b'"}', "the reason is longer than 500"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(path: str, query: str, body: bytes, refused: str) -> None:
    answer = parse_action(path, query, body)
    assert isinstance(answer, Refused)
    assert answer.status == HTTPStatus.BAD_REQUEST
    assert refused in answer.reason


@pytest.mark.parametrize("path", ["/api/orders/o-1/delete", "/api/orders/o-1", "/api/orders/o-1/retry/x", "/"])
def test_an_unknown_action_is_not_found(path: str) -> None:
    answer = parse_action(path, "", b"")
    assert isinstance(answer, Refused) and answer.status == HTTPStatus.NOT_FOUND


def test_a_body_length_must_be_a_small_non_negative_number() -> None:
    assert body_length(None) == 0
    assert body_length("17") == 17
    assert body_length("-1") == Refused(HTTPStatus.BAD_REQUEST, "Content-Length is negative")
    assert body_length("ten") == Refused(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
    too_long = body_length("4097")
    assert isinstance(too_long, Refused) and too_long.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
