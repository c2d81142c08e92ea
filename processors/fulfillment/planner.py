"""The itinerary of an order's fulfillment, decided once from the order, purely."""

from __future__ import annotations

from processors.adapters.carriers import EU_COUNTRIES, HOME_COUNTRY, eligible_carriers, packing_kind, parcel_estimate
from processors.routingslip.slip import step
from schemas.models import FulfillmentRequest, ItineraryStep, Money
from topology.topics import fulfillment_activity

# The EU is one customs territory: only parcels leaving it are declared.
CUSTOMS_UNION = EU_COUNTRIES

# Orders worth more than this are handed over against a signature. A total in another currency cannot be
# compared with it, so it is signed for too.
SIGNATURE_REQUIRED_ABOVE = Money(amount_minor=25_000, currency="EUR")


def plan(request: FulfillmentRequest) -> list[ItineraryStep]:
    """pick -> pack -> gift-wrap (gifts only) -> customs (outside the customs union only) -> ship ->
    confirm-delivery.

    - pack's `kind`: cold-chain if any line needs it, else fragile if any line is, else standard;
    - ship's `carrier`: the cheapest carrier that takes the parcel, as estimated from the unpacked items, to
      the destination (only express carriers for an express order); `alternates`: the other such carriers,
      comma-separated, in the same order, for the ship step to move on to when a carrier refuses the packed
      parcel. When no carrier qualifies, both are empty and the ship step faults, so that the slip undoes
      what was done before it;
    - confirm-delivery's `signature`: "required" above `SIGNATURE_REQUIRED_ABOVE`, else "none".
    """
    country = request.shipping_address.country
    carriers = [carrier.name for carrier in eligible_carriers(parcel_estimate(request), country, request.priority)]
    total, threshold = request.total, SIGNATURE_REQUIRED_ABOVE
    signed_for = total.currency != threshold.currency or total.amount_minor > threshold.amount_minor

    itinerary = [_step("pick"), _step("pack", kind=packing_kind(request.lines))]
    if request.is_gift:
        itinerary.append(_step("gift-wrap"))
    if country not in CUSTOMS_UNION:
        itinerary.append(_step("customs", origin=HOME_COUNTRY))
    itinerary.append(_step("ship", carrier=carriers[0] if carriers else "", alternates=",".join(carriers[1:])))
    itinerary.append(_step("confirm-delivery", signature="required" if signed_for else "none"))
    return itinerary


def _step(name: str, **arguments: str) -> ItineraryStep:
    """A step addressed to its activity's topic."""
    return step(name, fulfillment_activity(name).name, **arguments)
