# Appended to documentation's policy (policy.hcl.tmpl rendered for
# documentation) by deploy/openbao/setup.sh: what documentation may do beyond
# every other service.

# Each client's own key, to seal and open the client's notes and plans under
# it. Read only: the clients service creates and destroys client keys, so a
# purged client's notes can never be opened again, and documentation cannot
# make a new key for them.
path "fitflow-subject-keys/clients/*" {
  capabilities = ["read"]
}
