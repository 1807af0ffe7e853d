# The fedapp image: SuperLink, SuperExec (ServerApp) and SuperNode (ClientApp)
# pods all run it, each with its own `fedapp superlink|superexec|supernode`.
# Build: docker build -t fedapp:0.1.0 .

# Pinned so that a rebuild gets the same Python; bump deliberately.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/fedapp
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fedapp ./fedapp
COPY strategies ./strategies
COPY ui ./ui
# Every dependency ships as a wheel; what a build stage might compile stays here.
RUN /opt/fedapp/bin/pip install . \
    && /opt/fedapp/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE}
# A fixed, high UID: Kubernetes' runAsNonRoot checks it, and it owns no host file.
RUN groupadd --system --gid 10001 fedapp \
    && useradd --system --uid 10001 --gid fedapp --home-dir /home/fedapp \
        --create-home --shell /usr/sbin/nologin fedapp \
    && mkdir -p /var/lib/flower /var/lib/fedapp \
    && chown fedapp:fedapp /var/lib/flower /var/lib/fedapp
COPY --from=build /opt/fedapp /opt/fedapp
# FLWR_HOME holds the installed Flower App bundles; the working folder gets
# `runs/`. Both are volumes in Kubernetes, where the root filesystem is read-only.
# The pods reach nothing outside the federation (NetworkPolicy), so Flower's
# telemetry and update check are off rather than left to time out.
ENV PATH=/opt/fedapp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/fedapp \
    FLWR_HOME=/var/lib/flower \
    FLWR_TELEMETRY_ENABLED=0 \
    FLWR_DISABLE_UPDATE_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /var/lib/fedapp
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["fedapp"]
CMD ["--help"]
