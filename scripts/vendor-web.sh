#!/usr/bin/env bash
# Fetches the pages' libraries from the npm registry at the pinned versions into
# web/assets/vendor/ (each with its licence) and checks them against SHA256SUMS.
# The pages have no build step: these files are what the binary embeds.
#   scripts/vendor-web.sh          fetch and verify
#   scripts/vendor-web.sh --check  verify what is there, fetch nothing
set -euo pipefail
cd "$(dirname "$0")/../web/assets/vendor"

if [ "${1:-}" != "--check" ]; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    fetch() { # package@version, then "from-path:to-path" pairs
        local pkg=$1; shift
        (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
        local tgz; tgz=$(ls "$tmp"/*.tgz); mkdir -p "$tmp/x"; tar xzf "$tgz" -C "$tmp/x"
        for pair in "$@"; do
            mkdir -p "$(dirname "${pair#*:}")"; cp "$tmp/x/package/${pair%%:*}" "${pair#*:}"
        done
        rm -rf "$tmp/x" "$tgz"
    }
    fetch lightweight-charts@5.2.1 \
        dist/lightweight-charts.standalone.production.mjs:lightweight-charts/lightweight-charts.standalone.production.mjs \
        LICENSE:lightweight-charts/LICENSE
    fetch graphiql@3.9.0 dist/index.umd.js:graphiql/graphiql.min.js dist/style.css:graphiql/graphiql.min.css LICENSE:graphiql/LICENSE
    fetch react@18.3.1 umd/react.production.min.js:react/react.production.min.js LICENSE:react/LICENSE
    fetch react-dom@18.3.1 umd/react-dom.production.min.js:react-dom/react-dom.production.min.js LICENSE:react-dom/LICENSE
    fetch graphql-ws@5.16.2 umd/graphql-ws.min.js:graphql-ws/graphql-ws.min.js LICENSE.md:graphql-ws/LICENSE.md
fi
sha256sum --quiet -c SHA256SUMS && echo "vendor-web: every vendored file matches SHA256SUMS"
