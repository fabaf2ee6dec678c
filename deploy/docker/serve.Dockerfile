# conveyor-serve: `conveyor serve` and what it needs, nothing else (no Great Expectations,
# DVC, Airflow, PyTorch, matplotlib or MLflow's server). Non-root, read-only root
# filesystem (writable: /var/lib/conveyor and /tmp), listens on 8080.
#   make images   (builds build/wheelhouse from requirements.lock first; no network here)
ARG BASE_IMAGE=docker.io/library/python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

# The build stage may add tools (binutils strips debug symbols when it is there); the
# virtualenv it makes runs on BASE_IMAGE, so both must carry the same Python.
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BASE_IMAGE} AS runtime
RUN --mount=type=bind,source=deploy/docker/runtime-libs.sh,target=/tmp/runtime-libs.sh \
    sh /tmp/runtime-libs.sh

FROM ${BUILD_IMAGE} AS build
RUN --mount=type=bind,source=deploy/docker/runtime-libs.sh,target=/tmp/runtime-libs.sh \
    sh /tmp/runtime-libs.sh
COPY deploy/docker/slim-venv.sh /usr/local/bin/slim-venv
# Copied, not bind-mounted: a copy's content is part of the layer cache key.
COPY build/wheelhouse /wheels
COPY requirements.lock /src/requirements.lock
RUN python3 -m venv /opt/conveyor/venv \
    && /opt/conveyor/venv/bin/python -m pip install --quiet --no-index --find-links /wheels \
        --no-compile -c /src/requirements.lock conveyor-mlops \
    && SLIM_DROP="google-auth cryptography cffi pycparser pyasn1 pyasn1-modules" \
        slim-venv /opt/conveyor/venv conveyor.cli conveyor.serving.app conveyor.serving.slot \
        conveyor.serving.follow conveyor.registry.verified mlflow.sklearn mlflow.pyfunc \
        onnxruntime skops.io sklearn.ensemble sklearn.linear_model sklearn.pipeline \
        sklearn.compose sklearn.preprocessing sklearn.impute xgboost lightgbm uvicorn \
        uvloop httptools

FROM runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="conveyor-serve" \
      org.opencontainers.image.description="Conveyor model server (conveyor serve)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}"
RUN echo 'conveyor:x:10001:10001:conveyor:/var/lib/conveyor:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'conveyor:x:10001:' >> /etc/group \
    && mkdir -p /var/lib/conveyor \
    && chown 10001:10001 /var/lib/conveyor
COPY --from=build /opt/conveyor/venv /opt/conveyor/venv
ENV PATH=/opt/conveyor/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/conveyor \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1
USER 10001:10001
WORKDIR /var/lib/conveyor
VOLUME ["/var/lib/conveyor", "/tmp"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
ENTRYPOINT ["conveyor"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
