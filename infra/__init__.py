"""The chat's infrastructure: one stack composed of cohesive constructs."""
