"""The DynamoDB table that holds connections, name claims and room membership."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "ttl"

# Exactly the item actions lambda_src/chat/store.py performs, and nothing else (no Scan,
# no BatchWriteItem, no streams, no DescribeTable). BatchGetItem reads the few sanction
# items a join or a setName checks (moderation) in one request. TransactWriteItems has no
# IAM action of its own: each item in a transaction needs the action it performs (Put →
# PutItem, Update → UpdateItem, Delete → DeleteItem, ConditionCheck → ConditionCheckItem).
# tests/infra/test_least_privilege.py derives the same set from store.py's source.
DATA_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchGetItem",
)


class ConnectionsTable(Construct):
    """On-demand TableV2 with string keys `pk`/`sk`, TTL on `ttl` and point-in-time recovery.

    The layout of the items is documented in lambda_src/chat/store.py and docs/architecture.md.
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy):
        super().__init__(scope, construct_id)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryptionV2.dynamo_owned_key(),
            removal_policy=removal_policy,
        )

    def grant_data_access(self, grantee: iam.IGrantable) -> iam.Grant:
        """DATA_ACTIONS on this table only (it has no indexes and no stream)."""
        return self.table.grant(grantee, *DATA_ACTIONS)
