"""Pure interpreters: no AWS, no clock, no randomness that is not passed in."""
