"""What every processor container of the `oms` image is, wherever it runs (docker-compose.yml, the Kubernetes
base): where it keeps its state, where it serves its metrics, and the settings that follow from those."""

from __future__ import annotations

from processors.services import METRICS_BASE_PORT

RUN_DIR = "/var/lib/oms"
METRICS_PORT = METRICS_BASE_PORT  # every container has its own address: one port for all
USER_ID = 10001
"""The Dockerfile's `USER`."""
SETTINGS = {
    "OMS_METRICS_HOST": "0.0.0.0",
    "OMS_METRICS_PORT": str(METRICS_PORT),
    "OMS_RUN_DIR": RUN_DIR,
    "OMS_LOG_LEVEL": "INFO",
}
