# Appended to clients' policy (policy.hcl.tmpl rendered for clients) by
# deploy/openbao/setup.sh: what clients may do beyond every other service.

# Each client's own key: created with the client, read to seal and open its
# fields, deleted by PurgeClient (crypto-shredding). No list: a service never
# needs to enumerate clients through OpenBao.
path "fitflow-subject-keys/clients/*" {
  capabilities = ["create", "read", "update", "delete"]
}
