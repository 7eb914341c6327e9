"""What each command's workflow rules call. Pure functions over files; no CLI, no Snakemake."""
