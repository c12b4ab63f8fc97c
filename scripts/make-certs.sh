#!/usr/bin/env bash
# Make a private CA and certificates for ipcbor over TLS, with the openssl
# command line. Keys are EC P-256, written with mode 0600.
#
#   scripts/make-certs.sh DIR
#       all of the below for a server on this machine: DIR/ca.pem + ca.key,
#       DIR/server.pem + server.key (localhost, 127.0.0.1, ::1), and
#       DIR/client.pem + client.key (CN=client) for mutual TLS
#   scripts/make-certs.sh ca DIR [COMMON_NAME]
#       a new CA: DIR/ca.pem, DIR/ca.key
#   scripts/make-certs.sh server DIR NAME SAN...
#       DIR/NAME.pem + NAME.key, a server certificate signed by DIR's CA,
#       valid for each SAN: DNS:host.example or IP:192.0.2.7
#   scripts/make-certs.sh client DIR NAME
#       DIR/NAME.pem + NAME.key, a client certificate (CN=NAME) signed by DIR's CA
#
# An existing CA (DIR/ca.pem or DIR/ca.key) is never replaced unless asked:
# add --force (anywhere), or set FORCE=1. Replacing it makes every
# certificate it signed untrusted by peers that get the new ca.pem.
#
# DAYS=N sets the validity (default 365). Give the server ca.pem (as
# clientCa, for mutual TLS) and its own pair; give clients ca.pem (as ca)
# and, for mutual TLS, their own pair. Keep ca.key somewhere safe, or
# delete it once the certificates you need are made.
set -euo pipefail
umask 077

days=${DAYS:-365}
force=${FORCE:-0}
args=()
for a in "$@"; do
  if [ "$a" = --force ]; then force=1; else args+=("$a"); fi
done
set -- ${args[@]+"${args[@]}"}
die() { echo "make-certs: $*" >&2; exit 2; }
command -v openssl >/dev/null || die "openssl is not installed"

new_ca() { # DIR CN
  if [ "$force" != 1 ] && { [ -e "$1/ca.pem" ] || [ -e "$1/ca.key" ]; }; then
    die "$1 already has a CA (ca.pem or ca.key); it is kept. Replacing it untrusts every certificate it signed: add --force (or set FORCE=1) to replace it"
  fi
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$1/ca.key" -out "$1/ca.pem" -days "$days" -subj "/CN=$2" \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
}

signed() { # DIR NAME SUBJECT EXTENSIONS
  [ -f "$1/ca.pem" ] && [ -f "$1/ca.key" ] || die "no CA in $1: run 'make-certs.sh ca $1' first"
  local tmp status=0
  tmp=$(mktemp -d)
  printf '%s\n' "$4" >"$tmp/ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$1/$2.key" -out "$tmp/csr" -subj "$3" 2>/dev/null &&
    openssl x509 -req -in "$tmp/csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -CAserial "$1/ca.srl" \
      -sha256 -days "$days" -out "$1/$2.pem" -extfile "$tmp/ext" 2>/dev/null || status=$?
  rm -rf "$tmp"
  [ "$status" -eq 0 ] || die "openssl failed making $1/$2.pem"
}

server_cert() { # DIR NAME SAN...
  local dir=$1 name=$2 sans=''
  shift 2
  [ $# -gt 0 ] || die "server: give at least one SAN (DNS:name or IP:address)"
  for san in "$@"; do
    case $san in
      DNS:* | IP:*) sans="${sans:+$sans,}$san" ;;
      *) die "server: a SAN is DNS:name or IP:address, not '$san'" ;;
    esac
  done
  signed "$dir" "$name" "/CN=${1#*:}" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans"
}

client_cert() { # DIR NAME
  signed "$1" "$2" "/CN=$2" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}

case ${1:-} in
  ca) [ $# -ge 2 ] || die "usage: make-certs.sh ca DIR [COMMON_NAME]"; new_ca "$2" "${3:-ipcbor private CA}" ;;
  server) [ $# -ge 4 ] || die "usage: make-certs.sh server DIR NAME SAN..."; server_cert "${@:2}" ;;
  client) [ $# -eq 3 ] || die "usage: make-certs.sh client DIR NAME"; client_cert "$2" "$3" ;;
  '' | -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; [ $# -gt 0 ] ;;
  *)
    [ $# -eq 1 ] || die "usage: make-certs.sh DIR (or ca|server|client, see --help)"
    new_ca "$1" 'ipcbor private CA'
    server_cert "$1" server DNS:localhost IP:127.0.0.1 IP:::1
    client_cert "$1" client
    echo "made $1/ca.pem, $1/server.pem + server.key, $1/client.pem + client.key"
    ;;
esac
