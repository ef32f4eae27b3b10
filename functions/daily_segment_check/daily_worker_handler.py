"""daily worker: one scan segment of the customers table through the daily check."""

import json

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context) -> dict:  # noqa: ANN001 - the Lambda context
    worker = bootstrap.daily_worker()
    results = [worker.handle(json.loads(r["body"]),
                             lambda: context.get_remaining_time_in_millis() / 1000)
               for r in event["Records"]]
    return {"checked": sum(r["checked"] for r in results)}
