"""SES (e-mail) and SNS (SMS), with the account's send rate respected and errors sorted into
"retry later" and "will never work"."""

from __future__ import annotations

import email.policy
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from dialogue.delivery.plan import Email, Sms
from dialogue.delivery.providers_port import ProviderRejected, ProviderUnavailable

# CRLF line ends and no folding under RFC 5322's 998 characters: a long List-Unsubscribe URL
# stays one readable header instead of an encoded word.
SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)
TRANSIENT_CODES = {
    "Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
    "InternalErrorException", "RequestTimeout", "RequestTimeoutException",
    "SendingPausedException",  # the account's sending is paused: later, not never
}


def classify(error: Exception) -> Exception:
    """Only what proves the message did not go is retried. A read timeout does not prove it:
    the provider may have it, so it is left as it is (outcome unknown, never sent twice)."""
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return ProviderUnavailable(type(error).__name__)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return ProviderUnavailable(code or str(status))
        return ProviderRejected(code or str(status))
    return error


class RateLimiter:
    """At most `rate` calls a second from this container (a token bucket of one second)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._next
            self._next = now + self._interval


class SesMailer:
    def __init__(self, client: Any, limiter: RateLimiter, configuration_set: str | None):
        self._ses, self._limiter, self._config_set = client, limiter, configuration_set

    def send(self, email: Email) -> str:
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"], msg["To"], msg["Subject"] = email.sender, email.to, email.subject
        msg["Message-ID"] = make_msgid(domain=email.sender.rsplit("@", 1)[-1].strip("> "))
        if email.reply_to:
            msg["Reply-To"] = email.reply_to
        for name, value in email.headers.items():
            msg[name] = value
        msg.set_content(email.text)
        if email.html:
            msg.add_alternative(email.html, subtype="html")
        args: dict[str, Any] = {"Content": {"Raw": {"Data": msg.as_bytes()}},
                                "FromEmailAddress": email.sender,
                                "Destination": {"ToAddresses": [email.to]}}
        if self._config_set:
            args["ConfigurationSetName"] = self._config_set
        if email.tags:  # copied by SES into the mail's events: who opened or clicked it
            args["EmailTags"] = [{"Name": k, "Value": v} for k, v in email.tags.items()]
        self._limiter.wait()
        try:
            return str(self._ses.send_email(**args)["MessageId"])
        except Exception as e:  # sorted, then raised from the original
            raise classify(e) from e


class SnsTexter:
    def __init__(self, client: Any, limiter: RateLimiter):
        self._sns, self._limiter = client, limiter

    def send(self, sms: Sms) -> str:
        self._limiter.wait()
        try:
            return str(self._sns.publish(
                PhoneNumber=sms.to, Message=sms.text,
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String",
                                                           "StringValue": "Promotional"}},
            )["MessageId"])
        except Exception as e:
            raise classify(e) from e
