"""The backlog export: every recording Twilio lists in a window, archived through the usual jobs, resumably."""
