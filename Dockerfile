# The processors' image: `docker build -t oms:0.1.0 .`, then `docker run oms:0.1.0 run payments` (any `oms` verb).
# docker-compose.yml and ops/deploy/k8s/ run it, one processor per container. tests/integration/test_image_install.py
# runs these steps in a fresh venv to show the image's install works; tests/unit/test_image.py checks their shape.
# An exact tag, so that neither Python nor Debian moves under a rebuild. The registry re-pushes a tag with OS fixes:
# where builds must be bit-for-bit the same, add the digest it has then (`python:3.11.14-slim-bookworm@sha256:...`).
FROM python:3.11.14-slim-bookworm

ENV VENV=/opt/oms \
    OMS_RUN_DIR=/var/lib/oms \
    OMS_METRICS_HOST=0.0.0.0 \
    OMS_METRICS_PORT=9400 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
# Dependencies first, from the lock alone (every one pinned, with its hashes): a change to the code reuses this layer.
COPY requirements.lock ./
RUN python -m venv "$VENV" \
    && "$VENV/bin/pip" install --quiet --require-hashes --only-binary=:all: --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY ops ops
COPY processors processors
COPY schemas schemas
COPY topology topology
# The project alone, built by the locked setuptools; `pip check` fails the build if the lock misses a dependency.
RUN "$VENV/bin/pip" install --quiet --no-deps --no-build-isolation . \
    && "$VENV/bin/pip" check \
    && "$VENV/bin/oms" processors >/dev/null
RUN mkdir -p "$OMS_RUN_DIR" && chgrp 0 "$OMS_RUN_DIR" && chmod g=u "$OMS_RUN_DIR"

ENV PATH=/opt/oms/bin:$PATH
USER 10001:0
WORKDIR /var/lib/oms
EXPOSE 9400
# Alive while the processor's loop goes round (its /healthz on the metrics port). The slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['OMS_METRICS_PORT']}/healthz\", timeout=4)"]
ENTRYPOINT ["oms"]
CMD ["--help"]
