#!/bin/sh
# Entry point of a test-network node (docker-compose.yml). ROLE=pki: bootstrap (first start) and run
# the PKI node, publishing its peergos identity hash, peer id and swarm address in $SHARED for the
# others. ROLE=home: wait for $SHARED/pki.env, then run a home server mirroring that PKI.
# Every location and address is an environment variable so the same script runs outside containers
# (tests/integration/test_network_script.py runs it on loopback).
set -eu
DATA=${DATA:-/data}
SHARED=${SHARED:-/shared}
LISTEN_HOST=${LISTEN_HOST:-0.0.0.0}
API_PORT=${API_PORT:-8000}
P2P_API_PORT=${P2P_API_PORT:-8003}
SWARM_PORT=${SWARM_PORT:-4001}
SWARM_IP=${SWARM_IP:-$(hostname -i | awk '{print $1}')}
PEERGOS=${PEERGOS:-peergos}
mkdir -p "$DATA" "$SHARED"
COMMON="-PEERGOS_PATH $DATA -listen-host $LISTEN_HOST -port $API_PORT -proxy-target /ip4/127.0.0.1/tcp/$P2P_API_PORT -ipfs-swarm-addrs /ip4/$LISTEN_HOST/tcp/$SWARM_PORT -pki.keyfile.password ${PKI_PASSWORD:-network-test} ${EXTRA_ARGS:-}"
case "${ROLE:-home}" in
  pki)
    if [ ! -f "$DATA/pki-keys.json" ]; then
      $PEERGOS pki-init $COMMON > "$SHARED/pki-init.txt"
    fi
    HASH=$(awk '/^peergos.identity.hash/ {print $2}' "$SHARED/pki-init.txt")
    ID=$(awk '/^pki-node-id/ {print $2}' "$SHARED/pki-init.txt")
    printf 'PKI_HASH=%s\nPKI_ID=%s\nPKI_ADDR=/ip4/%s/tcp/%s/p2p/%s\n' "$HASH" "$ID" "$SWARM_IP" "$SWARM_PORT" "$ID" \
      > "$SHARED/pki.env.tmp"
    mv "$SHARED/pki.env.tmp" "$SHARED/pki.env"
    exec $PEERGOS pki $COMMON -generate-token true
    ;;
  home)
    while [ ! -f "$SHARED/pki.env" ]; do sleep 1; done
    . "$SHARED/pki.env"
    exec $PEERGOS daemon $COMMON -pki-node-id "$PKI_ID" -peergos.identity.hash "$PKI_HASH" \
      -pki.node.swarm.address "$PKI_ADDR" -generate-token true
    ;;
  *)
    echo "unknown ROLE ${ROLE}" >&2
    exit 2
    ;;
esac
