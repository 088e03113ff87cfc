# syntax=docker/dockerfile:1
# emr-serverless-exporter container image.
#   docker build -t emr-serverless-exporter .
#   docker run --rm -p 9865:9865 --read-only emr-serverless-exporter --demo
# The image runs as UID/GID 65532 and writes nothing: it works with a read-only root filesystem.
# The release workflow (.github/workflows/release.yml) builds it for linux/amd64 and linux/arm64 with
#   --build-arg VERSION=<the tag without v> --build-arg REVISION=<the commit> --build-arg SOURCE=<the repository URL>
# VERSION must then be the version of the package it installs: the build fails otherwise.

ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: install the project and its dependencies into a virtual environment -----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter ./exporter
# The simulator is a package of its own, installed beside the exporter so that `--demo` works in the image.
COPY emr_serverless_simulator ./emr_serverless_simulator
# The README's install: the package and its runtime dependencies, no extra. pip compiles the .pyc
# files here, so the final image never needs to write them.
RUN pip install . \
    && python -m compileall -q /opt/venv \
    && emr-serverless-exporter --version
ARG VERSION=""
RUN installed="$(python -c 'import importlib.metadata as m; print(m.version("emr-serverless-exporter"))')" \
    && if [ -n "${VERSION}" ] && [ "${VERSION}" != "${installed}" ]; then \
         echo "VERSION=${VERSION} but the package is ${installed}" >&2; exit 1; \
       fi

# --- final: the virtual environment on a clean base, as a non-root user ---------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 65532 exporter \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin exporter
COPY --from=builder /opt/venv /opt/venv
# The default configuration: the documented example, all defaults. The Helm chart mounts its
# ConfigMap over /etc/emr-serverless-exporter.
COPY config.yaml /etc/emr-serverless-exporter/config.yaml
# HEALTHCHECK_URL is what the HEALTHCHECK below fetches: change it with the listen address, e.g.
# docker run -e HEALTHCHECK_URL=http://127.0.0.1:9100/healthz IMAGE --web.listen-address=:9100
# (https:// with --web.config.file TLS; the certificate is not verified, it is loopback).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HEALTHCHECK_URL=http://127.0.0.1:9865/healthz
ARG VERSION=""
ARG REVISION=""
ARG SOURCE=https://github.com/emr-serverless-exporter/emr-serverless-exporter
LABEL org.opencontainers.image.title="emr-serverless-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS EMR Serverless interactive sessions" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
USER 65532:65532
WORKDIR /
EXPOSE 9865
# /healthz answers 200 while the process serves, without authentication. Kubernetes ignores this and
# uses the chart's probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4, context=ssl._create_unverified_context())"]
ENTRYPOINT ["emr-serverless-exporter"]
CMD ["--config.file=/etc/emr-serverless-exporter/config.yaml"]
