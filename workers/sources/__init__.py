"""The Twilio REST side of each recording source: fetch metadata, locate media, list."""
