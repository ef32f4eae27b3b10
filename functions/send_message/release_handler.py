"""release: every 15 minutes, scheduled messages whose send time has come are queued again."""

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return {"released": bootstrap.release_service().release()}
