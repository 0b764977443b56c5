"""One module per ``lgrnet`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""
