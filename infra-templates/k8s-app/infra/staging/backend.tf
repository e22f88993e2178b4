# Terraform state lives in PostgreSQL too (the "pg" backend), so every CI
# runner plans against the same state; the connection string comes from the
# environment variable PG_CONN_STR (a CI secret, see
# .github/workflows/deploy.yml). Keeping state elsewhere (s3, gcs, azurerm)?
# Replace this block with that backend; nothing else here depends on it.
terraform {
  backend "pg" {
    schema_name = "k8s_app_staging"
  }
}
