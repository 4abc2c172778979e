"""Background side of recording-receiver: RQ jobs that fetch, archive and react, and the CLI."""
