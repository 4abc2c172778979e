"""The worker process: RQ workers as threads in one process, and everything of RQ's we lean on."""
