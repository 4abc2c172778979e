"""Twilio's Voice Recording Encryption undone while archiving: private keys by SID, the CEK, AES-256-GCM."""
