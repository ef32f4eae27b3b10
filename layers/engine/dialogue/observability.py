"""One Logger and one Metrics per process (powertools): JSON logs, EMF metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="dialogue")
metrics = Metrics(namespace="Dialogue", service="dialogue")


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
