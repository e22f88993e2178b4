# The production environment: the shared app module with production's settings.
module "app" {
  source         = "../modules/app"
  environment    = "production"
  engine_version = 15
}
