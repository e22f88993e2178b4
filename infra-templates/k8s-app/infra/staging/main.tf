# The staging environment: the shared app module with staging's settings.
module "app" {
  source                  = "../modules/app"
  environment             = "staging"
  database_engine_version = 16
}
