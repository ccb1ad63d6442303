# OpenBao policy for the FitFlow documentation service (written by deploy/openbao/setup.sh
# as policy "fitflow-documentation"). Least privilege: only its own transit key and its
# own PKI role.

# Envelope encryption with its own key: wrap/unwrap data keys, re-wrap after rotation.
path "transit/encrypt/fitflow-documentation" {
  capabilities = ["update"]
}
path "transit/decrypt/fitflow-documentation" {
  capabilities = ["update"]
}
path "transit/datakey/+/fitflow-documentation" {
  capabilities = ["update"]
}
path "transit/rewrap/fitflow-documentation" {
  capabilities = ["update"]
}

# Manage its own key: create it if missing, read its metadata, rotate it.
path "transit/keys/fitflow-documentation" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/fitflow-documentation/rotate" {
  capabilities = ["update"]
}

# Every service verifies access tokens: reading an ed25519 transit key returns
# only its public keys.
path "transit/keys/fitflow-identity-jwt" {
  capabilities = ["read"]
}

# Its own mTLS certificate (URI SAN spiffe://fitflow/documentation).
path "pki/issue/documentation" {
  capabilities = ["update"]
}
