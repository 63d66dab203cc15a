#!/usr/bin/env bash
# The include rules of docs/ARCHITECTURE.md, checked on the tree: prints every
# include that crosses a layer the wrong way and exits 1 if there is one.
#   common/            -> nothing of analysis/, coordinator/, worker/
#   common/core/       -> only common/core/ (and the C++ library)
#   coordinator/ (its library; tools/ is lpi-sweep's main) -> no worker/
#   analysis/          -> no worker/, no coordinator/
#   libtorch headers   -> only under worker/ (and tests/worker/)
set -uo pipefail
root=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
cd "$root" || exit 2
bad=0
report() {  # pattern, folder, exclude, rule
  local hits
  hits=$(grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' --include='*.inc' \
           --include='*.cu' "$1" "$2" 2>/dev/null | grep -vE "${3:-^$}")
  if [ -n "$hits" ]; then
    echo "$4:"
    echo "$hits" | sed 's/^/  /'
    bad=1
  fi
}
inc='^\s*#\s*include\s*'
report "$inc\"(analysis|coordinator|worker)/" common "" "common/ includes analysis/, coordinator/ or worker/"
report "$inc\"" common/core ":[0-9]+:\s*#\s*include\s*\"common/core/" "common/core/ includes something outside common/core/"
report "$inc\"worker/" coordinator "^coordinator/tools/" "the coordinator library includes worker/"
report "$inc\"(worker|coordinator)/" analysis "" "analysis/ includes worker/ or coordinator/"
for folder in common coordinator analysis; do
  report "$inc<(torch|ATen|c10)/" "$folder" "" "$folder/ includes libtorch headers"
done
if [ "$bad" -eq 0 ]; then
  echo "check-layers: every include follows the rules of docs/ARCHITECTURE.md"
fi
exit "$bad"
