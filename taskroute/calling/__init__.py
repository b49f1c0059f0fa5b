"""Turning decisions into answers: escalate along the chain → retry one model → call once."""
