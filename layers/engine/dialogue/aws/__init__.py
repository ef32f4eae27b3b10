"""Adapters: DynamoDB, S3, SQS. They turn ClientError codes into domain errors."""
