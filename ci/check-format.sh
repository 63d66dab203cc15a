#!/usr/bin/env bash
# Every C++ file tracked by git is as clang-format (.clang-format at the root)
# writes it; lists the ones that are not and exits 1. Exits 77 (skipped) when
# clang-format is missing, unless CI=true, where that is a failure.
set -uo pipefail
root=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
cd "$root" || exit 2
tool=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$tool" ]; then
  echo "check-format: clang-format not found (deploy/install-deps.sh installs clang-format-14)"
  [ "${CI:-}" = "true" ] && exit 1
  exit 77
fi
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cu' '*.cuh' 2>/dev/null ||
                     find . -name '*.cpp' -o -name '*.hpp')
bad=()
for f in "${files[@]}"; do
  "$tool" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from clang-format (run: $tool -i FILE):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "check-format: ${#files[@]} files as clang-format writes them"
