# One image for every labcloud process; the command picks the role (see docker-compose.yml).
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev gcc pkg-config libvirt-dev rrdtool rrdcached librrd-dev qemu-utils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/labcloud
COPY pyproject.toml ./
COPY common ./common
COPY labcloud ./labcloud
COPY services ./services
COPY hostagent ./hostagent
COPY gateway ./gateway
COPY imagebuilder ./imagebuilder
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -e . \
 && /opt/venv/bin/python -m gateway.portal.vendor
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore::DeprecationWarning
CMD ["labcloud", "--help"]
