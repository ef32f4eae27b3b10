"""reconcile: every 15 minutes, message jobs stuck between two states are ended with a reason:
a claim whose lease ran out is dead-lettered as "outcome unknown", a failure whose function died
before dead-lettering it is dead-lettered."""

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return dict(bootstrap.reconcile_service().run())
