# The production environment: the shared app module with production's settings.
module "app" {
  source                  = "../modules/app"
  environment             = "production"
  database_engine_version = 16
}
