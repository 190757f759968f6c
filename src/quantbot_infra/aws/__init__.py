"""The AWS provider: an environment's VPCs, subnets, gateways, security groups and instances.

``spec`` derives the resources a topology asks for (pure), ``observe`` reads what the account
holds (boto3, read-only), ``plan`` compares the two (pure), ``apply`` carries a plan out and
``provisioned`` records the instances' addresses for the inventory. ``session`` makes the
clients and turns the SDK's errors into one-line :class:`~quantbot_infra.aws.session.AwsError`.
"""
