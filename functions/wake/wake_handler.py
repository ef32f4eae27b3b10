"""wake: called by the wake-up state machine for one shard of a bucket that has ended."""

from dialogue import bootstrap
from dialogue.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context) -> dict:  # noqa: ANN001 - the Lambda context
    result = bootstrap.wake_service().wake_shard(
        event["bucket"], int(event["shard"]), event.get("cursor"),
        lambda: context.get_remaining_time_in_millis() / 1000)
    return {"bucket": event["bucket"], "shard": event["shard"],
            "cursor": result.get("cursor"), "more": result["more"]}
