# Shared by the compose services: our global IPv6 address, and waiting for a peer's.
own_address() {
  ip -6 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1
}
wait_file() {  # wait_file PATH SECONDS: a peer writes PATH once it is ready
  local deadline=$((SECONDS + $2))
  until [ -s "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "$(hostname): no $1 after $2 s" >&2; exit 1; }
    sleep 0.1  # polling interval of a deadline-bound wait for another container
  done
}
