"""The vendor-neutral simulator engine (being split out of the LandingAI simulator)."""
