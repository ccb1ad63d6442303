# OpenBao policy for the FitFlow clients service (written by deploy/openbao/setup.sh
# as policy "fitflow-clients"). Least privilege: only its own transit key and its
# own PKI role.

# Envelope encryption with its own key: wrap/unwrap data keys, re-wrap after rotation.
path "transit/encrypt/fitflow-clients" {
  capabilities = ["update"]
}
path "transit/decrypt/fitflow-clients" {
  capabilities = ["update"]
}
path "transit/datakey/+/fitflow-clients" {
  capabilities = ["update"]
}
path "transit/rewrap/fitflow-clients" {
  capabilities = ["update"]
}

# Manage its own key: create it if missing, read its metadata, rotate it.
path "transit/keys/fitflow-clients" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/fitflow-clients/rotate" {
  capabilities = ["update"]
}

# Every service verifies access tokens: reading an ed25519 transit key returns
# only its public keys.
path "transit/keys/fitflow-identity-jwt" {
  capabilities = ["read"]
}

# Its own mTLS certificate (URI SAN spiffe://fitflow/clients).
path "pki/issue/clients" {
  capabilities = ["update"]
}
