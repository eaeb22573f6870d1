#!/bin/bash
# Run isolated privileged libvirtd "hosts" on one machine, without systemd.
#
#   tools/libvirt_hosts.sh start NAME LISTEN_IP HOST_UUID MIGRATION_PORT_MIN
#   tools/libvirt_hosts.sh stop NAME
#
# Each host is a libvirtd in its own mount+UTS namespace with its own /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt (bind mounts
# of $BASE/NAME/*), listening on qemu+tcp://LISTEN_IP/system without auth, with its own
# host UUID and migration address/ports, so live migration between two of them works.
# Files outside those directories (an instances_path under /tmp) look the same to all.
# $NOVALITE_LIBVIRT_HOSTS (default /var/tmp/novalite-libvirt-hosts) is BASE; the cache
# directory is kept between runs (a cold QEMU capability probe takes ~8 s per host).
# Needs root, libvirtd, unshare. start prints the libvirtd PID once it answers.
set -euo pipefail
BASE=${NOVALITE_LIBVIRT_HOSTS:-/var/tmp/novalite-libvirt-hosts}
ACTION=${1:?usage: libvirt_hosts.sh start|stop NAME ...}
NAME=${2:?host name required}
H=$BASE/$NAME

stop_host() {
  [ -f "$H/pid" ] || return 0
  local pid sock uri d
  pid=$(cat "$H/pid")
  sock="$H/run/libvirt-sock"
  uri="qemu+unix:///system?socket=$sock"
  if [ -S "$sock" ]; then
    # qemu outlives libvirtd: destroy the guests first.
    for d in $(virsh -c "$uri" list --name 2>/dev/null); do
      virsh -c "$uri" destroy "$d" >/dev/null 2>&1 || true
    done
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$H/pid"
}

case "$ACTION" in
stop)
  stop_host
  ;;
start)
  IP=${3:?listen address required}
  UUID=${4:?host uuid required}
  MIGMIN=${5:?migration port required}
  stop_host
  rm -rf "$H"/{run,lib,log,etc,daemon.out}
  mkdir -p "$H"/{run,lib/images,log/qemu,cache}
  cp -a /etc/libvirt "$H/etc"
  rm -f "$H"/etc/qemu/networks/autostart/*.xml   # no default NAT network / dnsmasq
  cat > "$H/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
listen_addr = "$IP"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
unix_sock_rw_perms = "0770"
host_uuid = "$UUID"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
  cat > "$H/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
migration_address = "$IP"
migration_host = "$IP"
migration_port_min = $MIGMIN
migration_port_max = $((MIGMIN + 15))
# Both daemons would name guest cgroups /machine/qemu-<id>-<name> with ids from 1, so a
# migrating guest could share a cgroup with its source: no cgroups on test hosts.
cgroup_controllers = [ ]
CONF
  mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt
  setsid unshare --mount --uts --propagation private -- /bin/sh -c "
    mount --bind '$H/etc' /etc/libvirt
    mount --bind '$H/run' /run/libvirt
    mount --bind '$H/lib' /var/lib/libvirt
    mount --bind '$H/log' /var/log/libvirt
    mount --bind '$H/cache' /var/cache/libvirt
    hostname '$NAME'
    exec /usr/sbin/libvirtd --listen --pid-file=/run/libvirt/libvirtd.pid \
      --config /etc/libvirt/libvirtd.conf
  " > "$H/daemon.out" 2>&1 < /dev/null &
  PID=$!
  echo "$PID" > "$H/pid"
  for _ in $(seq 1 600); do
    if virsh -c "qemu+tcp://$IP/system" capabilities >/dev/null 2>&1; then
      echo "$PID"
      exit 0
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
      echo "libvirtd $NAME exited:" >&2; tail -20 "$H/daemon.out" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "libvirtd $NAME did not answer on $IP within 60 s" >&2
  stop_host
  exit 1
  ;;
*)
  echo "usage: libvirt_hosts.sh start|stop NAME ..." >&2
  exit 2
  ;;
esac
