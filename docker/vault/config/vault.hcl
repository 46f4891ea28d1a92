# Vault in server mode: secrets on the `vault-data` volume (encrypted at rest by Vault), sealed at every
# start until unsealed (README: Run it on a home server). Plain HTTP: the listener is reached on the stack's
# network and on 127.0.0.1 only; put TLS in front of it (the reverse proxy) before exposing it further.
storage "file" {
  path = "/vault/file"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}

api_addr      = "http://vault:8200"
ui            = true
disable_mlock = true
