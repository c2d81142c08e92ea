"""Routing slips in Kafka headers, after MassTransit Courier: the slip, its activities and their host."""
