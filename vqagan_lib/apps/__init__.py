"""What users run: the command line and the notebook-07 playground."""
