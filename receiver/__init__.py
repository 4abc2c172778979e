"""The receiver side: receiver.app, the public callback app, and receiver.kernel, the kernel every role shares."""
