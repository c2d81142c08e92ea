"""Stream processors of the order workflows, one module per service, on Quix Streams.

Each service module has a pure core (decisions over records and state) and a thin `build(app)` that wires
it into a Quix Streams pipeline; `processors.runtime` holds what they share.
"""
