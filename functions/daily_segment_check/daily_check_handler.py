"""daily_segment_check: at the shop's daily check time, one work item per scan segment."""

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return bootstrap.daily_check().start()
