"""breachflow's outer layer: the command line (and, later, the HTTP API and pages)."""
