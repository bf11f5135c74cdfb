"""Click subcommands: thin wrappers that parse options and call a pipeline."""
