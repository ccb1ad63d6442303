# Appended to identity's policy (policy.hcl.tmpl rendered for identity) by
# deploy/openbao/setup.sh: what identity may do beyond every other service.

# identity signs access tokens (JWT, EdDSA) without ever holding the private key.
path "transit/sign/fitflow-identity-jwt" {
  capabilities = ["update"]
}
path "transit/sign/fitflow-identity-jwt/*" {
  capabilities = ["update"]
}
