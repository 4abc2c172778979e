"""Twilio's REST side: the clients, call accounting, paging, the download guard, and one module per source."""
