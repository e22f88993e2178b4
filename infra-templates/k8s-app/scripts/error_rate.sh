#!/bin/sh
# Prints the app's current error rate (0.0-1.0) for opsdeploy's monitor window.
# Replace with a query to your metrics system; the app here exposes its own.
set -eu
curl -fsS --max-time 10 "$1/metrics/error-rate"
