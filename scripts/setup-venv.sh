#!/usr/bin/env bash
# Create .venv (if absent) and install aaf-search with its dev tools into it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.aaf-installed-$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    echo "aaf-search: creating $venv" >&2
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    echo "aaf-search: installing dependencies into $venv (the first time takes a few minutes)" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
    rm -f "$venv"/.aaf-installed-*
    touch "$stamp"
fi
