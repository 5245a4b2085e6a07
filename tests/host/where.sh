#!/usr/bin/env bash
# Print where the demo host's blog and services answer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
name=${1:?usage: where.sh HOST}
ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
echo
echo "$name answers on http://$ip/ (nginx on port 80, by host name):"
for site in $(podman exec "$name" sh -c 'ls /etc/nginx/sites-enabled/'); do
  domain=$(podman exec "$name" sh -c "sed -n 's/^ *server_name \([^ ;]*\).*/\1/p' /etc/nginx/sites-enabled/$site" | head -n1)
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $domain" "http://$ip/" || true)
  printf '  %-28s curl -H "Host: %s" http://%s/   (HTTP %s)\n' "http://$domain/" "$domain" "$ip" "$code"
done
echo "Or add to /etc/hosts:  $ip $(podman exec "$name" sh -c "sed -n 's/^ *server_name \([^;]*\);/\1/p' /etc/nginx/sites-enabled/*" | tr '\n' ' ')"
