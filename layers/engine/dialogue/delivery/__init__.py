"""Delivery: render, decide whether a message may go, and count SMS parts. No AWS here."""
