#!/usr/bin/env bash
# Print the path of a Python X.Y interpreter that runs, for `make test-pythons`:
#
#   tools/find_python.sh 3.10              # look for one
#   tools/find_python.sh 3.10 /opt/py/bin/python3.10   # check the one named (PYTHON310=...)
#
# Without a name it tries pythonX.Y on PATH, then pyenv's installs. A pyenv shim is on PATH for
# every installed version but refuses to run one that `pyenv global` does not list, hence the
# run check rather than `command -v` alone. Exits 1 with a note on stderr when none is found:
# a missing interpreter fails the check, it is never skipped.
set -uo pipefail

want=${1:?usage: tools/find_python.sh X.Y [INTERPRETER]}
named=${2:-}
var="PYTHON${want//./}"

runs_as_wanted() {
    "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" >/dev/null 2>&1
}

if [ -n "$named" ]; then
    if runs_as_wanted "$named"; then
        command -v "$named"
        exit 0
    fi
    echo "$var=$named does not run as Python $want" >&2
    exit 1
fi

candidates=("python$want")
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
# newest patch release first (3.10.13 before 3.10.9)
while IFS= read -r found; do candidates+=("$found"); done < <(
    ls -d "$pyenv_root"/versions/"$want".*/bin/python"$want" 2>/dev/null | sort -rV)
candidates+=("/usr/local/bin/python$want" "/usr/bin/python$want")

for candidate in "${candidates[@]}"; do
    if runs_as_wanted "$candidate"; then
        command -v "$candidate"
        exit 0
    fi
done
echo "No Python $want found (tried python$want on PATH, $pyenv_root/versions/$want.*, /usr/bin)." >&2
echo "Install it (e.g. pyenv install $want) or name it: make test-pythons $var=/path/to/python$want" >&2
exit 1
