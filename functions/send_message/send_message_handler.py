"""send_message: message jobs from the messages queue (outbox rows relayed by DispatchFunction, or
released at the daily send time).

Each job is sent once, suppressed, held back, scheduled, or dead-lettered with why; a provider
that is throttled or down fails only its record, which comes back after an exponential back-off.
A failed record is logged at ERROR with its job key and counted (`MessageErrors_<kind>`).
"""

from datetime import timedelta

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from dialogue import bootstrap
from dialogue.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel)


def record_handler(record: SqsRecordModel, lambda_context: LambdaContext) -> str:
    tries = int(record.attributes.ApproximateReceiveCount)
    return bootstrap.delivery_service().handle_record(
        record.body, tries, bootstrap.retry_later(record.receiptHandle, tries),
        lambda: timedelta(milliseconds=lambda_context.get_remaining_time_in_millis()))


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
