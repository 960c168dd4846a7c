"""The chat: pure rules (service), wire frames, and the DynamoDB and API Gateway adapters."""
