#!/usr/bin/env bash
# Install what audiocraft-webui needs into ./venv, doing only what is missing.
#
#   ./install.sh          the app's packages (run.sh calls this)
#   ./install.sh --dev    also the test tools and Debian's chromium (run-tests.sh calls this)
#
# Environment:
#   PYTHON           interpreter for a new venv (default: python3.11, python3.12, python3.10, python3)
#   TORCH_VERSION    torch for a venv that has none yet (default: 2.13.0)
#   TORCH_INDEX_URL  extra pip index for that torch, e.g. https://download.pytorch.org/whl/cpu
#                    for the CPU-only build (default: none)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Bump when the install steps change, so that existing venvs run them again.
SCRIPT_VERSION=1
VENV_PY=venv/bin/python
STAMP=venv/.install-stamp
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { echo "install.sh: $*"; }
warn() { echo "install.sh: warning: $*" >&2; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) die "unknown argument '$arg' (usage: ./install.sh [--dev])" ;;
  esac
done

# Print the interpreter's version; succeed only for 3.10-3.12, the versions the requirements resolve on.
python_version_ok() {
  "$1" -c 'import sys; v = sys.version_info[:2]; print("%d.%d" % v); sys.exit(not (3, 10) <= v <= (3, 12))' \
    2>/dev/null
}

# Print the first supported interpreter: $PYTHON if set, else the first candidate that is 3.10-3.12.
find_python() {
  local candidates=(python3.11 python3.12 python3.10 python3) candidate version rejected=""
  if [[ -n "${PYTHON:-}" ]]; then
    command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON was not found"
    version=$(python_version_ok "$PYTHON") ||
      die "PYTHON=$PYTHON is Python ${version:-of unknown version}; audiocraft-webui needs 3.10, 3.11 or 3.12"
    echo "$PYTHON"
    return
  fi
  for candidate in "${candidates[@]}"; do
    command -v "$candidate" >/dev/null || continue
    if version=$(python_version_ok "$candidate"); then
      echo "$candidate"
      return
    fi
    rejected+=" $candidate (${version:-broken})"
  done
  die "no Python 3.10, 3.11 or 3.12 found${rejected:+ (rejected:$rejected)};" \
    "install python3.11 or set PYTHON"
}

# Print a SHA-256 over this script's version and the given files: what the stamp records.
stamp_hash() {
  "$VENV_PY" -c 'import hashlib, sys
h = hashlib.sha256(sys.argv[1].encode())
for name in sys.argv[2:]:
    with open(name, "rb") as f:
        h.update(f.read())
print(h.hexdigest())' "$SCRIPT_VERSION" "$@"
}

if [[ ! -x $VENV_PY ]]; then
  [[ -e venv ]] && die "venv/ exists but has no bin/python; delete venv/ and run again"
  python=$(find_python)
  say "creating venv/ with $python (Python $(python_version_ok "$python"))"
  "$python" -m venv venv || {
    rm -rf venv
    die "could not create venv/ (on Debian/Ubuntu: apt-get install python3-venv, or python3.11-venv)"
  }
elif ! version=$(python_version_ok "$VENV_PY"); then
  die "venv/ uses Python ${version:-of unknown version}, not 3.10-3.12; delete venv/ and run again"
fi

requirements=(requirements.txt)
((dev)) && requirements+=(requirements-dev.txt)
wanted=$(stamp_hash "${requirements[@]}")

if grep -qxF "$wanted" "$STAMP" 2>/dev/null; then
  say "Python packages are up to date"
else
  # torch goes on the same pip command line as the requirements, so pip resolves against it and never
  # swaps the build: keep an installed torch exactly (CPU or CUDA), else install the wanted version.
  index_args=()
  if installed_torch=$("$VENV_PY" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
    torch_req="torch==$installed_torch"
    say "keeping the installed torch $installed_torch"
  else
    torch_req="torch==${TORCH_VERSION:-2.13.0}"
    [[ -n "${TORCH_INDEX_URL:-}" ]] && index_args=(--extra-index-url "$TORCH_INDEX_URL")
    say "installing $torch_req (large download on first install)"
  fi
  req_args=()
  for file in "${requirements[@]}"; do req_args+=(-r "$file"); done

  say "installing Python packages from ${requirements[*]}"
  "$VENV_PY" -m pip install "${index_args[@]}" "$torch_req" "${req_args[@]}"

  # audiocraft 1.3.0 pins torch 2.1 and other old versions that cannot coexist with current torch;
  # requirements.txt lists what it really needs. torchaudio is only imported by audiocraft and
  # transformers; its compiled part is stubbed out (audiocraft_webui/compat.py). These unmet pins are
  # why `pip check` reports conflicts.
  say "installing audiocraft 1.3.0 and torchaudio 2.11.0 without their dependency pins"
  "$VENV_PY" -m pip install --no-deps audiocraft==1.3.0 torchaudio==2.11.0

  # Shows which torch build is in place (say, whether a CUDA build came from TORCH_INDEX_URL) and,
  # coming before the stamp, makes a torch that cannot be imported fail this run and the next ones.
  "$VENV_PY" -c 'import torch
print("install.sh: torch", torch.__version__, "- CUDA available:", torch.cuda.is_available())'

  # A --dev install also satisfies a plain one, so it records both hashes.
  stamp_hash requirements.txt >"$STAMP"
  if ((dev)); then echo "$wanted" >>"$STAMP"; fi
  say "Python packages installed"
fi

# The browser tests drive Debian's chromium through Playwright; Playwright's own browser download is
# never used. Without chromium only the browser tests fail, so a failure here is just a warning.
if ((dev)) && [[ ! -x /usr/bin/chromium ]]; then
  sudo=()
  if ((EUID != 0)) && command -v sudo >/dev/null; then sudo=(sudo); fi
  if ! command -v apt-get >/dev/null || ((EUID != 0 && ${#sudo[@]} == 0)); then
    warn "browser tests need /usr/bin/chromium; install Chromium there or skip them with -m 'not browser'"
  else
    say "installing Debian's chromium for the browser tests"
    if ! { "${sudo[@]}" apt-get update -qq &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; then
      warn "apt-get could not install chromium; browser tests will fail (skip them with -m 'not browser')"
    fi
  fi
fi
