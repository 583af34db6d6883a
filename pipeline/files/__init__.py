"""Files in and out: outputs written whole or not at all, inputs read with errors that
name the file and the stage to rerun, Markdown tables."""
