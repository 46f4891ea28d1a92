# What the platform may do in Vault: read the secrets under the platform's prefix of the KV v2 mount
# (DATAPLATFORM_VAULT_MOUNT=secret, DATAPLATFORM_VAULT_PREFIX=dataplatform), and nothing else.
path "secret/data/dataplatform/*" {
  capabilities = ["read"]
}
