# Two commands on a fresh Debian 12 machine (root): `make run` and `make test`.
# Both install what they need idempotently: Debian packages, then one virtualenv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
APT_PACKAGES := python3-venv python3-dev gcc pkg-config libvirt-dev libvirt0 rabbitmq-server \
	qemu-utils rrdtool rrdcached librrd-dev docker-compose sqlite3 iproute2 postgresql \
	libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 dnsmasq-base e2fsprogs openssh-client cpio \
	syslinux syslinux-common mtools dosfstools fdisk nftables iptables
# Only for `make test`: the system python3 libraries Debian's cloud-init needs, so a test can run
# cloud-init's own EC2 datasource against the metadata service; Debian's chromium, which the
# browser tests drive through Playwright (Playwright cannot download its own browsers here);
# lvm2, for the logical storage pool's test on a loop device (tests/hostagent/test_logical_pool_real.py).
APT_TEST_PACKAGES := python3-requests python3-yaml python3-jinja2 python3-configobj python3-jsonpatch \
	python3-jsonschema python3-netifaces python3-oauthlib \
	chromium \
	lvm2

.PHONY: run test setup test-setup system-packages venv portal-assets screenshots

setup: system-packages venv portal-assets

test-setup: setup
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(APT_TEST_PACKAGES)"

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# The portal's htmx and Pico CSS: npm tarballs checked against their pinned integrity hashes,
# fetched once and served by the gateway (never from a CDN at run time).
portal-assets: venv
	@$(VENV)/bin/python -m gateway.portal.vendor

run: setup
	$(VENV)/bin/labcloud run

# Fast tests first (unit, then services over RabbitMQ), then the whole system end to end on
# libvirt's test driver, then the portal in a real browser, then real QEMU guests. The browser tier
# runs without eventlet's monkey-patching (Playwright's sync API hangs under it).
# Each tier prints its ten slowest tests (where the suite's 20 minutes go).
test: test-setup
	$(VENV)/bin/python -m pytest -q --durations=10 tests -m "not e2e and not browser and not realguest"
	$(VENV)/bin/python -m pytest -q --durations=10 tests -m e2e
	LABCLOUD_TESTS_GREEN=0 $(VENV)/bin/python -m pytest -q --durations=10 tests -m "browser and not realguest"
	$(VENV)/bin/python -m pytest -q --durations=10 tests -m "realguest and not browser"
	LABCLOUD_TESTS_GREEN=0 $(VENV)/bin/python -m pytest -q --durations=10 tests -m "realguest and browser"

# The README's screenshots, made by the browser tests.
screenshots: test-setup
	LABCLOUD_TESTS_GREEN=0 LABCLOUD_SCREENSHOT_DIR=docs/screenshots $(VENV)/bin/python -m pytest -q tests -m browser
