"""send_message: message jobs from the messages queue (outbox rows relayed by OutboxPipe, or
released at the daily send time).

Each job is sent, suppressed, held back or scheduled exactly once; a provider that is throttled
or down fails only its record, which comes back after an exponential back-off.
"""

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from dialogue import bootstrap
from dialogue.delivery.service import job_json_from_message
from dialogue.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel)


def record_handler(record: SqsRecordModel) -> str:
    retry = bootstrap.retry_later(record.receiptHandle,
                                  int(record.attributes.ApproximateReceiveCount))
    return bootstrap.delivery_service().handle(job_json_from_message(record.body), retry)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
