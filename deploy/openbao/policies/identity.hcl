# OpenBao policy for the FitFlow identity service (written by deploy/openbao/setup.sh
# as policy "fitflow-identity"). Least privilege: only its own transit key and its
# own PKI role.

# Envelope encryption with its own key: wrap/unwrap data keys, re-wrap after rotation.
path "transit/encrypt/fitflow-identity" {
  capabilities = ["update"]
}
path "transit/decrypt/fitflow-identity" {
  capabilities = ["update"]
}
path "transit/datakey/+/fitflow-identity" {
  capabilities = ["update"]
}
path "transit/rewrap/fitflow-identity" {
  capabilities = ["update"]
}

# Manage its own key: create it if missing, read its metadata, rotate it.
path "transit/keys/fitflow-identity" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/fitflow-identity/rotate" {
  capabilities = ["update"]
}

# identity signs access tokens (JWT, EdDSA) without ever holding the private key.
path "transit/sign/fitflow-identity-jwt" {
  capabilities = ["update"]
}
path "transit/sign/fitflow-identity-jwt/*" {
  capabilities = ["update"]
}

# Every service verifies access tokens: reading an ed25519 transit key returns
# only its public keys.
path "transit/keys/fitflow-identity-jwt" {
  capabilities = ["read"]
}

# Its own mTLS certificate (URI SAN spiffe://fitflow/identity).
path "pki/issue/identity" {
  capabilities = ["update"]
}
