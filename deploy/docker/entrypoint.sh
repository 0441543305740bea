#!/bin/sh
# Container entrypoint: the container's arguments are a `sanji` subcommand.
#
#   serve <service> [args…]  wait for the broker and the database, run that service's migrations, then
#                            replace this shell with the service (so it gets the stop signal directly).
#                            Migrating on every start is safe with replicas: `sanji migrate` holds a
#                            PostgreSQL advisory lock, so concurrent starts migrate one at a time.
#   anything else            exec'd as `sanji "$@"` (e.g. `declare-topology`, `migrate intake`).
#
# For a shell in the image, override the entrypoint: docker compose run --entrypoint sh intake
set -eu

if [ "${1:-}" = "serve" ] && [ "$#" -ge 2 ]; then
    service=$2
    # Naming the service makes it check that service's own database (SANJI_<SERVICE>_DATABASE_URL).
    sanji wait-for-deps "$service" --timeout "${SANJI_WAIT_TIMEOUT:-60}"
    sanji migrate "$service"
    exec sanji "$@"
fi

exec sanji "$@"
