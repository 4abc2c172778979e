"""The worker side in rooms by role: jobs, reconcile, twilio_rest, runtime, and commands (the command line and composition root)."""
