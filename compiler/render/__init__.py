"""Render overlays with kustomize: content hashes of their inputs, an on-disk cache, parallel builds.

An overlay's content hash covers every file of the overlay directory and of every directory or file
its kustomization references, recursively, plus the kustomize version: equal hashes mean equal
renders, so `diff` and `validate` skip or reuse them.
"""
