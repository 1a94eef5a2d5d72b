#!/usr/bin/env bash
# Debian packages the tests run for real: Chromium (HTML report), PostgreSQL (leak zoo,
# shared storage), Prometheus with promtool (SLA threshold) and Alertmanager (routing by owner), MariaDB (go-sql-driver/mysql
# stacks). Installs only what is missing, in one apt run; without root it says what will skip.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: not root or no apt-get; tests needing ${need[*]} will skip" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
# The packaged services are not used (tests start their own servers): keep them from running.
for svc in postgresql prometheus prometheus-alertmanager mariadb; do
  service "$svc" stop >/dev/null 2>&1 || true
done
