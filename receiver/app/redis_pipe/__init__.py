"""The transport of the receiver's hot Redis command: one seam (`pipe.Pipe`), a fast and a stock implementation."""
