"""Topology as code: every topic declared once, and the settings that say where the cluster is."""
