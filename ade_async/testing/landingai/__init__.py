"""The LandingAI ADE Extract Jobs v1 simulator: its routes, state and wire models."""
