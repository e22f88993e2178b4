# The staging environment: the shared app module with staging's settings.
module "app" {
  source         = "../modules/app"
  environment    = "staging"
  engine_version = 15
}
