"""Tests of the local sandbox: its pure parts, and conformance with API Gateway WebSocket."""
