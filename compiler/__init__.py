"""CAVE GitOps: compile environment specs into Kustomize overlays, render, validate and diff them."""
