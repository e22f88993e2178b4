# What the app needs around it, per environment. terraform_data stands in for
# the real resources so the template plans offline; swap each for its provider's
# resource (kubernetes_namespace, aws_db_instance, ...) keeping the addresses,
# which the policies in opsdeploy.hcl name.

variable "environment" {
  type = string
}

variable "database_engine_version" {
  type    = number
  default = 16
}

resource "terraform_data" "namespace" {
  input = {
    name   = "app-${var.environment}"
    labels = { "app.kubernetes.io/part-of" = "k8s-app" }
  }
}

resource "terraform_data" "database" {
  # An engine upgrade replaces the database; protected-deletes refuses that.
  triggers_replace = [var.database_engine_version]
  input = {
    name = "app-${var.environment}"
    # The password lives in the vault; the app reads it from the Kubernetes
    # Secret "app-db" (key "password"), never from terraform.
    secret_ref = "app-db/password"
  }
}

output "namespace" {
  value = terraform_data.namespace.output.name
}
