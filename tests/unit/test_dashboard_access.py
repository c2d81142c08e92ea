"""Who may use the dashboard, over HTTP on loopback with its actions in memory (no broker): loopback as before,
anyone else only once logged in (a token, a bearer token, a proxy's user), host names an ingress needs, a
connection that sends nothing closed, and every action audited with who asked."""

from __future__ import annotations

import http.client
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ops.cancel import CancelAnswer
from ops.dashboard.access import (
    BEARER_USER,
    SESSION_COOKIE,
    Access,
    AccessPolicy,
    Caller,
    Sessions,
    Unknown,
    is_local,
)
from ops.dashboard.requests import TOKEN_HEADER
from ops.dashboard.server import Dashboard, http_server
from ops.dashboard.view import View
from processors.runtime.records import utc_now
from processors.tracking.timeline import new_timeline
from schemas.models import CancelOrder, OrderTimeline, RetrySaga
from topology.settings import Settings

TOKEN = "a-long-enough-dashboard-token-0123"
ORDER = "o-1"
ELSEWHERE = {"X-Forwarded-For": "203.0.113.9"}  # relayed by a proxy on this machine: not a local client


@dataclass
class Recorded:
    """The actions asked of the dashboard, done in memory."""

    retries: list[tuple[str, str]] = field(default_factory=list)
    cancels: list[tuple[str, str, str]] = field(default_factory=list)
    redrives: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def retry(self, order_id: str, requested_by: str) -> RetrySaga:
        self.retries.append((order_id, requested_by))
        return RetrySaga(event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), requested_by=requested_by)

    def redrive(self, order_id: str, topics: tuple[str, ...]) -> list[str]:
        self.redrives.append((order_id, topics))
        return []

    def cancel(self, order_id: str, reason: str, requested_by: str) -> tuple[CancelOrder, CancelAnswer | None, float]:
        self.cancels.append((order_id, reason, requested_by))
        command = CancelOrder(
            event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), reason=reason, requested_by=requested_by
        )
        return command, CancelAnswer("cancelled", order_id), 1.0

    @property
    def done(self) -> int:
        return len(self.retries) + len(self.cancels) + len(self.redrives)


@dataclass
class Served:
    server: Dashboard
    actions: Recorded

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of one request, naming the server's own address unless `headers` say
        otherwise; redirects are not followed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in ({"Host": f"127.0.0.1:{self.port}"} | (headers or {})).items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body or b"")))
            connection.endheaders(body)
            answer = connection.getresponse()
            return answer.status, {name.lower(): value for name, value in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def own(self, token: str) -> dict[str, str]:
        """The headers the dashboard's own page sends an action with."""
        return {"Origin": f"http://127.0.0.1:{self.port}", TOKEN_HEADER: token}

    def log_in(self, name: str = "alice", token: str = TOKEN, **headers: str) -> tuple[int, dict[str, str]]:
        body = f"name={name}&token={token}".encode()
        form = {"Origin": f"http://127.0.0.1:{self.port}", "Content-Type": "application/x-www-form-urlencoded"}
        status, answered, _ = self.request("POST", "/login", form | ELSEWHERE | headers, body)
        return status, answered


def page_token(page: bytes) -> str | None:
    found = re.search(rb'<meta name="oms-token" content="([^"]*)">', page)
    return found.group(1).decode() if found else None


def cookie_of(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";", 1)[0]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start a dashboard with these settings over a view holding one order whose saga failed."""
    started: list[Dashboard] = []

    def start(**settings: Any) -> Served:
        view = View(lambda value: OrderTimeline.model_validate_json(value))
        failed = new_timeline(ORDER, utc_now()).model_copy(update={"status": "faulted", "saga": "Failed"})
        view.put(failed, b"")
        actions = Recorded()
        server = http_server(Settings(run_dir=tmp_path, **settings), view, 0, actions)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return Served(server, actions)

    yield start
    for server in started:
        server.shutdown()


def test_a_loopback_client_gets_the_page_and_acts_without_logging_in(serve: Any) -> None:
    served = serve()

    status, _, page = served.request("GET", "/")
    token = page_token(page)
    assert status == 200 and token

    status, _, _ = served.request("POST", f"/api/orders/{ORDER}/retry", served.own(token))
    assert status == 202
    assert served.actions.retries == [(ORDER, "operator:local")]


def test_a_client_from_elsewhere_gets_no_page_no_token_no_data_and_no_action(serve: Any) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))
    _, _, local_page = served.request("GET", "/")
    local_token = page_token(local_page)
    assert local_token is not None

    status, headers, page = served.request("GET", "/", ELSEWHERE)
    assert (status, headers["location"]) == (303, "/login")
    assert page_token(page) is None and b"oms-token" not in page
    status, headers, _ = served.request("GET", "/api/fleet", ELSEWHERE)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    status, _, _ = served.request("POST", f"/api/orders/{ORDER}/retry", ELSEWHERE | served.own(local_token))
    assert status == 401
    assert served.actions.done == 0


def test_without_a_login_configured_the_dashboard_serves_loopback_clients_only(serve: Any) -> None:
    served = serve(dashboard_host="127.0.0.1")

    for method, path in (("GET", "/"), ("GET", "/api/fleet"), ("POST", f"/api/orders/{ORDER}/retry")):
        status, _, body = served.request(method, path, ELSEWHERE)
        assert status == 403 and b"OMS_DASHBOARD_TOKEN" in body, (method, path)
    status, _, login = served.request("GET", "/login", ELSEWHERE)
    assert status == 200 and b"loopback clients only" in login
    assert served.actions.done == 0


def test_a_browser_logs_in_with_the_token_and_acts_in_its_session_audited_by_name(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))
    caplog.set_level(logging.INFO, logger="ops.dashboard.audit")

    status, headers = served.log_in("alice")
    assert (status, headers["location"]) == (303, "/")
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie
    session = {"Cookie": cookie_of(headers)}

    status, headers, page = served.request("GET", "/", ELSEWHERE | session)
    token = page_token(page)
    assert status == 200 and token and b"alice (token)" in page
    # Without a referrer, a browser posts the logout form (and the login form) with `Origin: null`.
    assert headers["referrer-policy"] == served.request("GET", "/login")[1]["referrer-policy"] == "same-origin"
    assert served.request("GET", "/api/fleet", ELSEWHERE | session)[0] == 200
    without_token = {"Origin": f"http://127.0.0.1:{served.port}"}
    assert served.request("POST", f"/api/orders/{ORDER}/retry", ELSEWHERE | session | without_token)[0] == 403
    status, _, _ = served.request("POST", f"/api/orders/{ORDER}/retry", ELSEWHERE | session | served.own(token))

    assert status == 202
    assert served.actions.retries == [(ORDER, "operator:alice (token)")]
    audit = [record.getMessage() for record in caplog.records if record.name == "ops.dashboard.audit"]
    assert any(line.startswith("alice (token) logged in from 127.0.0.1") for line in audit)
    assert any(line.startswith("alice (token) (session) asked to retry order 'o-1': 202") for line in audit)
    refused = [line for line in audit if "asked to /api/orders/o-1/retry" in line]
    assert len(refused) == 1 and ": 403 the request has no X-OMS-Token header" in refused[0]


def test_the_action_token_of_one_caller_does_not_act_for_another(serve: Any) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))
    local_token = page_token(served.request("GET", "/")[2])
    assert local_token is not None
    _, headers = served.log_in("bob")

    status, _, body = served.request(
        "POST", f"/api/orders/{ORDER}/retry", ELSEWHERE | {"Cookie": cookie_of(headers)} | served.own(local_token)
    )

    assert status == 403 and b"does not match" in body
    assert served.actions.done == 0


def test_a_wrong_token_or_a_login_posted_from_another_site_logs_nobody_in(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))
    caplog.set_level(logging.INFO, logger="ops.dashboard.audit")

    status, headers = served.log_in(token="a-long-enough-but-wrong-token")
    assert status == 401 and "set-cookie" not in headers
    status, headers = served.log_in(Origin="http://evil.example")
    assert status == 403 and "set-cookie" not in headers
    assert "failed login from 127.0.0.1" in caplog.text


def test_logging_out_ends_the_session(serve: Any) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))
    _, headers = served.log_in()
    session = {"Cookie": cookie_of(headers)}

    status, headers, _ = served.request("POST", "/logout", ELSEWHERE | session | served.own(""))

    assert (status, headers["location"]) == (303, "/login")
    assert cookie_of(headers) == f"{SESSION_COOKIE}=" and "Max-Age=0" in headers["set-cookie"]
    assert served.request("GET", "/", ELSEWHERE | session)[0] == 303


def test_behind_tls_the_session_cookie_is_sent_over_https_only(serve: Any) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))

    _, headers = served.log_in(**{"X-Forwarded-Proto": "https"})

    assert "Secure" in {part.strip() for part in headers["set-cookie"].split(";")}


def test_an_api_client_acts_with_the_bearer_token_and_no_page(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN))
    caplog.set_level(logging.INFO, logger="ops.dashboard.audit")
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    assert served.request("GET", "/api/fleet", ELSEWHERE | bearer)[0] == 200
    status, _, _ = served.request("POST", f"/api/orders/{ORDER}/cancel", ELSEWHERE | bearer, b'{"reason": "late"}')
    assert status == 200
    assert served.actions.cancels == [(ORDER, "late", f"operator:{BEARER_USER}")]
    assert f"{BEARER_USER} (bearer) asked to cancel order 'o-1': 200" in caplog.text

    wrong = {"Authorization": "Bearer a-long-enough-but-wrong-token"}
    status, _, body = served.request("POST", f"/api/orders/{ORDER}/retry", wrong)
    assert status == 401 and b"not this dashboard's" in body, "a wrong token is refused even on loopback"
    assert served.actions.retries == []


def test_a_user_an_authenticating_proxy_vouches_for_is_served_when_the_setting_names_its_header(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ops.dashboard.audit")
    vouched = ELSEWHERE | {"X-Auth-Request-Email": "alice@example.com"}
    trusting = serve(dashboard_user_header="X-Auth-Request-Email")

    status, _, page = trusting.request("GET", "/", vouched)
    token = page_token(page)
    assert status == 200 and token and b"alice@example.com" in page
    assert trusting.request("POST", f"/api/orders/{ORDER}/retry", vouched | trusting.own(token))[0] == 202
    assert trusting.actions.retries == [(ORDER, "operator:alice@example.com")]
    assert "alice@example.com (proxy) asked to retry order 'o-1': 202" in caplog.text
    status, _, body = trusting.request("GET", "/", ELSEWHERE)
    assert status == 403 and b"X-Auth-Request-Email" in body

    distrusting = serve()
    assert distrusting.request("GET", "/api/fleet", vouched)[0] == 403, "a header no setting names is not trusted"


def test_loopback_clients_log_in_too_when_the_setting_asks(serve: Any) -> None:
    served = serve(dashboard_token=SecretStr(TOKEN), dashboard_login_on_loopback=True)

    status, headers, page = served.request("GET", "/")

    assert (status, headers["location"], page_token(page)) == (303, "/login", None)


def test_a_host_name_the_setting_allows_is_answered_and_others_refused(serve: Any) -> None:
    ingress = serve(dashboard_allowed_hosts="oms.example.com")

    assert ingress.request("GET", "/api/fleet", {"Host": "oms.example.com"})[0] == 200
    status, _, body = ingress.request("GET", "/api/fleet", {"Host": "attacker.example"})
    assert status == 403 and b"Host header" in body
    assert serve().request("GET", "/api/fleet", {"Host": "oms.example.com"})[0] == 403


def test_a_connection_that_does_not_send_its_request_in_time_is_closed(serve: Any) -> None:
    served = serve(dashboard_request_timeout_s=0.2)

    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as client:
        client.sendall(b"GET / HTTP/1.1\r\n")  # and nothing more
        started = time.monotonic()
        closed = client.recv(1024)

    assert closed == b""
    assert time.monotonic() - started < 5


def test_a_session_lasts_its_lifetime_and_no_longer() -> None:
    now = [0.0]
    sessions = Sessions(lifetime_s=60, clock=lambda: now[0])
    session = sessions.open("alice")

    now[0] = 59.0
    assert sessions.user(session) == "alice"
    now[0] = 60.0
    assert sessions.user(session) is None
    assert sessions.user("never-opened") is None


def test_who_asks_is_decided_from_the_peer_and_the_headers() -> None:
    access = Access(AccessPolicy(token=TOKEN, user_header="X-Forwarded-User"))

    assert access.caller("127.0.0.1", {}) == Caller("local", "loopback", "loopback")
    assert access.caller("::1", {}) == Caller("local", "loopback", "loopback")
    assert access.caller("::ffff:127.0.0.1", {}) == Caller("local", "loopback", "loopback")
    assert isinstance(access.caller("10.1.2.3", {}), Unknown)
    assert access.caller("10.1.2.3", {"X-Forwarded-User": "bob\n"}) == Caller("bob", "proxy", "proxy:bob")
    assert access.caller("10.1.2.3", {"Authorization": f"Bearer {TOKEN}"}) == Caller("token", "bearer", "bearer")
    assert isinstance(access.caller("10.1.2.3", {"Authorization": f"Basic {TOKEN}"}), Unknown)
    assert not is_local("127.0.0.1", {"Forwarded": "for=203.0.113.9"})
    assert not is_local("not an address", {})


def test_a_token_is_read_from_its_file_and_one_too_short_to_withstand_guessing_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(f"{TOKEN}\n")

    assert AccessPolicy.of(Settings(dashboard_token_file=secret)).token == TOKEN
    with pytest.raises(ValueError, match="fewer than"):
        AccessPolicy.of(Settings(dashboard_token=SecretStr("hunter2")))
    with pytest.raises(ValueError, match="not both"):
        AccessPolicy.of(Settings(dashboard_token=SecretStr(TOKEN), dashboard_token_file=secret))
