"""What the dashboard accepts, decided apart from the HTTP server: which host names it answers to, whether a
request to act comes from its own page, and whether an action's parameters make sense.

Every request names, as its `Host`, an address the server listens on or a name the `dashboard_allowed_hosts`
setting allows (an ingress's): a DNS-rebound name is not. An action (retry, redrive, cancel) from a browser is
taken only from the dashboard's own page: the request carries the action token embedded in the page served to
that caller (another site's page cannot read it), and its `Origin` is the server's own. Who the caller is, and
whether they may be served at all, is `access.py`'s.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, unquote

from topology.topics import WORKFLOW_TOPICS, dead_letters_of

TOKEN_HEADER = "X-OMS-Token"
MAX_BODY_BYTES = 4096
MAX_ORDER_ID = 200
MAX_REASON = 500
LOCAL_NAMES = ("127.0.0.1", "localhost")
# Hosts that mean "every address of the machine" when bound to.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")

# Each declared dead-letter topic, by its own name and by the name of the topic whose dead letters it holds.
DEAD_LETTER_TOPICS: dict[str, str] = {
    name: dead_letters_of(topic).name for topic in WORKFLOW_TOPICS for name in (topic.name, dead_letters_of(topic).name)
}


@dataclass(frozen=True)
class Retry:
    order_id: str


@dataclass(frozen=True)
class Redrive:
    order_id: str
    topics: tuple[str, ...]  # dead-letter topics, every declared one when the request names none


@dataclass(frozen=True)
class Cancel:
    order_id: str
    reason: str


Action = Retry | Redrive | Cancel


@dataclass(frozen=True)
class Refused:
    status: HTTPStatus
    reason: str


class Headers(Protocol):
    def get(self, name: str) -> str | None: ...


def served_names(bind_host: str, machine_names: tuple[str, ...]) -> tuple[str, ...]:
    """The names a browser may use for a dashboard bound to `bind_host`: loopback's, the bound address, and the
    machine's own names (`machine_names`) when it is bound to every address."""
    names = [*LOCAL_NAMES]
    extra = machine_names if bind_host in WILDCARD_HOSTS else (bind_host,)
    names += [name for name in extra if name and name not in names]
    return tuple(names)


def address(name: str, port: int) -> str:
    """`name:port` as a Host header has it (an IPv6 address in brackets)."""
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def allowed_hosts(setting: str) -> tuple[str, ...]:
    """The Host values `dashboard_allowed_hosts` lists (comma-separated), in lower case."""
    return tuple(dict.fromkeys(name.strip().lower() for name in setting.split(",") if name.strip()))


def split_host(host: str) -> tuple[str, str | None]:
    """A Host header's name and port (None when it names none); an IPv6 address without its brackets."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":") if rest.startswith(":") else None
    name, colon, port = host.rpartition(":")
    return (name, port) if colon and ":" not in name else (host, None)


@dataclass(frozen=True)
class Guard:
    """Which requests are for this server: those naming one of `names` at `port`, or one of `allowed` (a name,
    at any port, or `name:port`); and which actions come from its own page."""

    port: int
    names: tuple[str, ...] = LOCAL_NAMES
    allowed: tuple[str, ...] = ()

    def host_refusal(self, host: str | None) -> str | None:
        """Why a request naming `host` is not for this server, if it is not (checked on every request)."""
        if host is not None and (
            host in {address(name, self.port) for name in self.names} or self._allowed(host.lower())
        ):
            return None
        return (
            f"the Host header is not this dashboard's address ({address(self.names[0], self.port)}) nor one "
            "OMS_DASHBOARD_ALLOWED_HOSTS allows"
        )

    def _allowed(self, host: str) -> bool:
        return host in self.allowed or split_host(host)[0] in self.allowed

    def action_refusal(self, headers: Headers, token: str | None) -> str | None:
        """Why a request to act does not come from the dashboard's own page served with action token `token`, if
        it does not; `token` None: the caller needs none (an API client with a bearer token)."""
        host = headers.get("Host")
        problem = self.host_refusal(host)
        if problem is not None or token is None:
            return problem
        origin = headers.get("Origin")
        if origin is None:
            return "the request has no Origin header"
        # Behind an ingress that ends TLS, the browser's origin is https: the same host name, served securely.
        if origin not in (f"http://{host}", f"https://{host}"):
            return f"the request comes from another origin ({origin[:100]})"
        offered = headers.get(TOKEN_HEADER)
        if not offered:
            return f"the request has no {TOKEN_HEADER} header: actions come from the dashboard's page"
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return (
                f"the {TOKEN_HEADER} header does not match this caller's (was the page served before a restart or "
                "another login?)"
            )
        return None


def body_length(header: str | None) -> int | Refused:
    """The body length a `Content-Length` header announces, or why it is not acceptable."""
    try:
        length = int(header or 0)
    except ValueError:
        return Refused(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
    if length < 0:
        return Refused(HTTPStatus.BAD_REQUEST, "Content-Length is negative")
    if length > MAX_BODY_BYTES:
        return Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request is larger than {MAX_BODY_BYTES} bytes")
    return length


def parse_action(path: str, query: str, body: bytes) -> Action | Refused:
    """The action a POST to `path?query` with `body` asks for, or why it is refused."""
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[:2] != ["api", "orders"] or parts[3] not in ("retry", "redrive", "cancel"):
        return Refused(HTTPStatus.NOT_FOUND, f"nothing to do at {path[:100]}")
    order_id, verb = unquote(parts[2]), parts[3]
    problem = order_id_problem(order_id)
    if problem is not None:
        return Refused(HTTPStatus.BAD_REQUEST, problem)
    try:
        parameters = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=20)
    except ValueError:
        return Refused(HTTPStatus.BAD_REQUEST, "the query string cannot be parsed")
    expected = {"topic"} if verb == "redrive" else set()
    unexpected = sorted(set(parameters) - expected)
    if unexpected:
        return Refused(HTTPStatus.BAD_REQUEST, f"{verb} takes no parameter {unexpected[0][:50]!r}")
    if verb == "retry":
        return Retry(order_id)
    if verb == "redrive":
        return redrive_of(order_id, parameters.get("topic", []))
    reason = cancel_reason(body)
    return reason if isinstance(reason, Refused) else Cancel(order_id, reason)


def order_id_problem(order_id: str) -> str | None:
    """What is wrong with an order id taken from a URL, if anything."""
    if not order_id.strip():
        return "the order id is blank"
    if len(order_id) > MAX_ORDER_ID:
        return f"the order id is longer than {MAX_ORDER_ID} characters"
    if not order_id.isprintable():
        return "the order id holds characters that cannot be printed"
    if order_id != order_id.strip():
        return "the order id starts or ends with a space"
    return None


def redrive_of(order_id: str, topics: list[str]) -> Redrive | Refused:
    """A redrive of the order's dead letters on `topics` (declared workflow or dead-letter topics; none: all)."""
    unknown = [topic for topic in topics if topic not in DEAD_LETTER_TOPICS]
    if unknown:
        return Refused(HTTPStatus.BAD_REQUEST, f"topic {unknown[0][:100]!r} is not a declared dead-letter topic")
    chosen = [DEAD_LETTER_TOPICS[topic] for topic in topics] or sorted(set(DEAD_LETTER_TOPICS.values()))
    return Redrive(order_id, tuple(dict.fromkeys(chosen)))


def cancel_reason(body: bytes) -> str | Refused:
    """The reason a cancel request's JSON body (`{"reason": "..."}`) gives, or what is wrong with the body."""
    if len(body) > MAX_BODY_BYTES:
        return Refused(HTTPStatus.BAD_REQUEST, f"the request is larger than {MAX_BODY_BYTES} bytes")
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return Refused(HTTPStatus.BAD_REQUEST, "the request is not JSON")
    reason = request.get("reason") if isinstance(request, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return Refused(HTTPStatus.BAD_REQUEST, "say why the order is cancelled (reason)")
    if len(reason) > MAX_REASON:
        return Refused(HTTPStatus.BAD_REQUEST, f"the reason is longer than {MAX_REASON} characters")
    return reason.strip()
