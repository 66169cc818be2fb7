#!/usr/bin/env bash
# Installs Autobahn|Testsuite's `wstest` (Python 2.7 code) into a private
# prefix, without touching the system: Python 2.7 from Debian 11 (bullseye)
# .debs unpacked with dpkg-deb, pip 20.3.4 bootstrapped from its wheel, and a
# pinned set of packages known to work together on 2.7.
#
# Idempotent: a second run with the same pins does nothing. Downloads are
# cached under $AUTOBAHN_HOME.
#
# Environment:
#   AUTOBAHN_HOME  where everything goes (default: <repo>/target/autobahn)
#   AUTOBAHN_DEBS  a directory holding the six .debs (with an optional
#                  SHA256SUMS, checked when present); default: ../shared/autobahn-debs
#                  beside the repository when it exists, else apt downloads them
#                  from the bullseye suite of the machine's own Debian archive.
#
# Prints nothing on stdout but the path of the wstest wrapper when done.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home=${AUTOBAHN_HOME:-$repo/target/autobahn}
mkdir -p "$home"
home=$(cd "$home" && pwd)
prefix=$home/py27          # the unpacked debs: $prefix/usr/bin/python2.7
userbase=$home/py27-site   # pip installs here (--user with PYTHONUSERBASE)
wstest=$home/bin/wstest    # wrapper that sets the environment up

log() { echo "autobahn/install: $*" >&2; }

DEBS=(
  python2.7-minimal_2.7.18-8+deb11u1_amd64.deb
  libpython2.7-minimal_2.7.18-8+deb11u1_amd64.deb
  libpython2.7-stdlib_2.7.18-8+deb11u1_amd64.deb
  libpython2.7-dev_2.7.18-8+deb11u1_amd64.deb
  libssl1.1_1.1.1w-0+deb11u1_amd64.deb
  libffi7_3.3-6_amd64.deb
)

# The same six as Debian published them; checked whatever their source.
DEB_SHA256SUMS="\
30ca89bfddae5fa6e0a2a044f22b6e50cd17c4bc6bc850c579819aeab7101f0f  libffi7_3.3-6_amd64.deb
887034beb360069df8b519ad93893454ef3402415775a0466940fb73d6a8b8ca  libpython2.7-dev_2.7.18-8+deb11u1_amd64.deb
85833c92314011b89bbead6f9a5a7a360b5ee4f9b95e001225afead4ebf9f7d3  libpython2.7-minimal_2.7.18-8+deb11u1_amd64.deb
3e627d6d8992b853e000b8a4c09dda613fb767cdb711a2eac20ebc9f867b593c  libpython2.7-stdlib_2.7.18-8+deb11u1_amd64.deb
aadf8b4b197335645b230c2839b4517aa444fd2e8f434e5438c48a18857988f7  libssl1.1_1.1.1w-0+deb11u1_amd64.deb
44f0cdc1a343303d31c55fcb3a6402cfe326adf749ec30e375e6e0c0c5f7c1f7  python2.7-minimal_2.7.18-8+deb11u1_amd64.deb
"

# Installed in this order; wsaccel builds from source (needs Python.h and gcc).
PIP_VERSION=20.3.4
# The last releases for Python 2.7; needed to build the sdists below.
BUILD_TOOLS=(setuptools==44.1.1 wheel==0.37.1)
PACKAGES=(
  six==1.16.0 enum34==1.1.10 ipaddress==1.0.23 pycparser==2.21 cffi==1.15.1
  cryptography==3.3.2 pyOpenSSL==19.1.0 pyasn1==0.4.8 pyasn1-modules==0.2.8
  attrs==21.4.0 service-identity==18.1.0 idna==2.10 typing==3.10.0.0
  zope.interface==4.6.0 incremental==16.10.1 constantly==15.1.0 Automat==20.2.0
  hyperlink==21.0.0 PyHamcrest==1.10.1 Twisted==19.10.0 txaio==2.1.0
  autobahn==0.10.9 MarkupSafe==1.1.1 Jinja2==2.11.3 Werkzeug==1.0.1 klein==17.10.0
  argparse==1.4.0 linecache2==1.0.0 traceback2==1.4.0 unittest2==1.1.0
  ujson==2.0.3 wsaccel==0.6.6 autobahntestsuite==0.8.2
)

stamp=$home/.installed
# Any change to this script (pins, launcher) makes the next run reinstall.
want="$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [[ -x $wstest && -f $stamp && $(cat "$stamp") == "$want" ]] && "$wstest" --help >/dev/null 2>&1; then
  echo "$wstest"
  exit 0
fi

arch=$(dpkg --print-architecture)
[[ $arch == amd64 ]] || { log "only amd64 is supported (got $arch)"; exit 1; }

# --- 1. the six .debs -------------------------------------------------------
debdir=${AUTOBAHN_DEBS:-}
if [[ -z $debdir && -d $repo/../shared/autobahn-debs ]]; then
  debdir=$(cd "$repo/../shared/autobahn-debs" && pwd)
fi
if [[ -n $debdir ]]; then
  log "using .debs from $debdir"
  for deb in "${DEBS[@]}"; do
    [[ -f $debdir/$deb ]] || { log "missing $debdir/$deb"; exit 1; }
  done
  if [[ -f $debdir/SHA256SUMS ]]; then
    (cd "$debdir" && sha256sum --check --quiet --strict SHA256SUMS) || { log "checksum mismatch in $debdir"; exit 1; }
  else
    log "warning: no SHA256SUMS in $debdir, not verified"
  fi
else
  debdir=$home/debs
  mkdir -p "$debdir"
  missing=()
  for deb in "${DEBS[@]}"; do [[ -f $debdir/$deb ]] || missing+=("$deb"); done
  if ((${#missing[@]})); then
    # The archive URI the machine's own apt sources use, at the bullseye suite.
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
      grep -Eo 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
    uri=${uri:-http://deb.debian.org/debian}
    log "downloading .debs from $uri bullseye"
    aptdir=$home/apt
    mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${uri%/} bullseye main" >"$aptdir/sources.list"
    apt_opts=(
      -o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
      -o "Dir::State::status=/dev/null" -o APT::Architecture=amd64 -o Debug::NoLocking=1
    )
    apt-get "${apt_opts[@]}" -qq update
    for deb in "${missing[@]}"; do
      IFS=_ read -r name version _ <<<"$deb"
      version=${version//%3a/:}
      (cd "$debdir" && apt-get "${apt_opts[@]}" -qq download "$name=$version")
    done
    for deb in "${DEBS[@]}"; do [[ -f $debdir/$deb ]] || { log "apt did not fetch $deb"; exit 1; }; done
  fi
fi

(cd "$debdir" && sha256sum --check --quiet --strict <<<"$DEB_SHA256SUMS") || {
  log "the .debs in $debdir are not the expected ones"
  exit 1
}

rm -rf "$prefix" "$userbase" "$home/bin" "$stamp"
mkdir -p "$prefix"
for deb in "${DEBS[@]}"; do dpkg-deb -x "$debdir/$deb" "$prefix"; done
python=$prefix/usr/bin/python2.7
unset PYTHONNOUSERSITE PYTHONPATH PYTHONHOME
export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
"$python" -c 'import ssl, ctypes, hashlib' || { log "the unpacked Python 2.7 does not work"; exit 1; }

# --- 2. pip, then the pinned packages ---------------------------------------
# None of the machine's pip settings (meant for python3) apply to this pip
# (PIP_CERT, a CA bundle path, is kept: it is what reaching the index may need).
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_NO_INDEX PIP_REQUIRE_VIRTUALENV PIP_USER PIP_TARGET PIP_PREFIX
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
pip_opts=(--quiet --user --no-warn-script-location --no-python-version-warning)
export PYTHONUSERBASE=$userbase
wheels=$home/wheels
mkdir -p "$wheels"
pipwheel=$wheels/pip-$PIP_VERSION-py2.py3-none-any.whl
if [[ ! -f $pipwheel ]]; then
  log "downloading pip $PIP_VERSION"
  python3 -m pip download --quiet --no-deps --python-version 2.7 --only-binary=:all: \
    --dest "$wheels" "pip==$PIP_VERSION"
fi
log "installing pip $PIP_VERSION"
"$python" "$pipwheel/pip" install "${pip_opts[@]}" --no-index "$pipwheel"

# Built wheels (wsaccel, ujson, ...) are cached here, so a reinstall is offline-fast.
export PIP_CACHE_DIR=$home/pip-cache
# Python.h: distutils names /usr/include/python2.7 (the prefix Debian built
# for), and Debian's pyconfig.h includes <x86_64-linux-gnu/python2.7/pyconfig.h>.
export CFLAGS="-I$prefix/usr/include/python2.7 -I$prefix/usr/include ${CFLAGS:-}"
log "installing wstest and its pinned dependencies"
"$python" -m pip install "${pip_opts[@]}" "${BUILD_TOOLS[@]}"
"$python" -m pip install "${pip_opts[@]}" --no-build-isolation "${PACKAGES[@]}"

# --- 3. the wrapper ---------------------------------------------------------
# wstest's fuzzingserver binds every interface (autobahn's listenWS defaults to
# interface ''): the launcher binds the host of the spec's "url" instead, so
# "ws://127.0.0.1:9001" listens on loopback only. (`--webport 0` turns off the
# web UI, which would otherwise listen on 0.0.0.0:8080.)
mkdir -p "$home/bin"
cat >"$home/bin/wstest_main.py" <<'LAUNCHER'
# Generated by autobahn/install.sh: wstest, listening only where asked.
import sys
import warnings
warnings.filterwarnings("ignore", message=".*Python 2 is no longer supported.*")
import autobahn.twisted.websocket as websocket
import autobahntestsuite.fuzzing as fuzzing
from autobahntestsuite.wstest import run

_listen_ws = websocket.listenWS


def listen_ws(factory, contextFactory=None, backlog=50, interface=''):
    return _listen_ws(factory, contextFactory, backlog, interface or factory.host)


websocket.listenWS = fuzzing.listenWS = listen_ws
sys.argv[0] = "wstest"
sys.exit(run())
LAUNCHER
cat >"$wstest" <<WRAPPER
#!/bin/sh
# Generated by autobahn/install.sh: runs wstest on the private Python 2.7.
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PYTHONUSERBASE="$userbase"
unset PYTHONNOUSERSITE PYTHONPATH PYTHONHOME
exec "$python" "$home/bin/wstest_main.py" "\$@"
WRAPPER
chmod +x "$wstest"
"$wstest" --help >/dev/null
echo "$want" >"$stamp"
log "installed: $wstest"
echo "$wstest"
