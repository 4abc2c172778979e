"""The command line and the composition root: every command builds its role's parts here and nowhere else."""
