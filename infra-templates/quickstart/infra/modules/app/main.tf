# Offline infrastructure for the quickstart: terraform_data resources need no
# provider download and no cloud account, yet plan and apply like real ones.

variable "environment" {
  type = string
}

variable "engine_version" {
  type    = number
  default = 15
}

resource "terraform_data" "database" {
  # A new engine version cannot be applied in place: terraform replaces it,
  # which the protected-deletes policy refuses for databases.
  triggers_replace = [var.engine_version]
  input = {
    name     = "orders-${var.environment}"
    instance = "db.t3.micro"
  }
}

resource "terraform_data" "web" {
  input = {
    image    = "registry.example.com/shop/web:1.4.2"
    replicas = var.environment == "production" ? 3 : 1
  }
}
