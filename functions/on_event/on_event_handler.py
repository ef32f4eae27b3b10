"""on_event: shop events from the FIFO events queue, one customer's events in order.

Powertools' Parser validates each SQS record; the event inside is validated by the engine's own
models, so that a malformed event is kept with its reason instead of failing five times. A failed
record is logged at ERROR and counted (`dialogue.failures`) and reported back (partial batch
response): only its customer's later events wait, and at its last receive it goes to the
dead-letter queue alone, with its reason, and they go on.
"""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from dialogue import bootstrap
from dialogue.model.routing import event_of_message
from dialogue.observability import logger, metrics

processor = SqsFifoPartialProcessor(model=SqsRecordModel, skip_group_on_error=True)


def record_handler(record: SqsRecordModel) -> str:
    return bootstrap.event_records().process(
        event_of_message(record.body), record.messageId,
        int(record.attributes.ApproximateReceiveCount), record.attributes.MessageGroupId)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
