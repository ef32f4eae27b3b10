"""The embedded-AWS runtime: the template's resources on a moto server this process starts."""
