"""twilio_rest."""
