#!/usr/bin/env bash
# Installs the real tools the test suite checks against. Debian/Ubuntu, as root.
# Idempotent: safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive

apt-get update
apt-get install -y --no-install-recommends \
  ca-certificates curl xz-utils gzip openssl \
  dpkg-dev lintian \
  systemd \
  wpasupplicant \
  iproute2 dnsmasq-base openssh-client \
  mmdebstrap debian-archive-keyring arch-test \
  qemu-user-static binfmt-support \
  qemu-system-x86 qemu-system-arm qemu-utils ipxe-qemu ovmf \
  dosfstools mtools e2fsprogs fdisk util-linux uidmap \
  bmap-tools \
  prometheus-node-exporter \
  docker.io

# On a host that runs systemd, installing prometheus-node-exporter starts its service on
# *:9100, and then no local test cluster can bind <address>:9100. The tests only need the
# binary: the service is stopped and disabled (dockerd is left alone; its test runs its own).
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet prometheus-node-exporter.service 2>/dev/null; then
  echo "setup-test-host: disabling the prometheus-node-exporter service (the tests run their own on :9100)"
  systemctl disable --now prometheus-node-exporter.service
fi

# Consul 1.8.7 and Prometheus 2.24.1 (the last Debian build with consul_sd) come from
# Debian bullseye. They are unpacked under /opt/piinit-test-tools with a private apt
# state, so the host's apt configuration is not touched.
TOOLS=/opt/piinit-test-tools
mkdir -p "$TOOLS/apt/lists/partial" "$TOOLS/debs" "$TOOLS/root"
# The Debian mirror the host's apt already uses (deb822 or one-line sources alike).
MIRROR=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' | awk '$1 ~ /\/debian\/?$/ && $2 !~ /security|updates|backports/ {print $1; exit}')
MIRROR=${MIRROR%/}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bullseye main" > "$TOOLS/apt/sources.list"
APTOPTS=(-o Dir::Etc::SourceList="$TOOLS/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$TOOLS/apt/lists" -o Dir::Cache::archives="$TOOLS/debs"
         -o APT::Architecture=amd64)
apt-get "${APTOPTS[@]}" update
( cd "$TOOLS/debs" && apt-get "${APTOPTS[@]}" download consul prometheus )
for deb in "$TOOLS"/debs/*.deb; do dpkg-deb -x "$deb" "$TOOLS/root"; done
ln -sf "$TOOLS/root/usr/bin/consul" /usr/local/bin/consul
ln -sf "$TOOLS/root/usr/bin/prometheus" /usr/local/bin/prometheus
ln -sf "$TOOLS/root/usr/bin/promtool" /usr/local/bin/promtool
# sed, not head: head exits after one line and, under pipefail, the writer's SIGPIPE
# (exit 141) would fail the whole script whenever it loses that race.
consul version | sed -n 1p
promtool --version 2>&1 | sed -n 1p

# binfmt_misc for foreign-arch chroots (mmdebstrap, qemu-user-static)
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
fi
update-binfmts --enable >/dev/null 2>&1 || true

# An ordinary user with subordinate IDs, for the rootless image build test
# (test/e2e/image/rootless.test.ts runs piinit image as this user).
if ! id piinit-rootless >/dev/null 2>&1; then
  useradd --system --create-home --home-dir /var/lib/piinit-rootless --shell /usr/sbin/nologin piinit-rootless
fi
if ! grep -q '^piinit-rootless:' /etc/subuid; then usermod --add-subuids 300000-365535 piinit-rootless; fi
if ! grep -q '^piinit-rootless:' /etc/subgid; then usermod --add-subgids 300000-365535 piinit-rootless; fi
