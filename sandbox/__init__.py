"""A local emulator of the stack: API Gateway WebSocket API, Lambda and DynamoDB."""
