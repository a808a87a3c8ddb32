"""Inputs that become requests: batch rows (and images, decoded once)."""
