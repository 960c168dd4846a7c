"""Benchmarks: fan-out, request cost and name races, measured on this machine."""
