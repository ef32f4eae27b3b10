"""Errors a message provider reports, in the two kinds that decide what happens next."""


class ProviderUnavailable(Exception):
    """The provider did not take the message this time (throttled, 5xx, network): retry."""


class ProviderRejected(Exception):
    """The provider refused the message for good (invalid address, rejected content)."""
