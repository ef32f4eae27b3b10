"""arm: new timer rows (relayed from the table's stream) start their bucket's wake-up, once."""

from dialogue import bootstrap
from dialogue.aws.timers import bucket_of_stream_record
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    buckets = [bucket_of_stream_record(r["body"]) for r in event["Records"]]
    return bootstrap.arm_service().handle(buckets)
