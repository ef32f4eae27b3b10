"""dispatch: the table stream's one reader: jobs, timers and outcomes to where they are read."""

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    failed = bootstrap.dispatcher().handle(event["Records"])
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
