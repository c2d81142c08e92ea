"""Fulfillment as a routing slip: a pure planner turns the order into an itinerary, activities carry it out.

`planner.plan` decides the steps (pick, pack, gift-wrap, customs, ship, confirm-delivery) and their
arguments; `activities` holds one module per step, each executing against the warehouse, customs and
carrier adapters and able to undo what it did from its log alone. The host that runs them on Kafka is
`processors.routingslip.host`.
"""
