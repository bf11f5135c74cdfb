"""One module per command: walk inputs, call algorithms, write outputs and the manifest."""
