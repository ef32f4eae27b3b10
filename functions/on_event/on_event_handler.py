"""on_event: shop events from the FIFO events queue, one customer's events in order.

A failed record is reported back (partial batch response) and only its customer's later events
wait; malformed events are not failures: they are kept with their reason and the batch goes on.
"""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from dialogue import bootstrap
from dialogue.observability import logger, metrics

processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def record_handler(record: SQSRecord) -> str:
    return bootstrap.event_service().handle(record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
