"""Adapters to external systems (payment gateway, carriers, warehouse), each with a deterministic simulator."""
