"""Public side of recording-receiver: the callback app and the pure contract shared with workers."""
