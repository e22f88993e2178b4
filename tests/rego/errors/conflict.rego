package main

import rego.v1

mode := "strict" if input.environment.name == "p"

mode := "lenient" if input.environment.project == "x"

deny contains "unreachable" if mode == "neither"
