"""suppression: SES's events from the default bus. Bounces, complaints and unsubscribes
suppress the address; opens and clicks become the customer's behaviour (EmailOpened,
EmailClicked)."""

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from dialogue import bootstrap
from dialogue.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel)


def record_handler(record: SqsRecordModel) -> int:
    return bootstrap.suppression_service().handle(record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
