# The processors' image: `docker build -t oms:0.1.0 .`, then `docker run oms:0.1.0 run payments` (any `oms` verb).
# docker-compose.yml and ops/deploy/k8s/ run it; tests/unit/test_deployment.py runs these RUN steps in a fresh
# venv to show the image's install works.
FROM python:3.11-slim

ENV VENV=/opt/oms \
    OMS_RUN_DIR=/var/lib/oms \
    OMS_METRICS_HOST=0.0.0.0 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ops ops
COPY processors processors
COPY schemas schemas
COPY topology topology

RUN python -m venv "$VENV" && "$VENV/bin/pip" install --quiet . && "$VENV/bin/oms" processors >/dev/null
RUN mkdir -p "$OMS_RUN_DIR" && chgrp 0 "$OMS_RUN_DIR" && chmod g=u "$OMS_RUN_DIR"

ENV PATH=/opt/oms/bin:$PATH
USER 10001:0
WORKDIR /var/lib/oms
EXPOSE 9400
ENTRYPOINT ["oms"]
CMD ["--help"]
