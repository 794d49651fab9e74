"""Alarm topic policies as sns:GetTopicAttributes returns them, for the smoke tests.

`tls_deny` is CDK's enforce_ssl statement (aws-sns Topic.createSSLPolicyDocument), today's
only statement; `cloudwatch_allow` is the Allow stacks/monitoring.py adds (cloudwatch.amazonaws.com,
sns:Publish, scoped by aws:SourceAccount and aws:SourceArn of the stack's alarms).
"""

from __future__ import annotations

import json
from typing import Any


def tls_deny(topic: str) -> dict[str, Any]:
    """Deny publishing without TLS, to everyone."""
    return {
        "Sid": "AllowPublishThroughSSLOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": topic,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def cloudwatch_allow(topic: str, alarm_arns: str | list[str]) -> dict[str, Any]:
    """Allow CloudWatch to publish for the alarms `alarm_arns` (ARNs or an ArnLike pattern)."""
    account = topic.split(":")[4]
    return {
        "Sid": "AllowCloudWatchAlarmsToPublish",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": topic,
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": alarm_arns},
        },
    }


def policy(*statements: dict[str, Any]) -> str:
    """The policy document (JSON text) holding `statements`."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
