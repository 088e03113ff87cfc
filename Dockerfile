# syntax=docker/dockerfile:1
# emr-serverless-exporter container image.
#   docker build -t emr-serverless-exporter .
#   docker run --rm -p 9865:9865 --read-only emr-serverless-exporter --demo
# The image runs as UID/GID 65532 and writes nothing: it works with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: install the project and its dependencies into a virtual environment -----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# pip compiles the .pyc files here, so the final image never needs to write them.
RUN pip install . \
    && python -m compileall -q /opt/venv \
    && emr-serverless-exporter --version

# --- final: the virtual environment on a clean base, as a non-root user ---------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 65532 exporter \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin exporter
COPY --from=builder /opt/venv /opt/venv
# The default configuration: the documented example, all defaults. The Helm chart mounts its
# ConfigMap over /etc/emr-serverless-exporter.
COPY config.yaml /etc/emr-serverless-exporter/config.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="emr-serverless-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS EMR Serverless interactive sessions" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
WORKDIR /
EXPOSE 9865
ENTRYPOINT ["emr-serverless-exporter"]
CMD ["--config.file=/etc/emr-serverless-exporter/config.yaml"]
