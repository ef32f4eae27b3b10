"""dialogue: a serverless marketing-automation engine for online shops."""
