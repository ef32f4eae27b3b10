"""refresh: rule-based segments refreshed now over every customer, through the daily workers.

Invoked with {"segments": ["id", ...]} (`dialogue segments refresh`), or from the refresh queue
with the S3 "Object Created" event of a segment file (a new or changed segment is filled at once).
"""

import json

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    service = bootstrap.segment_refresh()
    if "Records" not in event:
        return service.start(list(event["segments"]))
    keys = [json.loads(r["body"])["detail"]["object"]["key"] for r in event["Records"]]
    return service.start_for_files(keys)
